// File primitives the blob store is built from: a metered, hashing copy that
// never destroys its source, fsync of files and directories, and the one
// rename that puts a blob in place.

import { createHash, type Hash } from 'node:crypto';
import { closeSync, createReadStream, fsyncSync, openSync, renameSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { finished, type Readable, type Writable } from 'node:stream';
import { BlobStoreError } from '../errors.js';
import type { StagedBlob } from '../types.js';

/** How many bytes a copy may take, and the hash it feeds. */
interface Meter {
  hash: Hash;
  /** The most bytes this copy may take before it fails with `tooLarge()`. */
  limit: number;
  tooLarge: () => Error;
  /** Bytes the body claims to have: more fails at once, fewer fails at the end. */
  expected?: number;
}

/**
 * How many bytes a file being written may hold in memory before the copy
 * stops reading its body. Enough for the body to keep arriving while the
 * last write is on disk, and for the file stream to write what arrived
 * meanwhile in one writev: with the default 16 KiB every 64 KiB piece of a
 * request paused the socket until its own write was done.
 */
export const WRITE_BUFFER_SIZE = 4 * 1024 * 1024;

/**
 * Copies `body` into `out`, counting and hashing each piece as it arrives,
 * and resolves with the number of bytes once `out` is closed.
 * Unlike stream.pipeline, a failure does not destroy `body`: for a request,
 * that would destroy the socket before the client hears why. The caller
 * answers and discards the rest of the body.
 * @throws BlobStoreError SIZE_INVALID (more or fewer bytes than `expected`),
 * BLOB_UPLOAD_INVALID (the body ended before it was complete); what
 * `meter.tooLarge` makes; the filesystem's error. The hash has then taken
 * part of the body: the caller restores its copy.
 */
export async function meteredCopy(body: Readable, out: Writable, meter: Meter): Promise<number> {
  const received = await copyInto(body, out, (chunk, total) => {
    if (total > meter.limit) return meter.tooLarge();
    if (meter.expected !== undefined && total > meter.expected) {
      return new BlobStoreError('SIZE_INVALID', 'body is longer than its Content-Length or Content-Range');
    }
    meter.hash.update(chunk);
    return undefined;
  });
  if (meter.expected !== undefined && received !== meter.expected) {
    throw new BlobStoreError('SIZE_INVALID', `body has ${received} bytes, ${meter.expected} expected`);
  }
  return received;
}

/**
 * Writes each piece of `body` to `out` after `check` (given the piece and
 * the total so far) passes it; an error from `check` stops the copy.
 * Pieces go straight from the body's 'data' events to `out`, with no
 * Transform between: one stream hop per piece instead of three.
 */
function copyInto(body: Readable, out: Writable, check: (chunk: Buffer, total: number) => Error | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    let total = 0;
    let failure: unknown;
    const fail = (error: unknown) => {
      if (failure !== undefined) return;
      failure = error;
      body.off('data', onData);
      body.pause();
      out.destroy();
    };
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      const refused = check(chunk, total);
      if (refused) return fail(refused);
      if (!out.write(chunk)) body.pause();
    };
    out.on('drain', () => {
      if (failure === undefined) body.resume();
    });
    body.on('error', fail);
    // finished() and not a 'close' listener: the body may be copied after an
    // await, when a client that went away has already closed the request;
    // finished() reports that at once, a listener would wait forever and
    // hold the session and the file open.
    finished(body, { writable: false }, (error) => {
      if (error) fail(new BlobStoreError('BLOB_UPLOAD_INVALID', 'the client went away mid-body', { cause: error }));
      else if (failure === undefined) out.end();
    });
    out.on('error', fail);
    out.on('close', () => (failure === undefined ? resolve(total) : reject(failure)));
    body.on('data', onData);
    body.resume();
  });
}

/** The digest (`algorithm:hex`) of a file's bytes, read as a stream. @throws the filesystem's error. */
export async function hashFile(file: string, algorithm: string): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `${algorithm}:${hash.digest('hex')}`;
}

/** Flushes a file's bytes to disk. @throws the filesystem's error. */
export async function syncFile(file: string): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Cuts a file back to `size` bytes. @throws the filesystem's error (ENOENT when it is gone). */
export async function truncateFile(file: string, size: number): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.truncate(size);
  } finally {
    await handle.close();
  }
}

/**
 * Renames a finished, fsynced file to `target` and syncs the directory, all
 * synchronously, so that it runs inside any store's transaction (SQLite's
 * is synchronous), under the lock that gc's removals take too. Same digest,
 * same bytes: replacing a blob that is already there is harmless.
 * @throws the filesystem's error.
 */
function moveIntoPlace(file: string, target: string): void {
  renameSync(file, target);
  syncDirectory(path.dirname(target));
}

// The rename is durable only once the directory entry is on disk.
function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on a directory; the rename still happened.
  } finally {
    closeSync(fd);
  }
}

/** A staged blob of the directory store: its `place` finishes at once (see moveIntoPlace). */
export interface StagedFile extends StagedBlob {
  readonly place: () => void;
}

/** A blob staged in `file` (checked and flushed) of `size` bytes, placed by renaming it to `target`. */
export function stagedFile(file: string, target: string, size: number, discard: () => Promise<void>): StagedFile {
  return { size, place: () => moveIntoPlace(file, target), discard };
}
