// The blob store on a directory: blobs/<algorithm>/<2 hex>/<hex> and
// uploads/<id> under a registry's data directory. Bytes stream to disk while
// they are hashed; nothing holds a blob whole in memory. A blob reaches
// blobs/ only fsynced, by one rename, after its digest checked out.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-blobs

import { createReadStream, createWriteStream, mkdirSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { mkdir, open, rename, rm, stat, statfs, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { BlobStoreError, tooLarge } from './errors.js';
import { hashFile, meteredCopy, stagedFile, syncFile, truncateFile, WRITE_BUFFER_SIZE } from './io.js';
import { blobFilesIn, blobPath, uploadPath } from './layout.js';
import { Sessions, type Session } from './sessions.js';
import { stageFrom } from './staging.js';
import {
  DEFAULT_BLOB_LIMITS,
  type BlobFile,
  type BlobSource,
  type BlobStat,
  type BlobStore,
  type BlobStoreOptions,
  type ChunkClaim,
  type StagedBlob,
  type StoredFile,
  type Upload,
} from './types.js';

/** Blobs and upload sessions under one data directory. Constructing it touches nothing on disk. */
export class DirectoryBlobStore implements BlobStore {
  readonly maxBlobSize: number;
  readonly #dataDir: string;
  readonly #sessions: Sessions;
  // What `list` gave out: the only things `remove` takes, so that no caller can name an arbitrary path.
  readonly #listed = new WeakSet<StoredFile>();

  /** The store on `dataDir` (resolved to an absolute path). */
  constructor(dataDir: string, options: BlobStoreOptions = {}) {
    this.#dataDir = path.resolve(dataDir);
    this.maxBlobSize = options.maxBlobSize ?? DEFAULT_BLOB_LIMITS.maxBlobSize;
    this.#sessions = new Sessions({
      uploadTtl: options.uploadTtl ?? DEFAULT_BLOB_LIMITS.uploadTtl,
      maxUploadsPerAddress: options.maxUploadsPerAddress ?? DEFAULT_BLOB_LIMITS.maxUploadsPerAddress,
    });
  }

  /** Creates blobs/ and uploads/, empties uploads/ and starts expiring idle sessions. @throws the filesystem's error. */
  init(): void {
    const uploads = path.join(this.#dataDir, 'uploads');
    mkdirSync(path.join(this.#dataDir, 'blobs'), { recursive: true });
    mkdirSync(uploads, { recursive: true });
    for (const entry of readdirSync(uploads)) rmSync(path.join(uploads, entry), { force: true, recursive: true });
    this.#sessions.startExpiry((session) => this.cancel(session));
  }

  /** Stops expiring idle sessions. */
  close(): void {
    this.#sessions.stopExpiry();
  }

  // Named so that nothing mistakes it for a blob or a session: not a digest
  // under blobs/<algorithm>/, not a session id under uploads/.
  async checkWritable(): Promise<void> {
    const name = `.probe-${randomUUID()}`;
    const staged = path.join(this.#dataDir, 'uploads', name);
    const placed = path.join(this.#dataDir, 'blobs', name);
    try {
      await writeFile(staged, '', { flag: 'wx' });
      await rename(staged, placed);
    } finally {
      // Whichever is left; a failure here says no more than the one above.
      await Promise.all([staged, placed].map((file) => rm(file, { force: true }).catch(() => {})));
    }
  }

  async freeBytes(): Promise<number> {
    const fs = await statfs(path.join(this.#dataDir, 'blobs'));
    return fs.bavail * fs.bsize;
  }

  get openUploads(): number {
    return this.#sessions.count;
  }

  /** The blob's path. @throws BlobStoreError DIGEST_INVALID. */
  location(digest: string): string {
    return blobPath(this.#dataDir, digest);
  }

  /** @throws BlobStoreError DIGEST_INVALID; the filesystem's error other than ENOENT. */
  async stat(digest: string): Promise<BlobStat | undefined> {
    try {
      const stats = await stat(this.location(digest));
      return { size: stats.size, modified: stats.mtime };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** @throws BlobStoreError DIGEST_INVALID. */
  read(digest: string, start?: number, end?: number): Readable {
    return createReadStream(this.location(digest), { start, end });
  }

  /** @throws BlobStoreError DIGEST_INVALID; the filesystem's error other than ENOENT. */
  async open(digest: string): Promise<BlobFile | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(this.location(digest), 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    return {
      read: async (buffer, offset, length, position) => (await handle.read(buffer, offset, length, position)).bytesRead,
      close: () => handle.close().catch(() => {}),
    };
  }

  /** @throws BlobStoreError DIGEST_INVALID; the filesystem's error other than ENOENT. */
  delete(digest: string): boolean {
    return unlinkIfThere(this.location(digest));
  }

  /** @throws as delete. */
  async deleteAsync(digest: string): Promise<boolean> {
    return unlinkIfThereAsync(this.location(digest));
  }

  /** Never throws: what cannot be read is left out. */
  *list(): Generator<StoredFile> {
    for (const { file, digest, size, modified } of blobFilesIn(this.#dataDir)) {
      const entry: StoredFile = digest === undefined ? { location: file, size, modified } : { location: file, digest, size, modified };
      this.#listed.add(entry);
      yield entry;
    }
  }

  /** @throws TypeError for a file this store did not list; the filesystem's error other than ENOENT. */
  remove(file: StoredFile): boolean {
    if (!this.#listed.has(file)) throw new TypeError('remove takes only what list gave out');
    return unlinkIfThere(file.location);
  }

  /** @throws as remove (rejecting). */
  async removeAsync(file: StoredFile): Promise<boolean> {
    if (!this.#listed.has(file)) throw new TypeError('remove takes only what list gave out');
    return unlinkIfThereAsync(file.location);
  }

  /** @throws BlobStoreError DIGEST_INVALID, SIZE_INVALID, BLOB_UPLOAD_INVALID; the filesystem's error. */
  async put(digest: string, source: BlobSource): Promise<StagedBlob> {
    const target = this.location(digest);
    return stageFrom(source, target, digest, this.maxBlobSize);
  }

  // --- upload sessions --------------------------------------------------------

  /** @throws BlobStoreError TOOMANYREQUESTS; the filesystem's error. */
  async startUpload(repo: string, client: string): Promise<Upload> {
    const session = this.#sessions.open(repo, client);
    try {
      const file = await open(this.#uploadPath(session), 'wx');
      await file.close();
    } catch (error) {
      this.#sessions.forget(session);
      throw error;
    }
    return session;
  }

  /** @throws BlobStoreError BLOB_UPLOAD_UNKNOWN. */
  upload(repo: string, id: string): Upload {
    return this.#sessions.get(repo, id);
  }

  /** @throws BlobStoreError BLOB_UPLOAD_UNKNOWN, SIZE_INVALID, BLOB_UPLOAD_INVALID; what `claim` throws; the filesystem's error. */
  async append(upload: Upload, body: Readable, claim?: number | ChunkClaim): Promise<void> {
    const session = this.#sessions.stateOf(upload);
    const release = await this.#sessions.acquire(session);
    try {
      const expected = typeof claim === 'function' ? claim(session) : claim;
      const before = session.size;
      const saved = session.hash.copy();
      try {
        const received = await meteredCopy(body, createWriteStream(this.#uploadPath(session), { flags: 'a', highWaterMark: WRITE_BUFFER_SIZE }), {
          hash: session.hash,
          limit: this.maxBlobSize - before,
          tooLarge: () => tooLarge(this.maxBlobSize),
          expected,
        });
        session.size = before + received;
      } catch (error) {
        session.hash = saved;
        await this.#truncate(session, before);
        throw error;
      }
    } finally {
      release();
    }
  }

  /** @throws BlobStoreError DIGEST_INVALID, BLOB_UPLOAD_UNKNOWN; the filesystem's error. */
  async finish(upload: Upload, digest: string): Promise<StagedBlob> {
    const session = this.#sessions.stateOf(upload);
    const release = await this.#sessions.acquire(session);
    const file = this.#uploadPath(session);
    // The session is over whatever happens: requests waiting on it find it unknown.
    this.#sessions.forget(session);
    const discard = () => rm(file, { force: true }).catch(() => {});
    try {
      const target = this.location(digest);
      const actual = digest.startsWith('sha256:')
        ? `sha256:${session.hash.digest('hex')}`
        : await hashFile(file, digest.slice(0, digest.indexOf(':')));
      if (actual !== digest) {
        throw new BlobStoreError('DIGEST_INVALID', `the upload's digest is ${actual}, not ${digest}`, { detail: { digest: actual } });
      }
      await syncFile(file);
      await mkdir(path.dirname(target), { recursive: true });
      return stagedFile(file, target, session.size, discard);
    } catch (error) {
      await discard();
      throw error;
    } finally {
      release();
    }
  }

  /** @throws BlobStoreError BLOB_UPLOAD_UNKNOWN for a handle from elsewhere; the filesystem's error. */
  async cancel(upload: Upload): Promise<void> {
    const session = this.#sessions.stateOf(upload);
    this.#sessions.forget(session);
    await rm(this.#uploadPath(session), { force: true });
  }

  #uploadPath(session: Session): string {
    return uploadPath(this.#dataDir, session.id);
  }

  async #truncate(session: Session, size: number): Promise<void> {
    try {
      await truncateFile(this.#uploadPath(session), size);
    } catch {
      // The file is gone (cancelled meanwhile): the session is unusable anyway.
      this.#sessions.forget(session);
    }
  }
}

function unlinkIfThere(file: string): boolean {
  try {
    unlinkSync(file);
    return true;
  } catch (error) {
    return gone(error);
  }
}

async function unlinkIfThereAsync(file: string): Promise<boolean> {
  try {
    await unlink(file);
    return true;
  } catch (error) {
    return gone(error);
  }
}

/** false for ENOENT (it was not there); @throws any other error. */
function gone(error: unknown): false {
  if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
  throw error;
}
