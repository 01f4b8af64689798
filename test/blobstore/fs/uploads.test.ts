// Upload sessions on the directory store: append with hashing and cut-back,
// finish with the digest check and a place that only the caller runs, the
// per-address cap and the expiry of idle sessions; on a session table in
// memory and on one in a real SQLite metadata store, which several blob
// stores (processes, to the table) share.

import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobStoreError, DirectoryBlobStore, MemorySessionTable, type SessionTable } from '../../../src/blobstore/index.js';
import { asyncStore, openStore, type MetadataStore } from '../../../src/index.js';
import { storeSessions } from '../../../src/server/index.js';
import { sha256, streamOf, tempStore, type TestStore } from './helpers.js';

/** A session table, and what closes it. */
interface Table {
  sessions: SessionTable;
  close(): void;
}

const tables: { name: string; open(): Table }[] = [
  { name: 'in memory', open: () => ({ sessions: new MemorySessionTable(), close: () => {} }) },
  {
    name: 'in a SQLite store',
    open: () => {
      const store: MetadataStore = openStore(':memory:');
      return { sessions: storeSessions(asyncStore(store)), close: () => store.close() };
    },
  },
];

describe.each(tables)('sessions $name', (table) => {
  let t: TestStore;
  let sessions: SessionTable;
  let closeTable: () => void;
  beforeEach(() => {
    ({ sessions, close: closeTable } = table.open());
    t = tempStore({ maxBlobSize: 1000, maxUploadsPerAddress: 2, sessions });
  });
  afterEach(() => {
    t.cleanup();
    closeTable();
  });

  const uploads = () => readdirSync(path.join(t.dir, 'uploads'));

  describe('init', () => {
    it("creates blobs/ and uploads/ and leaves what is in uploads/: another process's sessions", async () => {
      const upload = await t.blobs.startUpload('acme/app', 'a');
      writeFileSync(path.join(t.dir, 'uploads', 'left-over'), 'x');
      t.blobs.init();
      expect(uploads().sort()).toEqual(['left-over', upload.id].sort());
      expect(statSync(path.join(t.dir, 'blobs')).isDirectory()).toBe(true);
    });
  });

  describe('an upload', () => {
    it('appends, hashes and places the blob only when the caller runs place', async () => {
      const upload = await t.blobs.startUpload('acme/app', '10.0.0.1');
      expect(upload).toMatchObject({ repo: 'acme/app', size: 0 });
      await t.blobs.append(upload, streamOf(['hello ']), 6);
      await t.blobs.append(upload, streamOf(['world']));
      expect(upload.size).toBe(11);
      const staged = await t.blobs.finish(upload, sha256('hello world'));
      expect(staged.size).toBe(11);
      expect(existsSync(t.file(sha256('hello world')))).toBe(false);
      staged.place();
      await staged.discard();
      expect(readFileSync(t.file(sha256('hello world')), 'utf8')).toBe('hello world');
      expect(uploads()).toEqual([]);
      expect(await t.blobs.stat(sha256('hello world'))).toMatchObject({ size: 11 });
    });

    it('verifies sha512 digests by reading the bytes back', async () => {
      const upload = await t.blobs.startUpload('acme/app', 'a');
      await t.blobs.append(upload, streamOf(['sha512 content']));
      const digest = `sha512:${createHash('sha512').update('sha512 content').digest('hex')}`;
      const staged = await t.blobs.finish(upload, digest);
      staged.place();
      expect(readFileSync(t.file(digest), 'utf8')).toBe('sha512 content');
    });

    it('refuses a digest the bytes do not have with DIGEST_INVALID and the actual digest, and leaves nothing', async () => {
      const upload = await t.blobs.startUpload('acme/app', 'a');
      await t.blobs.append(upload, streamOf(['these bytes']));
      const error = await t.blobs.finish(upload, sha256('other bytes')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BlobStoreError);
      expect(error).toMatchObject({ code: 'DIGEST_INVALID', detail: { digest: sha256('these bytes') } });
      expect(uploads()).toEqual([]);
      await expect(t.blobs.upload('acme/app', upload.id)).rejects.toMatchObject({ code: 'BLOB_UPLOAD_UNKNOWN' });
    });

    it('cuts a body that fails half way back off the file and the hash', async () => {
      const upload = await t.blobs.startUpload('acme/app', 'a');
      await t.blobs.append(upload, streamOf(['kept ']));
      await expect(t.blobs.append(upload, streamOf(['lost bytes'], new Error('reset')))).rejects.toThrow();
      expect(upload.size).toBe(5);
      expect(statSync(path.join(t.dir, 'uploads', upload.id)).size).toBe(5);
      await t.blobs.append(upload, streamOf(['and more']));
      (await t.blobs.finish(upload, sha256('kept and more'))).place();
      expect(readFileSync(t.file(sha256('kept and more')), 'utf8')).toBe('kept and more');
    });

    it('refuses a body longer or shorter than claimed with SIZE_INVALID, appending nothing', async () => {
      const upload = await t.blobs.startUpload('acme/app', 'a');
      for (const claim of [3, 20]) {
        const error = await t.blobs.append(upload, streamOf(['ten bytes!']), claim).catch((e: unknown) => e);
        expect(error).toMatchObject({ code: 'SIZE_INVALID' });
        expect((error as BlobStoreError).limit).toBeUndefined();
        expect(upload.size).toBe(0);
      }
    });

    it('refuses a blob over maxBlobSize with SIZE_INVALID carrying the limit', async () => {
      const upload = await t.blobs.startUpload('acme/app', 'a');
      await t.blobs.append(upload, streamOf([Buffer.alloc(600)]));
      const error = await t.blobs.append(upload, streamOf([Buffer.alloc(600)])).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BlobStoreError);
      expect(error).toMatchObject({ code: 'SIZE_INVALID', limit: 1000 });
      expect(upload.size).toBe(600);
    });

    it('runs a claim once the session is the caller\'s alone, and passes on what it throws', async () => {
      const upload = await t.blobs.startUpload('acme/app', 'a');
      const seen: number[] = [];
      await Promise.all([
        t.blobs.append(upload, streamOf(['12345']), (u) => (seen.push(u.size), 5)),
        t.blobs.append(upload, streamOf(['67890']), (u) => (seen.push(u.size), 5)),
      ]);
      expect(seen).toEqual([0, 5]);
      const refusal = new Error('out of order');
      await expect(t.blobs.append(upload, streamOf(['x']), () => { throw refusal; })).rejects.toBe(refusal);
      expect(upload.size).toBe(10);
    });

    it('keeps one repository out of another repository\'s sessions, and forgets cancelled ones', async () => {
      const upload = await t.blobs.startUpload('owner', 'a');
      await expect(t.blobs.upload('thief', upload.id)).rejects.toMatchObject({ code: 'BLOB_UPLOAD_UNKNOWN' });
      expect(await t.blobs.upload('owner', upload.id)).toMatchObject({ id: upload.id, repo: 'owner', size: 0 });
      await t.blobs.cancel(upload);
      expect(uploads()).toEqual([]);
      await expect(t.blobs.upload('owner', upload.id)).rejects.toBeInstanceOf(BlobStoreError);
      await expect(t.blobs.append(upload, streamOf(['x']))).rejects.toMatchObject({ code: 'BLOB_UPLOAD_UNKNOWN' });
    });

    it('finishes once when two finishes race: the other hears BLOB_UPLOAD_UNKNOWN', async () => {
      const upload = await t.blobs.startUpload('acme/app', 'a');
      await t.blobs.append(upload, streamOf(['raced']));
      const results = await Promise.allSettled([t.blobs.finish(upload, sha256('raced')), t.blobs.finish(upload, sha256('raced'))]);
      expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(rejected.reason).toMatchObject({ code: 'BLOB_UPLOAD_UNKNOWN' });
    });
  });

  describe('the per-address cap', () => {
    it('answers TOOMANYREQUESTS with retryAfter past the cap, per address, and frees a place when a session ends', async () => {
      const first = await t.blobs.startUpload('r', '10.0.0.1');
      await t.blobs.startUpload('r', '10.0.0.1');
      const error = await t.blobs.startUpload('r', '10.0.0.1').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BlobStoreError);
      expect(error).toMatchObject({ code: 'TOOMANYREQUESTS', retryAfter: 60 });
      await t.blobs.startUpload('r', '10.0.0.2');
      await t.blobs.cancel(first);
      await t.blobs.startUpload('r', '10.0.0.1');
    });
  });

  describe('idle sessions', () => {
    it('expire after the TTL, with their bytes', async () => {
      const short = tempStore({ uploadTtl: 30, sessions });
      try {
        const upload = await short.blobs.startUpload('r', 'a');
        await short.blobs.append(upload, streamOf(['abandoned']));
        await new Promise((resolve) => setTimeout(resolve, 200));
        await expect(short.blobs.upload('r', upload.id)).rejects.toMatchObject({ code: 'BLOB_UPLOAD_UNKNOWN' });
        expect(readdirSync(path.join(short.dir, 'uploads'))).toEqual([]);
      } finally {
        short.cleanup();
      }
    });
  });

  describe('shared by several blob stores (processes) on one directory and table', () => {
    it('takes up a session another started, hashing its committed bytes again once, then goes on', async () => {
      const other = new DirectoryBlobStore(t.dir, { maxBlobSize: 1000, sessions });
      other.init();
      try {
        const upload = await t.blobs.startUpload('acme/app', 'a');
        await t.blobs.append(upload, streamOf(['first ']));
        const there = await other.upload('acme/app', upload.id);
        expect(there.size).toBe(6);
        await other.append(there, streamOf(['second ']));
        await other.append(there, streamOf(['third']));
        expect(other.rehashedUploads).toBe(1);
        const back = await t.blobs.upload('acme/app', upload.id);
        expect(back.size).toBe(18);
        (await t.blobs.finish(back, sha256('first second third'))).place();
        expect(t.blobs.rehashedUploads).toBe(1);
        expect(readFileSync(t.file(sha256('first second third')), 'utf8')).toBe('first second third');
      } finally {
        other.close();
      }
    });

    it('cuts a file longer than its committed size (a crash mid-chunk) back before the next chunk', async () => {
      const upload = await t.blobs.startUpload('acme/app', 'a');
      await t.blobs.append(upload, streamOf(['kept']));
      appendFileSync(path.join(t.dir, 'uploads', upload.id), 'half a chunk');
      const other = new DirectoryBlobStore(t.dir, { maxBlobSize: 1000, sessions });
      const there = await other.upload('acme/app', upload.id);
      await other.append(there, streamOf([' and more']), (u) => (expect(u.size).toBe(4), 9));
      expect(readFileSync(path.join(t.dir, 'uploads', upload.id), 'utf8')).toBe('kept and more');
      (await other.finish(there, sha256('kept and more'))).place();
    });

    it('waits for the claim of a writer that died until its lease runs out, then appends', async () => {
      const upload = await t.blobs.startUpload('acme/app', 'a');
      expect(await sessions.claim('acme/app', upload.id, 'a-process-that-died', 300)).toEqual({ size: 0 });
      const other = new DirectoryBlobStore(t.dir, { sessions, claimLease: 300 });
      const there = await other.upload('acme/app', upload.id);
      let appended = false;
      const append = other.append(there, streamOf(['after'])).then(() => (appended = true));
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(appended).toBe(false);
      await append;
      expect(there.size).toBe(5);
    });

    it('answers TOOMANYREQUESTS, appending nothing, while another writer holds the session past a lease and a margin', async () => {
      const upload = await t.blobs.startUpload('acme/app', 'a');
      await sessions.claim('acme/app', upload.id, 'a-slow-writer', 60_000);
      const other = new DirectoryBlobStore(t.dir, { sessions, claimLease: 100 });
      const error = await other.append(await other.upload('acme/app', upload.id), streamOf(['x'])).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BlobStoreError);
      expect(error).toMatchObject({ code: 'TOOMANYREQUESTS', retryAfter: 1 });
      expect(statSync(path.join(t.dir, 'uploads', upload.id)).size).toBe(0);
    });
  });

  describe('sweeps', () => {
    it("remove old files that no session names, and never a session's file however old", async () => {
      const upload = await t.blobs.startUpload('acme/app', 'a');
      const stray = path.join(t.dir, 'uploads', '0b5e1e7e-0000-4000-8000-000000000000');
      writeFileSync(stray, 'left by a crash');
      const young = path.join(t.dir, 'uploads', 'young');
      writeFileSync(young, 'just written');
      const old = new Date(Date.now() - 3_600_000);
      for (const file of [stray, path.join(t.dir, 'uploads', upload.id)]) utimesSync(file, old, old);
      const { strays } = await t.blobs.sweepUploads({ strayBefore: new Date(Date.now() - 60_000) });
      expect(strays).toEqual([stray]);
      expect(uploads().sort()).toEqual([upload.id, 'young'].sort());
    });

    it('expire each idle session once when two sweep at once, row first, then file', async () => {
      const a = new DirectoryBlobStore(t.dir, { uploadTtl: 50, sessions, maxUploadsPerAddress: 0 });
      const b = new DirectoryBlobStore(t.dir, { uploadTtl: 50, sessions });
      for (let i = 0; i < 5; i++) await a.startUpload('acme/app', 'a');
      await new Promise((resolve) => setTimeout(resolve, 100));
      const [first, second] = await Promise.all([a.sweepUploads(), b.sweepUploads()]);
      expect(first.expired + second.expired).toBe(5);
      expect(await sessions.count()).toBe(0);
      expect(uploads()).toEqual([]);
    });
  });
});
