// The blob store on a directory: blobs/<algorithm>/<2 hex>/<hex> and
// uploads/<id> under a registry's data directory. Bytes stream to disk while
// they are hashed; nothing holds a blob whole in memory. A blob reaches
// blobs/ only fsynced, by one rename, after its digest checked out.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-blobs

import { createReadStream, mkdirSync, unlinkSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { open, rename, rm, stat, statfs, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { blobFilesIn, blobPath } from './layout.js';
import { SessionFront } from '../front.js';
import type { StagedFile } from './io.js';
import { stageFrom } from './staging.js';
import { DirectoryUploads } from './uploads.js';
import type { BlobFile, BlobSource, BlobStat, BlobStore, BlobStoreOptions, StoredFile } from '../types.js';

/** Blobs and upload sessions under one data directory. Constructing it touches nothing on disk. */
export class DirectoryBlobStore extends SessionFront<StagedFile> implements BlobStore {
  readonly #dataDir: string;
  protected readonly uploads: DirectoryUploads;
  // What `list` gave out: the only things `remove` takes, so that no caller can name an arbitrary path.
  readonly #listed = new WeakSet<StoredFile>();

  /** The store on `dataDir` (resolved to an absolute path). */
  constructor(dataDir: string, options: BlobStoreOptions = {}) {
    super(options);
    this.#dataDir = path.resolve(dataDir);
    this.uploads = new DirectoryUploads(this.#dataDir, this.table, this.limits);
  }

  /**
   * Creates blobs/ and uploads/ and starts expiring idle sessions. What is in
   * uploads/ stays: other processes' sessions, or this one's before a restart.
   * @throws the filesystem's error.
   */
  init(): void {
    mkdirSync(path.join(this.#dataDir, 'blobs'), { recursive: true });
    mkdirSync(path.join(this.#dataDir, 'uploads'), { recursive: true });
    this.startSweeping();
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

  /** Synchronously: an unlink. @throws BlobStoreError DIGEST_INVALID; the filesystem's error other than ENOENT. */
  delete(digest: string): boolean {
    return unlinkIfThere(this.location(digest));
  }

  /** Never throws: what cannot be read is left out. */
  /** A directory has no URL a client could fetch from. */
  async signedUrl(digest: string): Promise<string | undefined> {
    this.location(digest);
    return undefined;
  }

  async *list(): AsyncGenerator<StoredFile> {
    for (const { file, digest, size, modified } of blobFilesIn(this.#dataDir)) {
      const entry: StoredFile = digest === undefined ? { location: file, size, modified } : { location: file, digest, size, modified };
      this.#listed.add(entry);
      yield entry;
    }
  }

  /** Synchronously: an unlink. @throws TypeError for a file this store did not list; the filesystem's error other than ENOENT. */
  remove(file: StoredFile): boolean {
    if (!this.#listed.has(file)) throw new TypeError('remove takes only what list gave out');
    return unlinkIfThere(file.location);
  }

  /** @throws BlobStoreError DIGEST_INVALID, SIZE_INVALID, BLOB_UPLOAD_INVALID; the filesystem's error. */
  async put(digest: string, source: BlobSource): Promise<StagedFile> {
    const target = this.location(digest);
    return stageFrom(source, target, digest, this.maxBlobSize);
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

/** false for ENOENT (it was not there); @throws any other error. */
function gone(error: unknown): false {
  if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
  throw error;
}
