// Upload sessions in a bucket. A session is a multipart upload of
// uploads/<id>/data. S3 parts are at least 5 MiB but the last, and chunks
// come in any size, so the bytes not yet in a full part wait in the bucket
// as a tail object, and the session's state (its multipart upload, the
// parts with their ETags, the tail's length) is an object keyed by the
// committed size, written before the size is committed in the session
// table: the table's size names the valid state, so a crash between the two
// is harmless, and any process sharing the bucket and the table may take
// the next chunk. One writer at a time (claims.ts).
//
// The sha256 state of a session lives in the process that fed it all (Node's
// Hash cannot be exported); a process that took a session over, or
// restarted, hashes the completed object at finish instead.

import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { CompletedPart } from '@aws-sdk/client-s3';
import { SessionClaims, type SessionHandle } from '../claims.js';
import { BlobStoreError, tooLarge } from '../errors.js';
import { storageError } from './client.js';
import { PartUploads, readParts } from './parts.js';
import { stagedBytes, stagedObject, type S3Context } from './staging.js';
import type { UploadSessions } from '../../store/index.js';
import type { ChunkClaim, StagedBlob, Upload } from '../types.js';
import type { SessionBackend, UploadLimits } from '../front.js';


/** A session's state object. */
interface State {
  /** Its multipart upload, once a full part was there. */
  uploadId?: string;
  parts: CompletedPart[];
  /** The bytes in the tail object. */
  tail: number;
}

/** A session at a committed size, as this process knows it. */
interface Known {
  size: number;
  state: State;
  /** The tail's bytes, when this process keeps them (see TAIL_KEPT). */
  tail?: Buffer;
  /** The hash of every byte, when this process fed them all. */
  hash?: Hash;
  used: number;
}

const EMPTY: State = { parts: [], tail: 0 };

// A tail up to this size stays in memory between chunks, sparing its GET at
// the next append or the finish; a larger one is read back from the bucket,
// so that idle sessions do not hold a part's worth of memory each.
const TAIL_KEPT = 1024 * 1024;

/** The upload sessions of one bucket prefix. */
export class S3Uploads implements SessionBackend<StagedBlob> {
  /** Sessions whose object this process hashed at finish (another process fed them, or this one restarted). */
  rehashed = 0;
  readonly #ctx: S3Context;
  readonly #table: UploadSessions;
  readonly #limits: UploadLimits;
  readonly #claims: SessionClaims;
  readonly #known = new Map<string, Known>();

  constructor(ctx: S3Context, table: UploadSessions, limits: UploadLimits) {
    this.#ctx = ctx;
    this.#table = table;
    this.#limits = limits;
    this.#claims = new SessionClaims(table, limits.claimLease);
  }

  /** See BlobStore.countUploads. */
  count(): Promise<number> {
    return this.#table.count();
  }

  /** See BlobStore.startUpload. Nothing is written to the bucket until the first bytes. */
  async start(repo: string, client: string): Promise<Upload> {
    const record = await this.#table.open(repo, client, this.#limits.maxUploadsPerAddress);
    this.#known.set(record.id, { size: 0, state: EMPTY, tail: Buffer.alloc(0), hash: createHash('sha256'), used: Date.now() });
    return this.#claims.handle(record);
  }

  /** See BlobStore.upload. */
  async get(repo: string, id: string): Promise<Upload> {
    return this.#claims.handle(await this.#table.get(repo, id));
  }

  /** See BlobStore.append. */
  async append(upload: Upload, body: Readable, claim?: number | ChunkClaim): Promise<void> {
    const handle = this.#claims.handleOf(upload);
    await this.#claims.exclusive(handle, async (owner) => {
      const expected = typeof claim === 'function' ? claim(handle) : claim;
      const before = handle.size;
      const known = await this.#withTail(handle, await this.#load(handle));
      const { bucket, layout } = this.#ctx;
      const hash = known.hash?.copy();
      const data = layout.sessionData(handle.id);
      let uploadId = known.state.uploadId;
      let number = known.state.parts.length + 1;
      const parts = new PartUploads((n, part) => bucket.uploadPart(data, uploadId!, n, part), this.#ctx.concurrency);
      let state: State;
      let rest: Buffer;
      let size: number;
      try {
        const read = await readParts(body, known.tail, this.#ctx.partSize, {
          hash,
          limit: this.#limits.maxBlobSize - before,
          tooLarge: () => tooLarge(this.#limits.maxBlobSize),
          expected,
        }, async (part) => {
          uploadId ??= await bucket.createMultipart(data);
          await parts.add(number++, part);
        });
        rest = read.rest;
        size = before + read.received;
        state = { ...(uploadId === undefined ? {} : { uploadId }), parts: [...known.state.parts, ...(await parts.all())], tail: rest.length };
        if (size !== before) {
          if (rest.length > 0) await bucket.put(layout.sessionTail(handle.id, size), rest);
          await bucket.put(layout.sessionState(handle.id, size), Buffer.from(JSON.stringify(state)));
        }
      } catch (error) {
        await parts.settle();
        // A multipart upload this append began and no state names.
        if (uploadId !== undefined && known.state.uploadId === undefined) await bucket.abortMultipart(data, uploadId).catch(() => {});
        throw error;
      }
      try {
        await this.#table.commit(handle.id, owner, size);
      } catch (error) {
        this.#known.delete(handle.id);
        throw error;
      }
      handle.size = size;
      this.#known.set(handle.id, { size, state, ...(rest.length <= TAIL_KEPT ? { tail: rest } : {}), ...(hash === undefined ? {} : { hash }), used: Date.now() });
      if (size !== before && before > 0) {
        // The previous state and tail: no committed size names them now.
        await bucket.delete(layout.sessionState(handle.id, before)).catch(() => {});
        if (known.state.tail > 0) await bucket.delete(layout.sessionTail(handle.id, before)).catch(() => {});
      }
    });
  }

  /** See BlobStore.finish. */
  async finish(upload: Upload, digest: string): Promise<StagedBlob> {
    const handle = this.#claims.handleOf(upload);
    const { bucket, layout } = this.#ctx;
    return this.#claims.exclusive(handle, async () => {
      try {
        const target = layout.blob(digest);
        const known = await this.#withTail(handle, await this.#load(handle));
        const uploadId = known.state.uploadId;
        if (uploadId === undefined) {
          // Every byte in the tail: checked here, put straight under the blob's key by place.
          this.#check(digest, known.hash, () => known.tail);
          await this.#end(handle);
          await this.#destroy(handle.id);
          return stagedBytes(this.#ctx, target, known.tail);
        }
        const data = layout.sessionData(handle.id);
        await this.#complete(data, uploadId, known.state.parts, known.tail);
        if ((await bucket.head(data))?.size !== handle.size) throw new BlobStoreError('BLOB_UPLOAD_UNKNOWN', "the upload session's bytes are not whole");
        const actual = digest.startsWith('sha256:') && known.hash !== undefined ? `sha256:${known.hash.digest('hex')}` : await this.#hashObject(data, digest);
        this.#check(digest, undefined, () => actual);
        await this.#end(handle);
        return stagedObject(this.#ctx, data, target, handle.size, () => this.#destroy(handle.id));
      } catch (error) {
        await this.#end(handle);
        await this.#destroy(handle.id).catch(() => {});
        throw error;
      }
    });
  }

  /**
   * Completes the multipart upload with the tail as its last part. One that
   * a finish which died before it ended the session completed already
   * (NoSuchUpload) is left to the size check that follows.
   * @throws the storage's error.
   */
  async #complete(data: string, uploadId: string, parts: CompletedPart[], tail: Buffer): Promise<void> {
    const { bucket } = this.#ctx;
    try {
      const all = tail.length > 0 ? [...parts, await bucket.uploadPart(data, uploadId, parts.length + 1, tail)] : parts;
      await bucket.completeMultipart(data, uploadId, all);
    } catch (error) {
      if ((error as { code?: string }).code !== 'NoSuchUpload') throw error;
    }
  }

  /** @throws BlobStoreError DIGEST_INVALID when the bytes (or a digest string given by `bytes`) are not `digest`. */
  #check(digest: string, hash: Hash | undefined, bytes: () => Buffer | string): void {
    const algorithm = digest.slice(0, digest.indexOf(':'));
    const value = bytes();
    const actual =
      typeof value === 'string'
        ? value
        : `${algorithm}:${(algorithm === 'sha256' && hash !== undefined ? hash : createHash(algorithm).update(value)).digest('hex')}`;
    if (actual !== digest) {
      throw new BlobStoreError('DIGEST_INVALID', `the upload's digest is ${actual}, not ${digest}`, { detail: { digest: actual } });
    }
  }

  /** The digest of object `key` in `digest`'s algorithm, read from the bucket. */
  async #hashObject(key: string, digest: string): Promise<string> {
    const algorithm = digest.slice(0, digest.indexOf(':'));
    const hash = createHash(algorithm);
    const got = await this.#ctx.bucket.get(key);
    if (got === undefined) throw new BlobStoreError('BLOB_UPLOAD_UNKNOWN', "the upload session's bytes are gone");
    this.rehashed++;
    try {
      for await (const chunk of got.body) hash.update(chunk as Buffer);
    } catch (error) {
      throw storageError(error);
    }
    return `${algorithm}:${hash.digest('hex')}`;
  }

  /** See BlobStore.cancel. The row goes first, then the objects. */
  async cancel(upload: Upload): Promise<void> {
    const handle = this.#claims.handleOf(upload);
    this.#known.delete(handle.id);
    await this.#table.end(handle.repo, handle.id);
    await this.#destroy(handle.id);
  }

  /** Ends the session in the table and forgets it. Never throws. */
  async #end(handle: SessionHandle): Promise<void> {
    this.#known.delete(handle.id);
    await this.#table.end(handle.repo, handle.id).catch(() => {});
  }

  /**
   * Aborts the multipart uploads the session's state objects name and
   * deletes its objects. @throws the storage's error.
   */
  async #destroy(id: string): Promise<void> {
    const { bucket, layout } = this.#ctx;
    for await (const object of bucket.list(layout.session(id))) {
      if (/\/state-\d+$/.test(object.key)) {
        const raw = await bucket.getBytes(object.key);
        const uploadId = raw === undefined ? undefined : (JSON.parse(raw.toString()) as State).uploadId;
        if (uploadId !== undefined) await bucket.abortMultipart(layout.sessionData(id), uploadId);
      }
      await bucket.delete(object.key);
    }
  }

  /**
   * What this process knows of the session at its committed size, else its
   * state read from the bucket (without a hash, nor the tail's bytes).
   * @throws BlobStoreError BLOB_UPLOAD_UNKNOWN when they are gone (then the
   * session is ended); the storage's error.
   */
  async #load(handle: SessionHandle): Promise<Known> {
    const known = this.#known.get(handle.id);
    if (known !== undefined && known.size === handle.size) {
      known.used = Date.now();
      return known;
    }
    if (handle.size === 0) return { size: 0, state: EMPTY, tail: Buffer.alloc(0), hash: createHash('sha256'), used: Date.now() };
    const raw = await this.#ctx.bucket.getBytes(this.#ctx.layout.sessionState(handle.id, handle.size));
    if (raw === undefined) return this.#gone(handle);
    return { size: handle.size, state: JSON.parse(raw.toString()) as State, used: Date.now() };
  }

  /** `known` with its tail's bytes, read from the bucket when this process does not keep them. @throws as #load. */
  async #withTail(handle: SessionHandle, known: Known): Promise<Known & { tail: Buffer }> {
    if (known.tail !== undefined) return known as Known & { tail: Buffer };
    const tail = known.state.tail === 0 ? Buffer.alloc(0) : await this.#ctx.bucket.getBytes(this.#ctx.layout.sessionTail(handle.id, handle.size));
    if (tail === undefined || tail.length !== known.state.tail) return this.#gone(handle);
    return { ...known, tail };
  }

  /** Ends a session whose objects are gone. @throws BlobStoreError BLOB_UPLOAD_UNKNOWN. */
  async #gone(handle: SessionHandle): Promise<never> {
    await this.#end(handle);
    await this.#destroy(handle.id).catch(() => {});
    throw new BlobStoreError('BLOB_UPLOAD_UNKNOWN', "the upload session's bytes are gone");
  }

  /**
   * Expires the sessions idle past the TTL (row first, then objects), removes
   * objects under uploads/ older than `strayBefore` whose session the table
   * does not have, and aborts the multipart uploads begun before it that no
   * session has (where the service lists them).
   * @returns the sessions expired and the stray objects removed.
   * @throws the table's or the storage's error.
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
        this.#known.delete(session.id);
        await this.#destroy(session.id);
      }
      // Another sweeper took this batch: the next read would give the same rows back.
      if (!progress) break;
    }
    for (const [id, known] of this.#known) if (known.used < idleBefore.getTime()) this.#known.delete(id);
    return { expired, strays: await this.#removeStrays(strayBefore) };
  }

  /** Objects and multipart uploads under uploads/ older than `before` whose session the table does not have (checked after the listing). */
  async #removeStrays(before: Date): Promise<string[]> {
    const { bucket, layout } = this.#ctx;
    const removed: string[] = [];
    const gone = new Map<string, boolean>();
    // Sessions are in the table before any of their objects: one that is not there now never will be.
    const orphan = async (key: string) => {
      const id = layout.sessionOf(key);
      if (id === undefined) return true;
      if (!gone.has(id)) gone.set(id, !(await this.#table.has(id)));
      return gone.get(id)!;
    };
    for await (const object of bucket.list(layout.uploads)) {
      if (object.modified >= before || !(await orphan(object.key))) continue;
      if (/\/state-\d+$/.test(object.key)) {
        const raw = await bucket.getBytes(object.key);
        const uploadId = raw === undefined ? undefined : (JSON.parse(raw.toString()) as State).uploadId;
        if (uploadId !== undefined) await bucket.abortMultipart(object.key.replace(/state-\d+$/, 'data'), uploadId);
      }
      await bucket.delete(object.key);
      removed.push(`s3://${bucket.name}/${object.key}`);
    }
    for await (const upload of bucket.listMultipart(layout.uploads)) {
      if (upload.initiated >= before || !(await orphan(upload.key))) continue;
      await bucket.abortMultipart(upload.key, upload.uploadId);
      removed.push(`s3://${bucket.name}/${upload.key}?uploadId=${upload.uploadId}`);
    }
    return removed;
  }
}
