// The blob store in an S3-compatible bucket: blobs at distribution's keys
// (layout.ts), streamed in and out, never whole in memory but for blobs
// smaller than one multipart part; upload sessions as multipart uploads
// (uploads.ts). Every operation is a promise: `place`, `delete` and `remove`
// need a metadata store that holds its lock across awaits.

import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Bucket } from './client.js';
import { Layout } from './layout.js';
import { openObject, readRange } from './reads.js';
import { stageBlob, type S3Context } from './staging.js';
import { S3Uploads } from './uploads.js';
import { MemorySessionTable, sessionErrors } from '../sessions.js';
import {
  DEFAULT_BLOB_LIMITS,
  type BlobFile,
  type BlobSource,
  type BlobStat,
  type BlobStore,
  type BlobStoreOptions,
  type ChunkClaim,
  type S3Options,
  type StagedBlob,
  type StoredFile,
  type Upload,
} from '../types.js';

/**
 * Bytes per multipart part: 16 MiB, so that a writer holds a few parts in
 * memory at most and a 64 GiB blob needs under S3's 10,000 parts.
 */
const DEFAULT_PART_SIZE = 16 * 1024 ** 2;
/** S3's smallest part but the last. */
const MIN_PART_SIZE = 5 * 1024 ** 2;
/** S3's most parts per multipart upload. */
const MAX_PARTS = 10_000;
/** Parts in flight per writer while the next is read. */
const CONCURRENCY = 2;

/** An object `list` gave out, with its key. */
interface ListedFile extends StoredFile {
  readonly key: string;
}

/** Blobs and upload sessions under one prefix of one bucket. Constructing it loads nothing and touches nothing. */
export class S3BlobStore implements BlobStore {
  readonly maxBlobSize: number;
  readonly #ctx: S3Context;
  readonly #uploads: S3Uploads;
  readonly #uploadTtl: number;
  #sweeper: NodeJS.Timeout | undefined;
  #firstSweep: NodeJS.Timeout | undefined;
  // What `list` gave out: the only things `remove` takes.
  readonly #listed = new WeakSet<StoredFile>();

  /**
   * Parts are as large as needed for the largest blob to fit S3's 10,000
   * parts, whatever `s3.partSize` says.
   * @throws TypeError for a part size under S3's 5 MiB.
   */
  constructor(s3: S3Options, options: BlobStoreOptions = {}) {
    if (s3.partSize !== undefined && !(s3.partSize >= MIN_PART_SIZE)) throw new TypeError(`an S3 part size is at least ${MIN_PART_SIZE} bytes`);
    this.maxBlobSize = options.maxBlobSize ?? DEFAULT_BLOB_LIMITS.maxBlobSize;
    const partSize = Math.max(s3.partSize ?? DEFAULT_PART_SIZE, Math.ceil(this.maxBlobSize / MAX_PARTS / MIN_PART_SIZE) * MIN_PART_SIZE);
    this.#uploadTtl = options.uploadTtl ?? DEFAULT_BLOB_LIMITS.uploadTtl;
    this.#ctx = { bucket: new Bucket(s3), layout: new Layout(s3.prefix), partSize, concurrency: CONCURRENCY };
    this.#uploads = new S3Uploads(this.#ctx, options.sessions ?? new MemorySessionTable(), {
      maxBlobSize: this.maxBlobSize,
      uploadTtl: this.#uploadTtl,
      maxUploadsPerAddress: options.maxUploadsPerAddress ?? DEFAULT_BLOB_LIMITS.maxUploadsPerAddress,
      claimLease: options.claimLease ?? DEFAULT_BLOB_LIMITS.claimLease,
    });
  }

  /** Starts expiring idle sessions; the bucket needs nothing prepared. Never throws. */
  init(): void {
    this.close();
    const sweep = () => void this.#uploads.sweep().catch(() => {});
    this.#sweeper = setInterval(sweep, Math.min(this.#uploadTtl, 600_000));
    this.#sweeper.unref();
    this.#firstSweep = setTimeout(sweep, Math.min(this.#uploadTtl, 1000));
    this.#firstSweep.unref();
  }

  /** Stops expiring idle sessions. */
  close(): void {
    clearInterval(this.#sweeper);
    clearTimeout(this.#firstSweep);
    this.#sweeper = this.#firstSweep = undefined;
  }

  /** Lets go of the client's sockets (after close). Never throws. */
  async destroy(): Promise<void> {
    this.close();
    await this.#ctx.bucket.destroy();
  }

  /** Puts, copies and deletes a probe under uploads/. @throws BlobStoreError STORAGE_UNAVAILABLE; the storage's error (AccessDenied, NoSuchBucket). */
  async checkWritable(): Promise<void> {
    const { bucket, layout } = this.#ctx;
    const probe = `${layout.uploads}probe-${randomUUID()}`;
    try {
      await bucket.put(probe, Buffer.alloc(0));
      await bucket.copy(probe, `${probe}-copy`);
    } finally {
      await Promise.all([probe, `${probe}-copy`].map((key) => bucket.delete(key).catch(() => {})));
    }
  }

  /** A bucket sets no bound. */
  async freeBytes(): Promise<number> {
    return Infinity;
  }

  /** @throws the table's error. */
  countUploads(): Promise<number> {
    return this.#uploads.count();
  }

  /** s3://bucket/key. @throws BlobStoreError DIGEST_INVALID. */
  location(digest: string): string {
    return `s3://${this.#ctx.bucket.name}/${this.#ctx.layout.blob(digest)}`;
  }

  /** HeadObject. @throws BlobStoreError DIGEST_INVALID, STORAGE_UNAVAILABLE; the storage's error. */
  async stat(digest: string): Promise<BlobStat | undefined> {
    return this.#ctx.bucket.head(this.#ctx.layout.blob(digest));
  }

  /** A ranged GetObject, streamed. @throws BlobStoreError DIGEST_INVALID. */
  read(digest: string, start?: number, end?: number): Readable {
    return readRange(this.#ctx.bucket, this.#ctx.layout.blob(digest), start, end);
  }

  /** @throws BlobStoreError DIGEST_INVALID, STORAGE_UNAVAILABLE; the storage's error. */
  async open(digest: string): Promise<BlobFile | undefined> {
    return openObject(this.#ctx.bucket, this.#ctx.layout.blob(digest));
  }

  /** @throws BlobStoreError DIGEST_INVALID, STORAGE_UNAVAILABLE; the storage's error. */
  async delete(digest: string): Promise<boolean> {
    return this.#deleteIfThere(this.#ctx.layout.blob(digest));
  }

  /** A pre-signed GetObject URL. @throws BlobStoreError DIGEST_INVALID; the storage's error (no credentials). */
  async signedUrl(digest: string, expiresInSeconds: number): Promise<string | undefined> {
    return this.#ctx.bucket.signedGet(this.#ctx.layout.blob(digest), expiresInSeconds);
  }

  /**
   * The objects under blobs/ (with their digest where the key names one),
   * then the puts' leftover temporaries under uploads/ (sessions' objects
   * are sweepUploads' business).
   * @throws (as the iteration rejects) BlobStoreError STORAGE_UNAVAILABLE; the storage's error.
   */
  async *list(): AsyncGenerator<StoredFile> {
    const { bucket, layout } = this.#ctx;
    for (const prefix of [layout.blobs, layout.uploads]) {
      for await (const object of bucket.list(prefix)) {
        if (prefix === layout.uploads && layout.sessionOf(object.key) !== undefined) continue;
        const digest = prefix === layout.blobs ? layout.digestOf(object.key) : undefined;
        const entry: ListedFile = { location: `s3://${bucket.name}/${object.key}`, key: object.key, size: object.size, modified: object.modified, ...(digest === undefined ? {} : { digest }) };
        this.#listed.add(entry);
        yield entry;
      }
    }
  }

  /** @throws TypeError for a file this store did not list; BlobStoreError STORAGE_UNAVAILABLE; the storage's error. */
  async remove(file: StoredFile): Promise<boolean> {
    if (!this.#listed.has(file)) throw new TypeError('remove takes only what list gave out');
    return this.#deleteIfThere((file as ListedFile).key);
  }

  async #deleteIfThere(key: string): Promise<boolean> {
    if ((await this.#ctx.bucket.head(key)) === undefined) return false;
    await this.#ctx.bucket.delete(key);
    return true;
  }

  /** @throws BlobStoreError DIGEST_INVALID, SIZE_INVALID, BLOB_UPLOAD_INVALID, STORAGE_UNAVAILABLE; the stream's or the storage's error. */
  async put(digest: string, source: BlobSource): Promise<StagedBlob> {
    return stageBlob(this.#ctx, digest, this.#ctx.layout.blob(digest), source, this.maxBlobSize);
  }

  // --- upload sessions (uploads.ts); the table's codes become the blob store's (sessionErrors)

  /** @throws BlobStoreError TOOMANYREQUESTS; the table's error. */
  startUpload(repo: string, client: string): Promise<Upload> {
    return sessionErrors(this.#uploads.start(repo, client));
  }

  /** @throws BlobStoreError BLOB_UPLOAD_UNKNOWN; the table's error. */
  upload(repo: string, id: string): Promise<Upload> {
    return sessionErrors(this.#uploads.get(repo, id));
  }

  /** @throws BlobStoreError BLOB_UPLOAD_UNKNOWN, SIZE_INVALID, BLOB_UPLOAD_INVALID, TOOMANYREQUESTS, STORAGE_UNAVAILABLE; what `claim` throws; the table's or the storage's error. */
  append(upload: Upload, body: Readable, claim?: number | ChunkClaim): Promise<void> {
    return sessionErrors(this.#uploads.append(upload, body, claim));
  }

  /** @throws BlobStoreError DIGEST_INVALID, BLOB_UPLOAD_UNKNOWN, TOOMANYREQUESTS, STORAGE_UNAVAILABLE; the table's or the storage's error. */
  finish(upload: Upload, digest: string): Promise<StagedBlob> {
    return sessionErrors(this.#uploads.finish(upload, digest));
  }

  /** @throws BlobStoreError BLOB_UPLOAD_UNKNOWN for a handle from elsewhere, STORAGE_UNAVAILABLE; the table's or the storage's error. */
  cancel(upload: Upload): Promise<void> {
    return sessionErrors(this.#uploads.cancel(upload));
  }

  /**
   * Expires the sessions idle past the upload TTL (row first, then objects
   * and multipart upload), and removes objects and multipart uploads under
   * uploads/ older than `strayBefore` (default: the TTL) that no session names.
   * @throws the table's or the storage's error.
   */
  sweepUploads(options: { strayBefore?: Date } = {}): Promise<{ expired: number; strays: string[] }> {
    return this.#uploads.sweep(options.strayBefore);
  }

  /** Sessions whose object this process hashed again at finish, since it started: for tests. */
  get rehashedUploads(): number {
    return this.#uploads.rehashed;
  }
}
