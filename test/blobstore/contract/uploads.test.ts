// Upload sessions, on every backend and every session table: append with
// hashing and cut-back, finish with the digest check and a place that only
// the caller runs, the per-address cap, the expiry of idle sessions, and
// several blob stores (processes) sharing one storage and one table.

import { createHash } from 'node:crypto';
import { text } from 'node:stream/consumers';
import type { UploadSessions } from 'regmeta';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobStoreError } from '../../../src/blobstore/errors.js';
import type { BlobStore, BlobStoreOptions } from '../../../src/blobstore/types.js';
import { sha256, streamOf } from '../helpers.js';
import { backends, sessionTables, type Storage } from './backends.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(backends)('upload sessions ($name)', (backend) => {
  describe.each(sessionTables)('$name', (table) => {
    let storage: Storage;
    let sessions: UploadSessions;
    let closeTable: () => Promise<void>;
    let blobs: BlobStore;
    /** Another blob store on the same storage and table: another process. */
    const another = (options: BlobStoreOptions = {}) => {
      const other = storage.open({ ...options, sessions });
      other.init();
      return other;
    };
    beforeEach(async () => {
      ({ sessions, close: closeTable } = table.open());
      storage = await backend.create();
      blobs = another({ maxBlobSize: 1000, maxUploadsPerAddress: 2 });
    });
    afterEach(async () => {
      await storage.cleanup();
      await closeTable();
    });

    const placed = async (digest: string) => text(blobs.read(digest));

    describe('an upload', () => {
      it('appends, hashes and places the blob only when the caller runs place', async () => {
        const upload = await blobs.startUpload('acme/app', '10.0.0.1');
        expect(upload).toMatchObject({ repo: 'acme/app', size: 0 });
        expect(await blobs.countUploads()).toBe(1);
        await blobs.append(upload, streamOf(['hello ']), 6);
        await blobs.append(upload, streamOf(['world']));
        expect(upload.size).toBe(11);
        const staged = await blobs.finish(upload, sha256('hello world'));
        expect(staged.size).toBe(11);
        expect(await blobs.stat(sha256('hello world'))).toBeUndefined();
        await staged.place();
        await staged.discard();
        expect(await placed(sha256('hello world'))).toBe('hello world');
        expect(await storage.uploadsKept()).toEqual([]);
        expect(await blobs.countUploads()).toBe(0);
        expect(await blobs.stat(sha256('hello world'))).toMatchObject({ size: 11 });
      });

      it('verifies sha512 digests', async () => {
        const upload = await blobs.startUpload('acme/app', 'a');
        await blobs.append(upload, streamOf(['sha512 content']));
        const digest = `sha512:${createHash('sha512').update('sha512 content').digest('hex')}`;
        await (await blobs.finish(upload, digest)).place();
        expect(await placed(digest)).toBe('sha512 content');
      });

      it('refuses a digest the bytes do not have with DIGEST_INVALID and the actual digest, and leaves nothing', async () => {
        const upload = await blobs.startUpload('acme/app', 'a');
        await blobs.append(upload, streamOf(['these bytes']));
        const error = await blobs.finish(upload, sha256('other bytes')).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(BlobStoreError);
        expect(error).toMatchObject({ code: 'DIGEST_INVALID', detail: { digest: sha256('these bytes') } });
        expect(await storage.uploadsKept()).toEqual([]);
        await expect(blobs.upload('acme/app', upload.id)).rejects.toMatchObject({ code: 'BLOB_UPLOAD_UNKNOWN' });
      });

      it('cuts a body that fails half way back off the bytes and the hash', async () => {
        const upload = await blobs.startUpload('acme/app', 'a');
        await blobs.append(upload, streamOf(['kept ']));
        await expect(blobs.append(upload, streamOf(['lost bytes'], new Error('reset')))).rejects.toThrow();
        expect(upload.size).toBe(5);
        await blobs.append(upload, streamOf(['and more']));
        await (await blobs.finish(upload, sha256('kept and more'))).place();
        expect(await placed(sha256('kept and more'))).toBe('kept and more');
      });

      it('refuses a body longer or shorter than claimed with SIZE_INVALID, appending nothing', async () => {
        const upload = await blobs.startUpload('acme/app', 'a');
        for (const claim of [3, 20]) {
          const error = await blobs.append(upload, streamOf(['ten bytes!']), claim).catch((e: unknown) => e);
          expect(error).toMatchObject({ code: 'SIZE_INVALID' });
          expect((error as BlobStoreError).limit).toBeUndefined();
          expect(upload.size).toBe(0);
        }
      });

      it('refuses a blob over maxBlobSize with SIZE_INVALID carrying the limit', async () => {
        const upload = await blobs.startUpload('acme/app', 'a');
        await blobs.append(upload, streamOf([Buffer.alloc(600)]));
        const error = await blobs.append(upload, streamOf([Buffer.alloc(600)])).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(BlobStoreError);
        expect(error).toMatchObject({ code: 'SIZE_INVALID', limit: 1000 });
        expect(upload.size).toBe(600);
      });

      it("runs a claim once the session is the caller's alone, and passes on what it throws", async () => {
        const upload = await blobs.startUpload('acme/app', 'a');
        const seen: number[] = [];
        await Promise.all([
          blobs.append(upload, streamOf(['12345']), (u) => (seen.push(u.size), 5)),
          blobs.append(upload, streamOf(['67890']), (u) => (seen.push(u.size), 5)),
        ]);
        expect(seen).toEqual([0, 5]);
        const refusal = new Error('out of order');
        await expect(blobs.append(upload, streamOf(['x']), () => { throw refusal; })).rejects.toBe(refusal);
        expect(upload.size).toBe(10);
      });

      it("keeps one repository out of another repository's sessions, and forgets cancelled ones", async () => {
        const upload = await blobs.startUpload('owner', 'a');
        await expect(blobs.upload('thief', upload.id)).rejects.toMatchObject({ code: 'BLOB_UPLOAD_UNKNOWN' });
        expect(await blobs.upload('owner', upload.id)).toMatchObject({ id: upload.id, repo: 'owner', size: 0 });
        await blobs.cancel(upload);
        expect(await storage.uploadsKept()).toEqual([]);
        await expect(blobs.upload('owner', upload.id)).rejects.toBeInstanceOf(BlobStoreError);
        await expect(blobs.append(upload, streamOf(['x']))).rejects.toMatchObject({ code: 'BLOB_UPLOAD_UNKNOWN' });
        await blobs.cancel(upload);
      });

      it('refuses a handle it did not give out with BLOB_UPLOAD_UNKNOWN', async () => {
        const upload = await blobs.startUpload('acme/app', 'a');
        const forged = { id: upload.id, repo: upload.repo, size: 0 };
        await expect(blobs.append(forged, streamOf(['x']))).rejects.toMatchObject({ code: 'BLOB_UPLOAD_UNKNOWN' });
        await expect(blobs.cancel(forged)).rejects.toBeInstanceOf(BlobStoreError);
      });

      it('finishes once when two finishes race: the other hears BLOB_UPLOAD_UNKNOWN', async () => {
        const upload = await blobs.startUpload('acme/app', 'a');
        await blobs.append(upload, streamOf(['raced']));
        const results = await Promise.allSettled([blobs.finish(upload, sha256('raced')), blobs.finish(upload, sha256('raced'))]);
        expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
        const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        expect(rejected.reason).toBeInstanceOf(BlobStoreError);
        expect(rejected.reason).toMatchObject({ code: 'BLOB_UPLOAD_UNKNOWN' });
      });
    });

    describe('the per-address cap', () => {
      it('answers TOOMANYREQUESTS with retryAfter past the cap, per address, and frees a place when a session ends', async () => {
        const first = await blobs.startUpload('r', '10.0.0.1');
        await blobs.startUpload('r', '10.0.0.1');
        const error = await blobs.startUpload('r', '10.0.0.1').catch((e: unknown) => e);
        expect(error).toBeInstanceOf(BlobStoreError);
        expect(error).toMatchObject({ code: 'TOOMANYREQUESTS', retryAfter: 60 });
        await blobs.startUpload('r', '10.0.0.2');
        await blobs.cancel(first);
        await blobs.startUpload('r', '10.0.0.1');
      });
    });

    describe('idle sessions', () => {
      it('expire after the TTL, with their bytes', async () => {
        const short = another({ uploadTtl: 30 });
        const upload = await short.startUpload('r', 'a');
        await short.append(upload, streamOf(['abandoned']));
        await sleep(200);
        await expect(short.upload('r', upload.id)).rejects.toMatchObject({ code: 'BLOB_UPLOAD_UNKNOWN' });
        expect(await storage.uploadsKept()).toEqual([]);
      });

      it('expire each once when two sweep at once', async () => {
        const a = another({ uploadTtl: 50, maxUploadsPerAddress: 0 });
        const b = another({ uploadTtl: 50 });
        a.close();
        b.close();
        for (let i = 0; i < 5; i++) await a.startUpload('acme/app', 'a');
        await sleep(100);
        const [first, second] = await Promise.all([a.sweepUploads(), b.sweepUploads()]);
        expect(first.expired + second.expired).toBe(5);
        expect(await sessions.count()).toBe(0);
        expect(await storage.uploadsKept()).toEqual([]);
      });
    });

    describe('shared by several blob stores (processes) on one storage and table', () => {
      it('takes up a session another started, and goes on', async () => {
        const other = another({ maxBlobSize: 1000 });
        const upload = await blobs.startUpload('acme/app', 'a');
        await blobs.append(upload, streamOf(['first ']));
        const there = await other.upload('acme/app', upload.id);
        expect(there.size).toBe(6);
        await other.append(there, streamOf(['second ']));
        await other.append(there, streamOf(['third']));
        const back = await blobs.upload('acme/app', upload.id);
        expect(back.size).toBe(18);
        await (await blobs.finish(back, sha256('first second third'))).place();
        expect(await placed(sha256('first second third'))).toBe('first second third');
      });

      it('waits for the claim of a writer that died until its lease runs out, then appends', async () => {
        const upload = await blobs.startUpload('acme/app', 'a');
        expect(await sessions.claim('acme/app', upload.id, 'a-process-that-died', 300)).toEqual({ size: 0 });
        const other = another({ claimLease: 300 });
        const there = await other.upload('acme/app', upload.id);
        let appended = false;
        const append = other.append(there, streamOf(['after'])).then(() => (appended = true));
        await sleep(100);
        expect(appended).toBe(false);
        await append;
        expect(there.size).toBe(5);
      });

      it('answers TOOMANYREQUESTS, appending nothing, while another writer holds the session past a lease and a margin', async () => {
        const upload = await blobs.startUpload('acme/app', 'a');
        await sessions.claim('acme/app', upload.id, 'a-slow-writer', 60_000);
        const other = another({ claimLease: 100 });
        const error = await other.append(await other.upload('acme/app', upload.id), streamOf(['x'])).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(BlobStoreError);
        expect(error).toMatchObject({ code: 'TOOMANYREQUESTS', retryAfter: 1 });
        await sessions.release(upload.id, 'a-slow-writer');
        expect((await blobs.upload('acme/app', upload.id)).size).toBe(0);
      });
    });
  });
});
