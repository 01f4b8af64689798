// Finished blobs on the directory store, as files: the layout, a hard link
// or a copy, a place that finishes at once (so that it runs inside SQLite's
// synchronous transaction), a staged file's leftover, and a listing that
// finds leftovers and files that vanish. What every backend does is in
// test/blobstore/contract/.

import { mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StoredFile } from '../../../src/blobstore/types.js';
import { collect, sha256 } from '../helpers.js';
import { tempStore, type TestStore } from './helpers.js';

let t: TestStore;
beforeEach(() => {
  t = tempStore({ maxBlobSize: 1000 }, false);
});
afterEach(() => t.cleanup());

function write(digest: string, bytes: string): string {
  const file = t.file(digest);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, bytes);
  return file;
}

const source = () => {
  const file = path.join(t.dir, 'source');
  writeFileSync(file, 'imported bytes');
  return file;
};

describe('layout', () => {
  it('keeps blob <alg>:<hex> at blobs/<alg>/<2 hex>/<hex>', async () => {
    const digest = sha256('0123456789');
    expect(t.blobs.location(digest)).toBe(t.file(digest));
    write(digest, '0123456789');
    expect(await t.blobs.stat(digest)).toEqual({ size: 10, modified: statSync(t.file(digest)).mtime });
  });
});

describe('put', () => {
  it('hard-links a file, and places it, at once, only when the caller runs place', async () => {
    const digest = sha256('imported bytes');
    const staged = await t.blobs.put(digest, { file: source() });
    expect(statSync(t.file(digest), { throwIfNoEntry: false })).toBeUndefined();
    expect(staged.place()).toBeUndefined();
    await staged.discard();
    expect(statSync(t.file(digest)).ino).toBe(statSync(path.join(t.dir, 'source')).ino);
  });

  it('copies a file with link: false', async () => {
    const digest = sha256('imported bytes');
    const staged = await t.blobs.put(digest, { file: source(), link: false });
    staged.place();
    expect(statSync(t.file(digest)).ino).not.toBe(statSync(path.join(t.dir, 'source')).ino);
    expect(readFileSync(t.file(digest), 'utf8')).toBe('imported bytes');
  });

  it('leaves a staged file that was never placed listed as a stray, with no digest', async () => {
    const staged = await t.blobs.put(sha256('imported bytes'), { file: source() });
    const [stray] = await collect(t.blobs.list());
    expect(stray.digest).toBeUndefined();
    expect(stray.location.startsWith(`${t.file(sha256('imported bytes'))}.`)).toBe(true);
    await staged.discard();
    expect((await collect(t.blobs.list()))).toEqual([]);
  });
});

describe('delete, list and remove', () => {
  it('delete and remove finish at once', async () => {
    const digest = sha256('gone');
    write(digest, 'gone');
    expect(t.blobs.delete(digest)).toBe(true);
    write(digest, 'gone');
    const [listed] = await collect(t.blobs.list());
    expect(() => t.blobs.remove({ location: listed.location, size: 4, modified: new Date() })).toThrow(TypeError);
    expect(t.blobs.remove(listed)).toBe(true);
  });

  it('lists blobs with their digest, size and time, and leftovers without a digest', async () => {
    const digest = sha256('listed');
    write(digest, 'listed');
    const old = new Date('2020-01-01T00:00:00Z');
    utimesSync(t.file(digest), old, old);
    const misplaced = path.join(t.dir, 'blobs', 'sha256', 'ff', sha256('elsewhere').slice(7));
    mkdirSync(path.dirname(misplaced), { recursive: true });
    writeFileSync(misplaced, 'elsewhere');
    const listed = (await collect(t.blobs.list())).sort((a, b) => a.location.localeCompare(b.location));
    const expected: StoredFile[] = [
      { location: t.file(digest), digest, size: 6, modified: old },
      { location: misplaced, size: 9, modified: statSync(misplaced).mtime },
    ].sort((a, b) => a.location.localeCompare(b.location));
    expect(listed).toEqual(expected);
  });

  it('skips a file that vanishes between the directory read and its stat', async () => {
    const digest = sha256('vanishing');
    write(digest, 'vanishing');
    const other = sha256('staying');
    write(other, 'staying');
    const seen: (string | undefined)[] = [];
    for await (const file of t.blobs.list()) {
      seen.push(file.digest);
      // Whichever comes second is gone by the time the listing gets to it.
      for (const d of [digest, other]) if (d !== file.digest) t.blobs.delete(d);
    }
    expect(seen).toHaveLength(1);
  });
});
