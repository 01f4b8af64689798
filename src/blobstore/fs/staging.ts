// Staging a blob from outside an upload session (`regmeta import`): next to
// its place, under a temporary name that no digest has, hard-linked where
// the filesystem allows, else copied and hashed, and fsynced. The rename into
// place is left to the caller's linkBlob, under the store's write lock.

import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { BlobStoreError, tooLarge } from '../errors.js';
import { meteredCopy, stagedFile, syncFile, WRITE_BUFFER_SIZE, type StagedFile } from './io.js';
import type { BlobSource } from '../types.js';

// A link cannot cross filesystems (EXDEV), may be refused (EPERM: some
// filesystems, protected_hardlinks), or the source may have all the links it can.
const CANNOT_LINK = new Set(['EXDEV', 'EPERM', 'EMLINK']);

/**
 * Stages `source` as blob `digest` for `target` (its place, whose digest
 * passed the grammar).
 * @throws BlobStoreError DIGEST_INVALID (copied bytes that hash otherwise),
 * SIZE_INVALID (above `limit`), BLOB_UPLOAD_INVALID (the stream closed
 * before its end); what the stream fails with; the filesystem's error.
 * Nothing stays staged then.
 */
export async function stageFrom(given: BlobSource, target: string, digest: string, limit: number): Promise<StagedFile> {
  // An object is read through, as a stream: a directory has no server-side copy.
  const source = 'object' in given ? given.read() : given;
  await mkdir(path.dirname(target), { recursive: true });
  // `<hex>.staged-…` is no digest: check lists it as a stray, gc removes it
  // once past its grace period if this process dies before it is placed.
  const temporary = `${target}.staged-${process.pid}-${randomUUID().slice(0, 8)}`;
  const discard = () => rm(temporary, { force: true }).catch(() => {});
  try {
    const linked = !(source instanceof Readable) && source.link !== false && (await linkOrRefuse(source.file, temporary));
    const size = linked ? (await stat(temporary)).size : await copyVerified(source as Readable | { file: string }, temporary, digest, limit);
    if (size > limit) throw tooLarge(limit);
    return stagedFile(temporary, target, size, discard);
  } catch (error) {
    await discard();
    if (source !== given) (source as Readable).destroy();
    throw error;
  }
}

/** Hard-links `file` as `temporary`. @returns false where links are not possible. @throws the filesystem's other errors. */
async function linkOrRefuse(file: string, temporary: string): Promise<boolean> {
  try {
    await link(file, temporary);
    return true;
  } catch (error) {
    if (CANNOT_LINK.has((error as NodeJS.ErrnoException).code ?? '')) return false;
    throw error;
  }
}

/** Copies `source` to `temporary`, hashing on the way, and fsyncs it. @returns the size. */
async function copyVerified(source: Readable | { file: string }, temporary: string, digest: string, limit: number): Promise<number> {
  const algorithm = digest.slice(0, digest.indexOf(':'));
  const hash = createHash(algorithm);
  const body = source instanceof Readable ? source : createReadStream(source.file);
  let size: number;
  try {
    size = await meteredCopy(body, createWriteStream(temporary, { flags: 'wx', highWaterMark: WRITE_BUFFER_SIZE }), { hash, limit, tooLarge: () => tooLarge(limit) });
  } finally {
    // A file this copy opened is closed whatever happened; a caller's stream stays the caller's.
    if (body !== source) body.destroy();
  }
  const actual = `${algorithm}:${hash.digest('hex')}`;
  if (actual !== digest) {
    throw new BlobStoreError('DIGEST_INVALID', `the bytes' digest is ${actual}, not ${digest}`, { detail: { digest: actual } });
  }
  await syncFile(temporary);
  return size;
}
