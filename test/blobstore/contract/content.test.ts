// Finished blobs, on every backend: stat, read and positional reads, put
// from a stream or a file (staged until the caller places it), delete, and
// the listing that check and gc walk, with remove.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobStoreError } from '../../../src/blobstore/errors.js';
import type { BlobStore } from '../../../src/blobstore/types.js';
import { collect, sha256, streamOf } from '../helpers.js';
import { backends, type Storage } from './backends.js';

describe.each(backends)('blob content ($name)', (backend) => {
  let storage: Storage;
  let blobs: BlobStore;
  // Where source files for put({ file }) are written: outside the storage.
  let sources: string;
  beforeEach(async () => {
    storage = await backend.create();
    // Not init: reading, putting and deleting need none, as the CLI uses them.
    blobs = storage.open({ maxBlobSize: 1000 });
    sources = mkdtempSync(path.join(tmpdir(), 'regmeta-sources-'));
  });
  afterEach(async () => {
    await storage.cleanup();
    rmSync(sources, { recursive: true, force: true });
  });

  async function keep(bytes: string): Promise<string> {
    const digest = sha256(bytes);
    const staged = await blobs.put(digest, streamOf([bytes]));
    await staged.place();
    await staged.discard();
    return digest;
  }

  function source(bytes = 'imported bytes'): string {
    const file = path.join(sources, 'source');
    writeFileSync(file, bytes);
    return file;
  }

  describe('stat and read', () => {
    it('answers undefined for a blob that is not there, and its size, time and bytes once it is', async () => {
      const digest = sha256('0123456789');
      expect(await blobs.stat(digest)).toBeUndefined();
      const before = Date.now();
      await keep('0123456789');
      const stat = await blobs.stat(digest);
      expect(stat?.size).toBe(10);
      expect(stat?.modified.getTime()).toBeGreaterThan(before - 5000);
      expect(await text(blobs.read(digest))).toBe('0123456789');
      expect(await text(blobs.read(digest, 2, 5))).toBe('2345');
    });

    it('fails the stream, not the call, for a blob that is not there', async () => {
      const stream = blobs.read(sha256('absent'));
      await expect(text(stream)).rejects.toThrow();
    });

    it('opens a blob for reads at any position, and answers undefined for one that is not there', async () => {
      const digest = sha256('abcdefghij');
      expect(await blobs.open(digest)).toBeUndefined();
      await keep('abcdefghij');
      const file = (await blobs.open(digest))!;
      const buffer = Buffer.alloc(4);
      expect(await file.read(buffer, 0, 4, 3)).toBe(4);
      expect(buffer.toString()).toBe('defg');
      expect(await file.read(buffer, 1, 3, 8)).toBe(2);
      expect(buffer.toString().slice(1, 3)).toBe('ij');
      expect(await file.read(buffer, 0, 4, 10)).toBe(0);
      await file.close();
      await file.close();
    });

    it('refuses a digest that does not pass the grammar before it reaches the storage', async () => {
      for (const digest of ['sha256:../../etc/passwd', 'md5:abc', `sha256:${'A'.repeat(64)}`]) {
        expect(() => blobs.location(digest)).toThrow(BlobStoreError);
        expect(() => blobs.read(digest)).toThrow(expect.objectContaining({ code: 'DIGEST_INVALID' }));
        await expect(blobs.open(digest)).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
        await expect((async () => blobs.delete(digest))()).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
        await expect(blobs.stat(digest)).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
        await expect(blobs.put(digest, streamOf(['x']))).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
      }
    });

    it('deletes a blob, saying whether it was there', async () => {
      const digest = await keep('gone');
      expect(await blobs.delete(digest)).toBe(true);
      expect(await blobs.delete(digest)).toBe(false);
      expect(await blobs.stat(digest)).toBeUndefined();
    });
  });

  describe('put', () => {
    it('stages a file, linked or copied, and shows it only once the caller runs place', async () => {
      for (const link of [true, false]) {
        const digest = sha256(`imported bytes ${link}`);
        const staged = await blobs.put(digest, { file: source(`imported bytes ${link}`), link });
        expect(staged.size).toBe(link ? 19 : 20);
        expect(await blobs.stat(digest)).toBeUndefined();
        await staged.place();
        await staged.discard();
        expect(await text(blobs.read(digest))).toBe(`imported bytes ${link}`);
      }
      expect((await collect(blobs.list())).map((f) => f.digest).sort()).toEqual([sha256('imported bytes true'), sha256('imported bytes false')].sort());
    });

    it('takes a stream', async () => {
      const digest = sha256('streamed bytes');
      const staged = await blobs.put(digest, streamOf(['streamed ', 'bytes']));
      await staged.place();
      expect(await text(blobs.read(digest))).toBe('streamed bytes');
    });

    it('places a blob that is there already, harmlessly', async () => {
      const digest = await keep('twice');
      const again = await blobs.put(digest, streamOf(['twice']));
      await again.place();
      await again.discard();
      expect(await text(blobs.read(digest))).toBe('twice');
      expect((await collect(blobs.list())).map((f) => f.digest)).toEqual([digest]);
    });

    it('keeps nothing of what is discarded unplaced', async () => {
      const staged = await blobs.put(sha256('never placed'), streamOf(['never placed']));
      await staged.discard();
      expect(await blobs.stat(sha256('never placed'))).toBeUndefined();
      expect((await collect(blobs.list()))).toEqual([]);
    });

    it('refuses copied bytes that do not hash to the digest, and keeps nothing staged', async () => {
      const wrong = sha256('other bytes');
      for (const from of [{ file: source(), link: false }, streamOf(['imported bytes'])]) {
        const error = await blobs.put(wrong, from).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(BlobStoreError);
        expect(error).toMatchObject({ code: 'DIGEST_INVALID', detail: { digest: sha256('imported bytes') } });
      }
      expect((await collect(blobs.list()))).toEqual([]);
    });

    it('refuses a blob over maxBlobSize, from a file or a stream, with the limit', async () => {
      const big = path.join(sources, 'big');
      writeFileSync(big, Buffer.alloc(1001));
      const digest = sha256(Buffer.alloc(1001));
      await expect(blobs.put(digest, { file: big })).rejects.toMatchObject({ code: 'SIZE_INVALID', limit: 1000 });
      await expect(blobs.put(digest, streamOf([Buffer.alloc(1001)]))).rejects.toMatchObject({ code: 'SIZE_INVALID', limit: 1000 });
      expect((await collect(blobs.list()))).toEqual([]);
    });

    it('passes on a failing stream and a missing file as they are, keeping nothing staged', async () => {
      const failure = new Error('source went away');
      await expect(blobs.put(sha256('x'), streamOf(['part'], failure))).rejects.toBe(failure);
      await expect(blobs.put(sha256('x'), { file: path.join(sources, 'missing') })).rejects.toMatchObject({ code: 'ENOENT' });
      expect((await collect(blobs.list()))).toEqual([]);
    });
  });

  describe('list and remove', () => {
    it('lists nothing in an empty storage', async () => {
      expect((await collect(blobs.list()))).toEqual([]);
    });

    it('lists blobs with their digest, size and time', async () => {
      const digest = await keep('listed');
      const [listed, ...rest] = await collect(blobs.list());
      expect(rest).toEqual([]);
      expect(listed).toMatchObject({ location: blobs.location(digest), digest, size: 6 });
      expect(listed.modified).toEqual((await blobs.stat(digest))!.modified);
    });

    it('removes only what it listed, saying whether it was still there', async () => {
      const digest = await keep('removed');
      const [listed] = await collect(blobs.list());
      const forged = { location: listed.location, digest, size: 7, modified: new Date() };
      await expect((async () => blobs.remove(forged))()).rejects.toBeInstanceOf(TypeError);
      expect(await blobs.remove(listed)).toBe(true);
      expect(await blobs.remove(listed)).toBe(false);
      expect(await blobs.stat(digest)).toBeUndefined();
    });
  });

  describe('under the metadata store\'s lock', () => {
    // delete and remove say whether the blob was there: a LockedAction
    // returns nothing, so their result is dropped here, at once or once settled.
    const action = (fn: () => boolean | Promise<boolean>) => () => {
      const removed = fn();
      return typeof removed === 'boolean' ? undefined : removed.then(() => undefined);
    };

    it('places as the store\'s LockedAction, passed as it is, and deletes and removes as one', async () => {
      const store = await backend.metadata();
      try {
        const digest = sha256('locked');
        const staged = await blobs.put(digest, streamOf(['locked']));
        await store.linkBlob('acme/app', { digest, size: staged.size }, undefined, { place: staged.place });
        await staged.discard();
        expect(await text(blobs.read(digest))).toBe('locked');
        await store.unlinkBlob('acme/app', digest);
        await store.collectBlob(digest, undefined, { removeFile: action(() => blobs.delete(digest)) });
        expect(await blobs.stat(digest)).toBeUndefined();
        const stray = await keep('stray');
        const [file] = await collect(blobs.list());
        expect(await store.whileBlobUnknown(stray, action(() => blobs.remove(file)))).toBe(true);
        expect((await collect(blobs.list()))).toEqual([]);
      } finally {
        await store.close();
      }
    });
  });
});

describe('BlobStoreError', () => {
  it('carries a code, and nothing else decides', () => {
    const error = new BlobStoreError('TOOMANYREQUESTS', 'wait', { retryAfter: 5 });
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ name: 'BlobStoreError', code: 'TOOMANYREQUESTS', retryAfter: 5 });
    expect(error.limit).toBeUndefined();
    expect(error.detail).toBeUndefined();
  });
});
