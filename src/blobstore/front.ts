// The upload-session half of a blob store, the same on every backend: each
// call handed to the backend's sessions, the session table's codes turned
// into the blob store's, the limits read from the options once, and the
// sweeper that expires idle sessions now and then.

import type { Readable } from 'node:stream';
import type { UploadSessions } from '../store/index.js';
import { MemorySessionTable, sessionErrors } from './sessions.js';
import { DEFAULT_BLOB_LIMITS, type BlobStoreOptions, type ChunkClaim, type StagedBlob, type Upload } from './types.js';

/** How a blob store's upload sessions behave: its options with their defaults. */
export interface UploadLimits {
  maxBlobSize: number;
  uploadTtl: number;
  maxUploadsPerAddress: number;
  /** How long a writer's claim lasts unless renewed (ms); a writer that died blocks a session this long at most. */
  claimLease: number;
}

/** A backend's upload sessions, each method as the BlobStore method of its name says. */
export interface SessionBackend<S extends StagedBlob> {
  /** Sessions whose committed bytes this process hashed again (another process fed them, or this one restarted). */
  readonly rehashed: number;
  count(): Promise<number>;
  start(repo: string, client: string): Promise<Upload>;
  get(repo: string, id: string): Promise<Upload>;
  append(upload: Upload, body: Readable, claim?: number | ChunkClaim): Promise<void>;
  finish(upload: Upload, digest: string): Promise<S>;
  cancel(upload: Upload): Promise<void>;
  sweep(strayBefore?: Date): Promise<{ expired: number; strays: string[] }>;
}

/** The session methods of the BlobStore contract over a backend's sessions (`uploads`, set by the subclass's constructor). */
export abstract class SessionFront<S extends StagedBlob> {
  readonly maxBlobSize: number;
  protected readonly limits: UploadLimits;
  /** Where the sessions are kept. */
  protected readonly table: UploadSessions;
  protected abstract readonly uploads: SessionBackend<S>;
  #sweeper: NodeJS.Timeout | undefined;
  #firstSweep: NodeJS.Timeout | undefined;

  constructor(options: BlobStoreOptions) {
    this.maxBlobSize = options.maxBlobSize ?? DEFAULT_BLOB_LIMITS.maxBlobSize;
    this.limits = {
      maxBlobSize: this.maxBlobSize,
      uploadTtl: options.uploadTtl ?? DEFAULT_BLOB_LIMITS.uploadTtl,
      maxUploadsPerAddress: options.maxUploadsPerAddress ?? DEFAULT_BLOB_LIMITS.maxUploadsPerAddress,
      claimLease: options.claimLease ?? DEFAULT_BLOB_LIMITS.claimLease,
    };
    this.table = options.sessions ?? new MemorySessionTable();
  }

  /** Starts expiring idle sessions: soon after the start, then now and then, so that what expired while no process ran goes too. */
  protected startSweeping(): void {
    this.close();
    const sweep = () => void this.uploads.sweep().catch(() => {});
    const ttl = this.limits.uploadTtl;
    this.#sweeper = setInterval(sweep, Math.min(ttl, 600_000));
    this.#sweeper.unref();
    this.#firstSweep = setTimeout(sweep, Math.min(ttl, 1000));
    this.#firstSweep.unref();
  }

  /** Stops expiring idle sessions. Never throws. */
  close(): void {
    clearInterval(this.#sweeper);
    clearTimeout(this.#firstSweep);
    this.#sweeper = this.#firstSweep = undefined;
  }

  /** @throws the table's error. */
  countUploads(): Promise<number> {
    return this.uploads.count();
  }

  /** @throws BlobStoreError TOOMANYREQUESTS; the table's or the storage's error. */
  startUpload(repo: string, client: string): Promise<Upload> {
    return sessionErrors(this.uploads.start(repo, client));
  }

  /** @throws BlobStoreError BLOB_UPLOAD_UNKNOWN; the table's error. */
  upload(repo: string, id: string): Promise<Upload> {
    return sessionErrors(this.uploads.get(repo, id));
  }

  /** @throws BlobStoreError BLOB_UPLOAD_UNKNOWN, SIZE_INVALID, BLOB_UPLOAD_INVALID, TOOMANYREQUESTS, STORAGE_UNAVAILABLE; what `claim` throws; the table's or the storage's error. */
  append(upload: Upload, body: Readable, claim?: number | ChunkClaim): Promise<void> {
    return sessionErrors(this.uploads.append(upload, body, claim));
  }

  /** @throws BlobStoreError DIGEST_INVALID, BLOB_UPLOAD_UNKNOWN, TOOMANYREQUESTS, STORAGE_UNAVAILABLE; the table's or the storage's error. */
  finish(upload: Upload, digest: string): Promise<S> {
    return sessionErrors(this.uploads.finish(upload, digest));
  }

  /** @throws BlobStoreError BLOB_UPLOAD_UNKNOWN for a handle from elsewhere, STORAGE_UNAVAILABLE; the table's or the storage's error. */
  cancel(upload: Upload): Promise<void> {
    return sessionErrors(this.uploads.cancel(upload));
  }

  /**
   * Expires the sessions idle past the upload TTL (row first, then bytes),
   * and removes upload bytes older than `strayBefore` (default: the TTL)
   * that no session names.
   * @returns how many sessions it expired, and where the stray bytes it removed were.
   * @throws the table's or the storage's error.
   */
  sweepUploads(options: { strayBefore?: Date } = {}): Promise<{ expired: number; strays: string[] }> {
    return this.uploads.sweep(options.strayBefore);
  }

  /** Sessions whose committed bytes this process hashed again, since it started: for tests and benchmarks. */
  get rehashedUploads(): number {
    return this.uploads.rehashed;
  }
}
