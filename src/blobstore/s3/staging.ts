// Blobs written to the bucket: streamed into a temporary under uploads/ (a
// multipart upload, a part at a time) while they are hashed, and made
// visible under their digest only by `place`, under the metadata store's
// lock: one CopyObject (or a multipart copy above CopyObject's limit), which
// S3 makes visible whole. A blob already there with the same size is not
// written again. A blob smaller than one part stays in memory until
// `place` puts it straight under its key: no temporary, no copy.

import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { CompletedPart } from '@aws-sdk/client-s3';
import { BlobStoreError, tooLarge } from '../errors.js';
import type { Bucket } from './client.js';
import type { Layout } from './layout.js';
import { PartUploads, readParts } from './parts.js';
import type { BlobSource, StagedBlob } from '../types.js';

/** What the S3 store's writes need. */
export interface S3Context {
  bucket: Bucket;
  layout: Layout;
  /** Bytes per multipart part (at least S3's 5 MiB). */
  partSize: number;
  /** Parts uploaded at once per writer. */
  concurrency: number;
}

// CopyObject copies up to 5 GiB; past that, parts of this size are copied (UploadPartCopy).
const COPY_LIMIT = 5 * 1024 ** 3;
const COPY_PART_SIZE = 512 * 1024 ** 2;

/**
 * Stages `source` as blob `digest` (whose key `target` passed the grammar).
 * @throws BlobStoreError DIGEST_INVALID (bytes that hash otherwise),
 * SIZE_INVALID (above `limit`), BLOB_UPLOAD_INVALID; what the stream fails
 * with; the filesystem's error (ENOENT); the storage's error. Nothing stays staged then.
 */
export async function stageBlob(ctx: S3Context, digest: string, target: string, given: BlobSource, limit: number): Promise<StagedBlob> {
  if (!(given instanceof Readable) && 'object' in given && given.object.endpoint === ctx.bucket.endpoint) {
    const copied = await stageCopy(ctx, target, given.object, limit);
    if (copied !== undefined) return copied;
  }
  // An object of another service (or above CopyObject's limit) is read through, as a stream.
  const source = !(given instanceof Readable) && 'object' in given ? given.read() : given;
  const algorithm = digest.slice(0, digest.indexOf(':'));
  const hash = createHash(algorithm);
  // No link into a bucket: a file is copied.
  const body = source instanceof Readable ? source : createReadStream(source.file);
  const temporary = `${ctx.layout.uploads}put-${randomUUID()}`;
  let uploadId: string | undefined;
  let number = 1;
  const parts = new PartUploads((n, part) => ctx.bucket.uploadPart(temporary, uploadId!, n, part), ctx.concurrency);
  try {
    const { received, rest } = await readParts(body, Buffer.alloc(0), ctx.partSize, { hash, limit, tooLarge: () => tooLarge(limit) }, async (part) => {
      uploadId ??= await ctx.bucket.createMultipart(temporary);
      await parts.add(number++, part);
    });
    const actual = `${algorithm}:${hash.digest('hex')}`;
    if (actual !== digest) {
      throw new BlobStoreError('DIGEST_INVALID', `the bytes' digest is ${actual}, not ${digest}`, { detail: { digest: actual } });
    }
    if (uploadId === undefined) return stagedBytes(ctx, target, rest);
    if (rest.length > 0) await parts.add(number++, rest);
    await ctx.bucket.completeMultipart(temporary, uploadId, await parts.all());
    return stagedObject(ctx, temporary, target, received, () => ctx.bucket.delete(temporary));
  } catch (error) {
    await parts.settle();
    if (uploadId !== undefined) await ctx.bucket.abortMultipart(temporary, uploadId).catch(() => {});
    throw error;
  } finally {
    // A file or object this put opened is closed whatever happened; a caller's stream stays the caller's.
    if (body !== given) body.destroy();
  }
}

/**
 * An object of the same service (a distribution registry's blob), copied to
 * `target` server-side by `place`: nothing goes through this process, and
 * like a hard link nothing is hashed (its source is content-addressed
 * already; `regmeta check --deep` hashes every blob). An object already
 * at `target` is not copied again.
 * @returns undefined for an object above CopyObject's limit: it is streamed.
 * @throws Error ENOENT when the object is not there; SIZE_INVALID (above
 * `limit`); the storage's error.
 */
async function stageCopy(ctx: S3Context, target: string, object: { bucket: string; key: string }, limit: number): Promise<StagedBlob | undefined> {
  const found = await ctx.bucket.head(object.key, object.bucket);
  if (found === undefined) throw Object.assign(new Error(`no object s3://${object.bucket}/${object.key}`), { code: 'ENOENT' });
  if (found.size > limit) throw tooLarge(limit);
  if (found.size > COPY_LIMIT) return undefined;
  return {
    size: found.size,
    place: async () => {
      if (object.bucket === ctx.bucket.name && object.key === target) return;
      if ((await ctx.bucket.head(target))?.size === found.size) return;
      await ctx.bucket.copy(object.key, target, object.bucket);
    },
    discard: async () => {},
  };
}

/** A blob held in memory, put under `target` by `place`. */
export function stagedBytes(ctx: S3Context, target: string, bytes: Buffer): StagedBlob {
  return {
    size: bytes.length,
    place: async () => {
      if ((await ctx.bucket.head(target))?.size === bytes.length) return;
      await ctx.bucket.put(target, bytes);
    },
    discard: async () => {},
  };
}

/** A blob in object `from`, copied to `target` by `place`; `remove` deletes `from` (never throws). */
export function stagedObject(ctx: S3Context, from: string, target: string, size: number, remove: () => Promise<void>): StagedBlob {
  return {
    size,
    place: async () => {
      if ((await ctx.bucket.head(target))?.size === size) return;
      if (size <= COPY_LIMIT) await ctx.bucket.copy(from, target);
      else await copyInParts(ctx, from, target, size);
    },
    discard: () => remove().catch(() => {}),
  };
}

/** Copies an object larger than CopyObject takes, as a multipart upload of UploadPartCopy parts. */
async function copyInParts(ctx: S3Context, from: string, target: string, size: number): Promise<void> {
  const uploadId = await ctx.bucket.createMultipart(target);
  const parts = new PartUploads(
    (n) => ctx.bucket.uploadPartCopy(target, uploadId, n, from, (n - 1) * COPY_PART_SIZE, Math.min(n * COPY_PART_SIZE, size) - 1),
    ctx.concurrency,
  );
  try {
    for (let n = 1; (n - 1) * COPY_PART_SIZE < size; n++) await parts.add(n, Buffer.alloc(0));
    const done: CompletedPart[] = await parts.all();
    await ctx.bucket.completeMultipart(target, uploadId, done);
  } catch (error) {
    await parts.settle();
    await ctx.bucket.abortMultipart(target, uploadId).catch(() => {});
    throw error;
  }
}
