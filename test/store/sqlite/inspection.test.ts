// What SQLite's check finds in a damaged file, and what stats say of the
// file, on a read-only store, changing nothing. (check, stats and allBlobs on
// every backend: test/store/contract/inspection.test.ts.)

import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type MetadataStore } from 'regmeta';
import { blobDigest, caught, dump, ociIndex, ociManifest, tempDir, type Built } from '../fixtures.js';

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

describe('stats of a SQLite file', () => {
  it('reports the file and its pages, read-only', () => {
    const store = openStore(file);
    putImage(store, 'acme/big', 'a');
    store.close();
    const found = withReadOnly((s) => s.stats());
    expect(found.database).toMatchObject({ file, fileBytes: expect.any(Number), pageSize: expect.any(Number) });
    expect(found.database.fileBytes).toBeGreaterThan(0);
    expect(found.database.pages).toBeGreaterThan(0);
    expect(found.counts.manifests).toBe(1);
  });
});
