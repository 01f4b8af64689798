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
import { SessionFront } from '../front.js';
import type { BlobFile, BlobSource, BlobStat, BlobStore, BlobStoreOptions, S3Options, StagedBlob, StoredFile } from '../types.js';

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
export class S3BlobStore extends SessionFront<StagedBlob> implements BlobStore {
  readonly #ctx: S3Context;
  protected readonly uploads: S3Uploads;
  // What `list` gave out: the only things `remove` takes.
  readonly #listed = new WeakSet<StoredFile>();

  /**
   * Parts are as large as needed for the largest blob to fit S3's 10,000
   * parts, whatever `s3.partSize` says.
   * @throws TypeError for a part size under S3's 5 MiB.
   */
  constructor(s3: S3Options, options: BlobStoreOptions = {}) {
    if (s3.partSize !== undefined && !(s3.partSize >= MIN_PART_SIZE)) throw new TypeError(`an S3 part size is at least ${MIN_PART_SIZE} bytes`);
    super(options);
    const partSize = Math.max(s3.partSize ?? DEFAULT_PART_SIZE, Math.ceil(this.maxBlobSize / MAX_PARTS / MIN_PART_SIZE) * MIN_PART_SIZE);
    this.#ctx = { bucket: new Bucket(s3), layout: new Layout(s3.prefix), partSize, concurrency: CONCURRENCY };
    this.uploads = new S3Uploads(this.#ctx, this.table, this.limits);
  }

  /** Starts expiring idle sessions; the bucket needs nothing prepared. Never throws. */
  init(): void {
    this.startSweeping();
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
}
