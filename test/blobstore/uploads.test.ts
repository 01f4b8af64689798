// Upload sessions on the directory store: append with hashing and cut-back,
// finish with the digest check and a place that only the caller runs, the
// per-address cap and the expiry of idle sessions.

import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobStoreError } from '../../src/blobstore/index.js';
import { sha256, streamOf, tempStore, type TestStore } from './helpers.js';

let t: TestStore;
beforeEach(() => {
  t = tempStore({ maxBlobSize: 1000, maxUploadsPerAddress: 2 });
});
afterEach(() => t.cleanup());

const uploads = () => readdirSync(path.join(t.dir, 'uploads'));

describe('init', () => {
  it('creates blobs/ and uploads/ and discards what an earlier process left in uploads/', () => {
    writeFileSync(path.join(t.dir, 'uploads', 'left-over'), 'x');
    t.blobs.init();
    expect(uploads()).toEqual([]);
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
    expect(() => t.blobs.upload('acme/app', upload.id)).toThrow(expect.objectContaining({ code: 'BLOB_UPLOAD_UNKNOWN' }));
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
    expect(() => t.blobs.upload('thief', upload.id)).toThrow(expect.objectContaining({ code: 'BLOB_UPLOAD_UNKNOWN' }));
    expect(t.blobs.upload('owner', upload.id)).toBe(upload);
    await t.blobs.cancel(upload);
    expect(uploads()).toEqual([]);
    expect(() => t.blobs.upload('owner', upload.id)).toThrow(BlobStoreError);
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
    const short = tempStore({ uploadTtl: 30 });
    try {
      const upload = await short.blobs.startUpload('r', 'a');
      await short.blobs.append(upload, streamOf(['abandoned']));
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(() => short.blobs.upload('r', upload.id)).toThrow(expect.objectContaining({ code: 'BLOB_UPLOAD_UNKNOWN' }));
      expect(readdirSync(path.join(short.dir, 'uploads'))).toEqual([]);
    } finally {
      short.cleanup();
    }
  });
});
