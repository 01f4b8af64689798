// check, stats and allBlobs: what an operator's inspection reads, on a
// read-only store, changing nothing.

import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type MetadataStore } from 'regmeta';
import { blobDigest, caught, dump, ociIndex, ociManifest, tempDir, type Built } from './fixtures.js';

let dir: string;
let remove: () => void;
let file: string;
beforeEach(() => {
  ({ dir, remove } = tempDir());
  file = join(dir, 'metadata.db');
});
afterEach(() => remove());

/** Puts an image with its config and layer linked, as a registry would. */
function putImage(store: MetadataStore, repo: string, seed: string): Built {
  const m = ociManifest({ seed });
  store.linkBlob(repo, { digest: blobDigest(`${seed}/config`), size: 500 });
  store.linkBlob(repo, { digest: blobDigest(`${seed}/layer`), size: 1000 });
  store.putManifest(repo, m.digest, m, {}, { requireReferences: true });
  return m;
}

function withReadOnly<T>(fn: (store: MetadataStore) => T): T {
  const store = openStore(file, { readOnly: true });
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

function raw(fn: (db: Database.Database) => void): void {
  const db = new Database(file);
  try {
    fn(db);
  } finally {
    db.close();
  }
}

describe('check', () => {
  it('finds nothing wrong in a sound store, counts what it checked, and reports progress', () => {
    const store = openStore(file);
    const a = putImage(store, 'acme/app', 'a');
    putImage(store, 'acme/app', 'b');
    store.putTag('acme/app', 'v1', { digest: a.digest });
    store.close();
    const progress: [number, number][] = [];
    const found = withReadOnly((s) => s.check({ onProgress: (done, total) => progress.push([done, total]) }));
    expect(found).toEqual({
      checked: { integrity: true, foreignKeys: true, manifests: 2, tags: 1, blobReferences: 4 },
      problems: [],
      complete: true,
    });
    expect(progress).toEqual([[0, 2], [1, 2], [2, 2]]);
  });

  it('lists bytes that do not hash to their digest, wrong sizes, unlinked references and missing children, and changes nothing', () => {
    const store = openStore(file);
    const a = putImage(store, 'acme/app', 'a');
    const b = putImage(store, 'acme/app', 'b');
    const child = putImage(store, 'acme/app', 'child');
    const index = ociIndex([child.descriptor]);
    store.putManifest('acme/app', index.digest, index);
    store.close();
    raw((db) => {
      db.prepare('UPDATE manifest_payload SET payload = :payload WHERE manifest_id = (SELECT id FROM manifest WHERE digest = :digest)').run({
        payload: Buffer.from('{}'),
        digest: a.digest,
      });
      db.prepare('DELETE FROM blob_link WHERE digest = :digest').run({ digest: blobDigest('b/layer') });
      // The child goes behind the store's back (the store itself refuses: it is listed).
      db.pragma('foreign_keys = OFF');
      db.prepare('DELETE FROM manifest WHERE digest = :digest').run({ digest: child.digest });
    });
    const before = dump(file);
    const found = withReadOnly((s) => s.check());
    expect(found.complete).toBe(true);
    expect(found.problems.map((p) => `${p.kind} ${p.subject}`).sort()).toEqual(
      [
        `manifest-digest acme/app@${a.digest}`,
        `manifest-size acme/app@${a.digest}`,
        `blob-link acme/app@${b.digest}`,
        `child acme/app@${index.digest}`,
        // The child's manifest_blob rows and payload point at a manifest row that is gone.
        ...found.problems.filter((p) => p.kind === 'foreign-key').map((p) => `foreign-key ${p.subject}`),
      ].sort(),
    );
    expect(found.problems.some((p) => p.kind === 'foreign-key')).toBe(true);
    expect(dump(file)).toEqual(before);
  });

  it('lists damage that stops SQLite reading as a problem, and says the check is not complete', () => {
    const store = openStore(file);
    for (let i = 0; i < 20; i++) putImage(store, `damaged/r${i}`, `r${i}`);
    store.close();
    let pageSize = 0;
    let roots: number[] = [];
    raw((db) => {
      db.pragma('wal_checkpoint(TRUNCATE)');
      pageSize = db.pragma('page_size', { simple: true }) as number;
      roots = db.prepare("SELECT rootpage FROM sqlite_schema WHERE tbl_name = 'repository' AND rootpage > 1").pluck().all() as number[];
    });
    const fd = openSync(file, 'r+');
    for (const page of roots) writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, (page - 1) * pageSize);
    closeSync(fd);
    const found = withReadOnly((s) => s.check());
    expect(found.complete).toBe(false);
    expect(found.problems.at(-1)).toEqual({ kind: 'integrity', subject: 'database', detail: 'SQLite stopped reading: database disk image is malformed' });
    expect(withReadOnly((s) => caught(() => s.stats()).code)).toBe('DATABASE_CORRUPT');
  });
});

describe('stats', () => {
  it('counts what the store holds and lists the largest repositories, in one snapshot', () => {
    const store = openStore(file);
    putImage(store, 'acme/big', 'a');
    putImage(store, 'acme/big', 'b');
    const small = putImage(store, 'acme/small', 'c');
    store.putTag('acme/small', 'v1', { digest: small.digest });
    store.close();
    const found = withReadOnly((s) => s.stats({ top: 1 }));
    expect(found.counts).toEqual({
      repositories: 2,
      manifests: 3,
      manifestBytes: expect.any(Number),
      tags: 1,
      blobs: 6,
      blobBytes: 3 * 1500,
      blobLinks: 6,
      events: expect.any(Number),
    });
    expect(found.largestRepositories).toEqual([{ repository: 'acme/big', manifests: 2, tags: 0, blobs: 4, blobBytes: 3000 }]);
    expect(found.database).toMatchObject({ file, fileBytes: expect.any(Number), pageSize: expect.any(Number) });
    expect(found.database.pages).toBeGreaterThan(0);
    expect(withReadOnly((s) => s.stats().largestRepositories.map((r) => r.repository))).toEqual(['acme/big', 'acme/small']);
    expect(withReadOnly((s) => caught(() => s.stats({ top: -1 })).code)).toBe('ARGUMENT_INVALID');
  });
});

describe('allBlobs', () => {
  it('lists every blob in digest order, paginated like allTags', () => {
    const store = openStore(file);
    try {
      const digests = ['x', 'y', 'z'].map((seed) => blobDigest(seed));
      for (const digest of digests) store.linkBlob('acme/app', { digest, size: 3 });
      const sorted = [...digests].sort();
      expect(store.allBlobs().map((b) => b.digest)).toEqual(sorted);
      expect(store.allBlobs({ n: 1, last: sorted[0] }).map((b) => b.digest)).toEqual([sorted[1]]);
      expect(store.allBlobs()[0]).toEqual({ digest: sorted[0], size: 3, createdAt: expect.any(Date) });
      expect(caught(() => store.allBlobs({ last: 'nope' })).code).toBe('DIGEST_INVALID');
    } finally {
      store.close();
    }
  });
});
