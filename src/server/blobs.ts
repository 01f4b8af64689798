// Blob content on the filesystem: blobs/<algorithm>/<2 hex>/<hex> for
// finished blobs, uploads/<uuid> for sessions in progress. Bytes stream to
// disk while they are hashed; nothing holds a blob whole in memory. A blob
// reaches blobs/ only fsynced, by one rename, after its digest checked out.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-blobs

import { createHash, randomUUID, type Hash } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { finished, Transform, type Readable, type Writable } from 'node:stream';
import { isDigest } from '../store/grammar.js';
import { HttpError } from './errors.js';

/** A verified upload, ready to be moved into place by linkBlob. */
export interface FinishedUpload {
  size: number;
  place: () => void;
  discard: () => Promise<void>;
}

/** One upload session: which repository it is for and what it has received. */
export interface UploadSession {
  readonly id: string;
  readonly repo: string;
  /** The client address that opened it, for the per-address cap. */
  readonly client: string;
  /** Bytes received so far; the file holds exactly these. */
  size: number;
  /** sha256 of the bytes so far, fed as they arrive. */
  hash: Hash;
  /** A request is writing to it: a second one must not interleave. */
  busy: boolean;
  /** Settles when the current writer is done. */
  idle: Promise<void>;
  lastUsed: number;
}

export interface BlobFilesOptions {
  /** The largest blob accepted, in bytes. */
  maxBlobSize?: number;
  /** Sessions idle longer than this (ms) are dropped with their file. */
  uploadTtl?: number;
  /** Upload sessions one client address may hold open at once; 0 turns the cap off. */
  maxUploadsPerAddress?: number;
}

/** The defaults: 64 GiB blobs; a day for an idle session (a resumable push may pause); 256 sessions, dozens of concurrent pushes' worth. */
export const DEFAULT_BLOB_LIMITS: Required<BlobFilesOptions> = {
  maxBlobSize: 64 * 1024 ** 3,
  uploadTtl: 24 * 3600 * 1000,
  maxUploadsPerAddress: 256,
};

/**
 * Where blob `digest` lives under a data directory: blobs/<algorithm>/<2 hex>/<hex>.
 * @throws HttpError DIGEST_INVALID for a digest that did not pass the grammar.
 */
export function blobPath(dataDir: string, digest: string): string {
  if (!isDigest(digest)) throw new HttpError('DIGEST_INVALID', 'invalid digest');
  const [algorithm, hex] = digest.split(':');
  return path.join(dataDir, 'blobs', algorithm, hex.slice(0, 2), hex);
}

/**
 * Every file under <data>/blobs, with the digest its place names, or none
 * for a file that is not where a blob would be (a leftover temporary).
 */
export function* blobFilesIn(dataDir: string): Generator<{ file: string; digest?: string }> {
  const root = path.join(dataDir, 'blobs');
  const entries = (dir: string) => {
    try {
      return readdirSync(dir, { withFileTypes: true });
    } catch {
      return [];
    }
  };
  for (const algorithm of entries(root)) {
    for (const prefix of entries(path.join(root, algorithm.name))) {
      for (const entry of entries(path.join(root, algorithm.name, prefix.name))) {
        if (!entry.isFile()) continue;
        const digest = `${algorithm.name}:${entry.name}`;
        const file = path.join(root, algorithm.name, prefix.name, entry.name);
        yield isDigest(digest) && entry.name.startsWith(prefix.name) ? { file, digest } : { file };
      }
    }
  }
}

/** The blob files and upload sessions under one data directory. */
export class BlobFiles {
  readonly blobsDir: string;
  readonly uploadsDir: string;
  readonly maxBlobSize: number;
  readonly #dataDir: string;
  readonly #uploadTtl: number;
  readonly #maxUploadsPerAddress: number;
  readonly #sessions = new Map<string, UploadSession>();
  readonly #perAddress = new Map<string, number>();
  #sweeper: NodeJS.Timeout | undefined;

  constructor(dataDir: string, options: BlobFilesOptions = {}) {
    this.#dataDir = dataDir;
    this.blobsDir = path.join(dataDir, 'blobs');
    this.uploadsDir = path.join(dataDir, 'uploads');
    this.maxBlobSize = options.maxBlobSize ?? DEFAULT_BLOB_LIMITS.maxBlobSize;
    this.#uploadTtl = options.uploadTtl ?? DEFAULT_BLOB_LIMITS.uploadTtl;
    this.#maxUploadsPerAddress = options.maxUploadsPerAddress ?? DEFAULT_BLOB_LIMITS.maxUploadsPerAddress;
  }

  /**
   * Creates blobs/ and uploads/ and empties uploads/: sessions live in this
   * process's memory, so files left by an earlier process belong to no one.
   */
  init(): void {
    mkdirSync(this.blobsDir, { recursive: true });
    mkdirSync(this.uploadsDir, { recursive: true });
    for (const entry of readdirSync(this.uploadsDir)) {
      rmSync(path.join(this.uploadsDir, entry), { force: true, recursive: true });
    }
    this.#sweeper = setInterval(() => void this.#sweep(), Math.min(this.#uploadTtl, 600_000)).unref();
  }

  /** Stops the idle-session sweeper. */
  close(): void {
    if (this.#sweeper) clearInterval(this.#sweeper);
  }

  /** Where blob `digest` lives. The digest must have passed the grammar. */
  blobPath(digest: string): string {
    return blobPath(this.#dataDir, digest);
  }

  /** The size of the blob file, or undefined when there is none. */
  async fileSize(digest: string): Promise<number | undefined> {
    try {
      return (await stat(this.blobPath(digest))).size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** A stream of bytes `start`..`end` (inclusive) of the blob. */
  read(digest: string, start?: number, end?: number): Readable {
    return createReadStream(this.blobPath(digest), { start, end });
  }

  // --- upload sessions --------------------------------------------------------

  /**
   * Opens a session for `repo`, on behalf of client address `client`, with an empty file.
   * @throws HttpError TOOMANYREQUESTS when `client` holds as many sessions as it may.
   */
  async startUpload(repo: string, client: string): Promise<UploadSession> {
    const held = this.#perAddress.get(client) ?? 0;
    if (this.#maxUploadsPerAddress > 0 && held >= this.#maxUploadsPerAddress) {
      throw new HttpError(
        'TOOMANYREQUESTS',
        `${held} upload sessions are open from this address, the most it may hold: finish or cancel some (idle ones expire after ${Math.round(this.#uploadTtl / 60_000)} minutes)`,
        { headers: { 'Retry-After': '60' } },
      );
    }
    const session: UploadSession = {
      id: randomUUID(),
      repo,
      client,
      size: 0,
      hash: createHash('sha256'),
      busy: false,
      idle: Promise.resolve(),
      lastUsed: Date.now(),
    };
    // Counted before the await, so that concurrent starts cannot all pass the check.
    this.#sessions.set(session.id, session);
    this.#perAddress.set(client, held + 1);
    try {
      const file = await open(this.#uploadPath(session.id), 'wx');
      await file.close();
    } catch (error) {
      this.#forget(session);
      throw error;
    }
    return session;
  }

  /** Drops the session from the table and from its address's count; once. */
  #forget(session: UploadSession): void {
    if (!this.#sessions.delete(session.id)) return;
    const left = (this.#perAddress.get(session.client) ?? 1) - 1;
    if (left <= 0) this.#perAddress.delete(session.client);
    else this.#perAddress.set(session.client, left);
  }

  /**
   * The session `id`, which must belong to `repo`: one repository cannot
   * touch another's uploads.
   * @throws HttpError BLOB_UPLOAD_UNKNOWN.
   */
  session(repo: string, id: string): UploadSession {
    const session = this.#sessions.get(id);
    if (!session || session.repo !== repo) throw new HttpError('BLOB_UPLOAD_UNKNOWN', 'unknown upload session');
    session.lastUsed = Date.now();
    return session;
  }

  /**
   * Appends a request body to the session, hashing as it goes. A body that
   * fails half way (the client went away, the size limit) is cut back off
   * the file and the hash, so the session stays at its previous size.
   * Waits for a request already writing to the session. `claim` is the
   * body's length, or a function that checks the chunk against the session
   * once it is this request's alone (two PATCHes of the same range must not
   * both pass the check) and returns the length.
   * @throws HttpError BLOB_UPLOAD_UNKNOWN (finished or cancelled meanwhile),
   * SIZE_INVALID (over `expected` or the blob size limit); what `claim` throws.
   */
  async append(
    session: UploadSession,
    body: Readable,
    claim?: number | ((session: UploadSession) => number | undefined),
  ): Promise<void> {
    const release = await this.#acquire(session);
    let expected: number | undefined;
    try {
      expected = typeof claim === 'function' ? claim(session) : claim;
    } catch (error) {
      release();
      throw error;
    }
    const before = session.size;
    const saved = session.hash.copy();
    let received = 0;
    const limit = this.maxBlobSize - before;
    const hash = session.hash;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        received += chunk.length;
        if (received > limit) return done(new HttpError('SIZE_INVALID', 'blob is larger than the registry accepts', { status: 413 }));
        if (expected !== undefined && received > expected) {
          return done(new HttpError('SIZE_INVALID', 'body is longer than its Content-Length or Content-Range'));
        }
        hash.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await copy(body, meter, createWriteStream(this.#uploadPath(session.id), { flags: 'a' }));
      if (expected !== undefined && received !== expected) {
        throw new HttpError('SIZE_INVALID', `body has ${received} bytes, ${expected} expected`);
      }
      session.size = before + received;
    } catch (error) {
      session.hash = saved;
      await this.#truncate(session, before);
      throw error;
    } finally {
      session.lastUsed = Date.now();
      release();
    }
  }

  async #acquire(session: UploadSession): Promise<() => void> {
    // Check and take in one synchronous step after the last await, so two
    // waiters woken together cannot both take the session.
    while (session.busy) await session.idle;
    if (!this.#sessions.has(session.id)) throw new HttpError('BLOB_UPLOAD_UNKNOWN', 'unknown upload session');
    session.busy = true;
    let release!: () => void;
    session.idle = new Promise((resolve) => {
      release = () => {
        session.busy = false;
        resolve();
      };
    });
    return release;
  }

  /**
   * Finishes the session as blob `digest`: checks the digest and fsyncs the
   * file. The session is over either way; on a mismatch nothing is left.
   * @returns the size, `place` (renames the file into blobs/ and syncs the
   * directory, synchronously: the store runs it inside linkBlob's
   * transaction) and `discard` (removes the upload file if it is still
   * there, for when the link failed).
   * @throws HttpError DIGEST_INVALID, BLOB_UPLOAD_UNKNOWN (finished meanwhile).
   */
  async finish(session: UploadSession, digest: string): Promise<FinishedUpload> {
    const release = await this.#acquire(session);
    const file = this.#uploadPath(session.id);
    // The session is over whatever happens: requests waiting on it find it unknown.
    this.#forget(session);
    const discard = () => rm(file, { force: true });
    try {
      const actual = digest.startsWith('sha256:')
        ? `sha256:${session.hash.digest('hex')}`
        : await hashFile(file, digest.slice(0, digest.indexOf(':')));
      if (actual !== digest) {
        throw new HttpError('DIGEST_INVALID', `the upload's digest is ${actual}, not ${digest}`, { detail: { digest: actual } });
      }
      const handle = await open(file, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      const target = this.blobPath(digest);
      await mkdir(path.dirname(target), { recursive: true });
      const place = () => {
        // Same digest, same bytes: replacing a blob that is already there is harmless.
        renameSync(file, target);
        syncDirectory(path.dirname(target));
      };
      return { size: session.size, place, discard };
    } catch (error) {
      await discard();
      throw error;
    } finally {
      release();
    }
  }

  /** Cancels the session and removes its file. */
  async cancel(session: UploadSession): Promise<void> {
    this.#forget(session);
    await rm(this.#uploadPath(session.id), { force: true });
  }

  #uploadPath(id: string): string {
    return path.join(this.uploadsDir, id);
  }

  async #truncate(session: UploadSession, size: number): Promise<void> {
    try {
      const handle = await open(this.#uploadPath(session.id), 'r+');
      try {
        await handle.truncate(size);
      } finally {
        await handle.close();
      }
    } catch {
      // The file is gone (cancelled meanwhile): the session is unusable anyway.
      this.#forget(session);
    }
  }

  async #sweep(): Promise<void> {
    const cutoff = Date.now() - this.#uploadTtl;
    for (const session of [...this.#sessions.values()]) {
      if (!session.busy && session.lastUsed < cutoff) await this.cancel(session).catch(() => {});
    }
  }
}

/**
 * Pipes `body` through `meter` into `out` and resolves once `out` is closed.
 * Unlike stream.pipeline, a failure does not destroy `body`: for a request,
 * that would destroy the socket before the client hears why. The caller
 * answers and discards the rest of the body.
 */
function copy(body: Readable, meter: Transform, out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    let failure: unknown;
    const fail = (error: unknown) => {
      if (failure !== undefined) return;
      failure = error;
      body.unpipe(meter);
      meter.destroy();
      out.destroy();
    };
    body.on('error', fail);
    // finished() and not a 'close' listener: the body may be copied after an
    // await, when a client that went away has already closed the request;
    // finished() reports that at once, a listener would wait forever and
    // hold the session and the file open.
    finished(body, { writable: false }, (error) => {
      if (error) fail(new HttpError('BLOB_UPLOAD_INVALID', 'the client went away mid-body'));
    });
    meter.on('error', fail);
    out.on('error', fail);
    out.on('close', () => (failure === undefined ? resolve() : reject(failure)));
    body.pipe(meter).pipe(out);
  });
}

async function hashFile(file: string, algorithm: string): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `${algorithm}:${hash.digest('hex')}`;
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
