// Finished blobs on the directory store: the layout, stat and read, put by
// hard link, copy or stream (staged until the caller places it), delete, and
// the listing that check and gc walk.

import { mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobStoreError, type StoredFile } from '../../../src/blobstore/index.js';
import { sha256, streamOf, tempStore, type TestStore } from './helpers.js';

let t: TestStore;
beforeEach(() => {
  // Not init: reading, putting and deleting need none, as the CLI uses them.
  t = tempStore({ maxBlobSize: 1000 }, false);
});
afterEach(() => t.cleanup());

function write(digest: string, bytes: string): string {
  const file = t.file(digest);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, bytes);
  return file;
}

describe('layout, stat and read', () => {
  it('keeps blob <alg>:<hex> at blobs/<alg>/<2 hex>/<hex>', async () => {
    const digest = sha256('0123456789');
    expect(t.blobs.location(digest)).toBe(t.file(digest));
    expect(await t.blobs.stat(digest)).toBeUndefined();
    write(digest, '0123456789');
    expect(await t.blobs.stat(digest)).toEqual({ size: 10, modified: statSync(t.file(digest)).mtime });
    expect(await text(t.blobs.read(digest))).toBe('0123456789');
    expect(await text(t.blobs.read(digest, 2, 5))).toBe('2345');
  });

  it('opens a blob for reads at any position, and answers undefined for one that is not there', async () => {
    const digest = sha256('abcdefghij');
    expect(await t.blobs.open(digest)).toBeUndefined();
    write(digest, 'abcdefghij');
    const file = (await t.blobs.open(digest))!;
    const buffer = Buffer.alloc(4);
    expect(await file.read(buffer, 0, 4, 3)).toBe(4);
    expect(buffer.toString()).toBe('defg');
    expect(await file.read(buffer, 1, 3, 8)).toBe(2);
    expect(buffer.toString().slice(1, 3)).toBe('ij');
    expect(await file.read(buffer, 0, 4, 10)).toBe(0);
    await file.close();
    await file.close();
  });

  it('refuses a digest that does not pass the grammar before it reaches the filesystem', async () => {
    for (const digest of ['sha256:../../etc/passwd', 'md5:abc', `sha256:${'A'.repeat(64)}`]) {
      expect(() => t.blobs.location(digest)).toThrow(BlobStoreError);
      expect(() => t.blobs.read(digest)).toThrow(expect.objectContaining({ code: 'DIGEST_INVALID' }));
      await expect(t.blobs.open(digest)).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
      expect(() => t.blobs.delete(digest)).toThrow(expect.objectContaining({ code: 'DIGEST_INVALID' }));
      await expect(t.blobs.stat(digest)).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
      await expect(t.blobs.put(digest, streamOf(['x']))).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
    }
  });

  it('deletes a blob, saying whether it was there', () => {
    const digest = sha256('gone');
    write(digest, 'gone');
    expect(t.blobs.delete(digest)).toBe(true);
    expect(t.blobs.delete(digest)).toBe(false);
  });

  it('deletes asynchronously the same way, rejecting rather than throwing a malformed digest', async () => {
    const digest = sha256('gone later');
    write(digest, 'gone later');
    expect(await t.blobs.deleteAsync(digest)).toBe(true);
    expect(await t.blobs.deleteAsync(digest)).toBe(false);
    const refused = t.blobs.deleteAsync('sha256:nothex');
    await expect(refused).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
  });
});

describe('put', () => {
  const source = () => {
    const file = path.join(t.dir, 'source');
    writeFileSync(file, 'imported bytes');
    return file;
  };

  it('hard-links a file, and places it only when the caller runs place', async () => {
    const digest = sha256('imported bytes');
    const staged = await t.blobs.put(digest, { file: source() });
    expect(staged.size).toBe(14);
    expect(await t.blobs.stat(digest)).toBeUndefined();
    staged.place();
    await staged.discard();
    expect(statSync(t.file(digest)).ino).toBe(statSync(path.join(t.dir, 'source')).ino);
    expect([...t.blobs.list()].map((f) => f.digest)).toEqual([digest]);
  });

  it('copies a file with link: false, hashing it on the way', async () => {
    const digest = sha256('imported bytes');
    const staged = await t.blobs.put(digest, { file: source(), link: false });
    staged.place();
    expect(statSync(t.file(digest)).ino).not.toBe(statSync(path.join(t.dir, 'source')).ino);
    expect(readFileSync(t.file(digest), 'utf8')).toBe('imported bytes');
  });

  it('places asynchronously as it places synchronously, for a lock held across awaits', async () => {
    const digest = sha256('imported bytes');
    const staged = await t.blobs.put(digest, { file: source(), link: false });
    const placing = staged.placeAsync();
    expect(placing).toBeInstanceOf(Promise);
    await placing;
    await staged.discard();
    expect(readFileSync(t.file(digest), 'utf8')).toBe('imported bytes');
    expect([...t.blobs.list()].map((f) => f.digest)).toEqual([digest]);
  });

  it('takes a stream', async () => {
    const digest = sha256('streamed bytes');
    (await t.blobs.put(digest, streamOf(['streamed ', 'bytes']))).place();
    expect(readFileSync(t.file(digest), 'utf8')).toBe('streamed bytes');
  });

  it('refuses copied bytes that do not hash to the digest, and keeps nothing staged', async () => {
    const wrong = sha256('other bytes');
    const error = await t.blobs.put(wrong, { file: source(), link: false }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BlobStoreError);
    expect(error).toMatchObject({ code: 'DIGEST_INVALID', detail: { digest: sha256('imported bytes') } });
    expect([...t.blobs.list()]).toEqual([]);
  });

  it('refuses a blob over maxBlobSize, linked or streamed, with the limit', async () => {
    const big = path.join(t.dir, 'big');
    writeFileSync(big, Buffer.alloc(1001));
    const digest = sha256(Buffer.alloc(1001));
    await expect(t.blobs.put(digest, { file: big })).rejects.toMatchObject({ code: 'SIZE_INVALID', limit: 1000 });
    await expect(t.blobs.put(digest, streamOf([Buffer.alloc(1001)]))).rejects.toMatchObject({ code: 'SIZE_INVALID', limit: 1000 });
    expect([...t.blobs.list()]).toEqual([]);
  });

  it('passes on a failing stream and a missing file as they are, keeping nothing staged', async () => {
    const failure = new Error('source went away');
    await expect(t.blobs.put(sha256('x'), streamOf(['part'], failure))).rejects.toBe(failure);
    await expect(t.blobs.put(sha256('x'), { file: path.join(t.dir, 'missing') })).rejects.toMatchObject({ code: 'ENOENT' });
    expect([...t.blobs.list()]).toEqual([]);
  });

  it('leaves a staged file that was never placed listed as a stray, with no digest', async () => {
    const staged = await t.blobs.put(sha256('imported bytes'), { file: source() });
    const [stray] = [...t.blobs.list()];
    expect(stray.digest).toBeUndefined();
    expect(stray.location.startsWith(`${t.file(sha256('imported bytes'))}.`)).toBe(true);
    await staged.discard();
    expect([...t.blobs.list()]).toEqual([]);
  });
});

describe('list and remove', () => {
  it('lists blobs with their digest, size and time, and leftovers without a digest', () => {
    const digest = sha256('listed');
    write(digest, 'listed');
    const old = new Date('2020-01-01T00:00:00Z');
    utimesSync(t.file(digest), old, old);
    const misplaced = path.join(t.dir, 'blobs', 'sha256', 'ff', sha256('elsewhere').slice(7));
    mkdirSync(path.dirname(misplaced), { recursive: true });
    writeFileSync(misplaced, 'elsewhere');
    const listed = [...t.blobs.list()].sort((a, b) => a.location.localeCompare(b.location));
    const expected: StoredFile[] = [
      { location: t.file(digest), digest, size: 6, modified: old },
      { location: misplaced, size: 9, modified: statSync(misplaced).mtime },
    ].sort((a, b) => a.location.localeCompare(b.location));
    expect(listed).toEqual(expected);
  });

  it('lists nothing when there is no blobs/ directory', () => {
    expect([...t.blobs.list()]).toEqual([]);
  });

  it('removes only what it listed, saying whether it was still there', () => {
    const digest = sha256('removed');
    const file = write(digest, 'removed');
    const [listed] = [...t.blobs.list()];
    expect(() => t.blobs.remove({ location: file, size: 7, modified: new Date() })).toThrow(TypeError);
    expect(t.blobs.remove(listed)).toBe(true);
    expect(t.blobs.remove(listed)).toBe(false);
  });

  it('removes asynchronously only what it listed, the same way', async () => {
    const digest = sha256('removed later');
    const file = write(digest, 'removed later');
    const [listed] = [...t.blobs.list()];
    await expect(t.blobs.removeAsync({ location: file, size: 13, modified: new Date() })).rejects.toBeInstanceOf(TypeError);
    expect(await t.blobs.removeAsync(listed)).toBe(true);
    expect(await t.blobs.removeAsync(listed)).toBe(false);
  });

  it('skips a file that vanishes between the directory read and its stat', () => {
    const digest = sha256('vanishing');
    write(digest, 'vanishing');
    const other = sha256('staying');
    write(other, 'staying');
    const seen: (string | undefined)[] = [];
    for (const file of t.blobs.list()) {
      seen.push(file.digest);
      // Whichever comes second is gone by the time the listing gets to it.
      for (const d of [digest, other]) if (d !== file.digest) t.blobs.delete(d);
    }
    expect(seen).toHaveLength(1);
  });
});

describe('errors', () => {
  it('are BlobStoreErrors with a code, and nothing else decides', () => {
    const error = new BlobStoreError('TOOMANYREQUESTS', 'wait', { retryAfter: 5 });
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ name: 'BlobStoreError', code: 'TOOMANYREQUESTS', retryAfter: 5 });
    expect(error.limit).toBeUndefined();
    expect(error.detail).toBeUndefined();
  });
});

