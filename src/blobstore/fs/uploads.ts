// Upload sessions on a directory: their bytes in uploads/<id>, their
// bookkeeping in UploadSessions given from outside (the metadata database,
// for a registry), so that any process sharing the directory and the table
// may take the next chunk of any session.
//
// One writer at a time per session, across processes (claims.ts): the
// writer cuts the file back to the committed size (what a crash mid-chunk
// left beyond it is not part of the upload), appends, and commits the new
// size.
//
// The sha256 state of a session lives in the process that fed it (Node's
// Hash cannot be exported), valid while its byte count equals the committed
// size; a process without it hashes the committed bytes from the file again.

import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rm, stat, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { BlobStoreError, tooLarge } from '../errors.js';
import { hashFile, meteredCopy, stagedFile, syncFile, truncateFile, WRITE_BUFFER_SIZE, type StagedFile } from './io.js';
import { blobPath, uploadPath } from './layout.js';
import type { UploadSessions } from '../../store/index.js';
import { SessionClaims, type SessionHandle } from '../claims.js';
import type { SessionBackend, UploadLimits } from '../front.js';
import type { ChunkClaim, Upload } from '../types.js';


/** The hash of a session's first `size` bytes, as this process fed it. */
interface HashState {
  hash: Hash;
  size: number;
  used: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The upload sessions of one data directory. */
export class DirectoryUploads implements SessionBackend<StagedFile> {
  /** Sessions whose committed bytes this process hashed again from the file (another process fed them, or this one restarted). */
  rehashed = 0;
  readonly #dir: string;
  readonly #table: UploadSessions;
  readonly #limits: UploadLimits;
  readonly #claims: SessionClaims;
  readonly #hashes = new Map<string, HashState>();

  constructor(dataDir: string, table: UploadSessions, limits: UploadLimits) {
    this.#dir = dataDir;
    this.#table = table;
    this.#limits = limits;
    this.#claims = new SessionClaims(table, limits.claimLease);
  }

  /** See BlobStore.countUploads. */
  count(): Promise<number> {
    return this.#table.count();
  }

  /** See BlobStore.startUpload. The row is written before the file: a file whose row is gone is no one's. */
  async start(repo: string, client: string): Promise<Upload> {
    const record = await this.#table.open(repo, client, this.#limits.maxUploadsPerAddress);
    try {
      const file = await open(this.#file(record.id), 'wx');
      await file.close();
    } catch (error) {
      await this.#table.end(repo, record.id).catch(() => {});
      throw error;
    }
    return this.#claims.handle(record);
  }

  /** See BlobStore.upload. */
  async get(repo: string, id: string): Promise<Upload> {
    return this.#claims.handle(await this.#table.get(repo, id));
  }

  /** See BlobStore.append. */
  async append(upload: Upload, body: Readable, claim?: number | ChunkClaim): Promise<void> {
    const handle = this.#claims.handleOf(upload);
    await this.#claims.exclusive(handle, async (owner, lost) => {
      const expected = typeof claim === 'function' ? claim(handle) : claim;
      const before = handle.size;
      const hash = await this.#hashOf(handle);
      const saved = hash.copy();
      let received: number;
      try {
        received = await meteredCopy(body, createWriteStream(this.#file(handle.id), { flags: 'a', highWaterMark: WRITE_BUFFER_SIZE }), {
          hash,
          limit: this.#limits.maxBlobSize - before,
          tooLarge: () => tooLarge(this.#limits.maxBlobSize),
          expected,
        });
        await this.#checkLength(handle.id, before + received);
      } catch (error) {
        this.#remember(handle.id, saved, before);
        // Cut back only while the session is still ours: after a lost claim another writer owns the file.
        if (!lost()) await truncateFile(this.#file(handle.id), before).catch(() => {});
        throw error;
      }
      try {
        await this.#table.commit(handle.id, owner, before + received);
      } catch (error) {
        // Ended meanwhile, or taken over: this hash is past whatever is committed now.
        this.#hashes.delete(handle.id);
        throw error;
      }
      handle.size = before + received;
      this.#remember(handle.id, hash, handle.size);
    });
  }

  /**
   * The file is appended to, so a writer that lost its claim while its body
   * still streamed (its lease ran out, or its holder's database connection
   * went) and that has not learnt it yet adds to its length: a length other
   * than this writer's own means the bytes of two writers, and nothing of
   * them is committed.
   * @throws BlobStoreError TOOMANYREQUESTS when the file is not `length` bytes long.
   */
  async #checkLength(id: string, length: number): Promise<void> {
    const { size } = await stat(this.#file(id));
    if (size !== length) {
      throw new BlobStoreError('TOOMANYREQUESTS', 'another request wrote to this upload session at the same time: try the chunk again', { retryAfter: 1 });
    }
  }

  /** See BlobStore.finish. */
  async finish(upload: Upload, digest: string): Promise<StagedFile> {
    const handle = this.#claims.handleOf(upload);
    const file = this.#file(handle.id);
    const discard = () => rm(file, { force: true }).catch(() => {});
    // Once the claim is ours, the session is over whatever happens; a finish
    // that lost the race to another hears BLOB_UPLOAD_UNKNOWN and touches nothing.
    return this.#claims.exclusive(handle, async () => {
      try {
        const target = blobPath(this.#dir, digest);
        const hash = await this.#hashOf(handle);
        const actual = digest.startsWith('sha256:') ? `sha256:${hash.digest('hex')}` : await hashFile(file, digest.slice(0, digest.indexOf(':')));
        if (actual !== digest) {
          throw new BlobStoreError('DIGEST_INVALID', `the upload's digest is ${actual}, not ${digest}`, { detail: { digest: actual } });
        }
        // A fresh time before the row goes: a sweep of stray files, which
        // spares young ones, must not take this file while it is placed.
        const now = new Date();
        await utimes(file, now, now);
        await this.#end(handle);
        await syncFile(file);
        await mkdir(path.dirname(target), { recursive: true });
        return stagedFile(file, target, handle.size, discard);
      } catch (error) {
        await this.#end(handle);
        await discard();
        throw error;
      }
    });
  }

  /** See BlobStore.cancel. The row goes first, then the file. */
  async cancel(upload: Upload): Promise<void> {
    const handle = this.#claims.handleOf(upload);
    this.#hashes.delete(handle.id);
    await this.#table.end(handle.repo, handle.id);
    await rm(this.#file(handle.id), { force: true });
  }

  /** Ends the session in the table (requests waiting on it then find it unknown) and forgets its hash. Never throws: the row of a session whose file is gone is ended by the next writer. */
  async #end(handle: SessionHandle): Promise<void> {
    this.#hashes.delete(handle.id);
    await this.#table.end(handle.repo, handle.id).catch(() => {});
  }

  /**
   * Expires the sessions idle past the TTL, row first and then file (two
   * processes sweeping at once remove each once), removes files under
   * uploads/ older than `strayBefore` that no session names, and forgets
   * hash states idle past the TTL.
   * @returns the sessions expired and the stray files removed.
   * @throws the table's or the filesystem's error.
   */
  async sweep(strayBefore = new Date(Date.now() - this.#limits.uploadTtl)): Promise<{ expired: number; strays: string[] }> {
    const idleBefore = new Date(Date.now() - this.#limits.uploadTtl);
    let expired = 0;
    for (let batch = await this.#table.idle(idleBefore, 100); batch.length > 0; batch = await this.#table.idle(idleBefore, 100)) {
      let progress = false;
      for (const session of batch) {
        if (!(await this.#table.expire(session.id, idleBefore))) continue;
        progress = true;
        expired++;
        this.#hashes.delete(session.id);
        await rm(this.#file(session.id), { force: true });
      }
      // Another sweeper took this batch: the next read would give the same rows back.
      if (!progress) break;
    }
    for (const [id, state] of this.#hashes) if (state.used < idleBefore.getTime()) this.#hashes.delete(id);
    return { expired, strays: await this.#removeStrays(strayBefore) };
  }

  /** Files under uploads/ older than `before` whose session the table does not have (checked after the listing). */
  async #removeStrays(before: Date): Promise<string[]> {
    const dir = path.join(this.#dir, 'uploads');
    const removed: string[] = [];
    for (const name of await readdir(dir).catch(() => [])) {
      const file = path.join(dir, name);
      const stats = await stat(file).catch(() => undefined);
      if (stats === undefined || !stats.isFile() || stats.mtime >= before) continue;
      // Rows are written before files, so a row that is not there now never will be.
      if (UUID.test(name) && (await this.#table.has(name))) continue;
      await rm(file, { force: true });
      removed.push(file);
    }
    return removed;
  }

  /**
   * The hash of the session's committed bytes: this process's own when it is
   * at the committed size, else hashed again from the file. First cuts the
   * file back to the committed size (a crash mid-chunk may have left more).
   * @throws BlobStoreError BLOB_UPLOAD_UNKNOWN when the file is gone or
   * shorter than the committed size (then the session is ended).
   */
  async #hashOf(handle: SessionHandle): Promise<Hash> {
    const file = this.#file(handle.id);
    const size = handle.size;
    const stats = await stat(file).catch(() => undefined);
    if (stats === undefined || stats.size < size) {
      await this.#end(handle);
      await rm(file, { force: true });
      throw new BlobStoreError('BLOB_UPLOAD_UNKNOWN', "the upload session's bytes are gone");
    }
    if (stats.size > size) await truncateFile(file, size);
    const state = this.#hashes.get(handle.id);
    if (state !== undefined && state.size === size) {
      state.used = Date.now();
      return state.hash;
    }
    const hash = createHash('sha256');
    if (size > 0) {
      this.rehashed++;
      for await (const chunk of createReadStream(file, { end: size - 1, highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
    }
    this.#remember(handle.id, hash, size);
    return hash;
  }

  #remember(id: string, hash: Hash, size: number): void {
    this.#hashes.set(id, { hash, size, used: Date.now() });
  }

  #file(id: string): string {
    return uploadPath(this.#dir, id);
  }
}
