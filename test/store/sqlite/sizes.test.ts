// The kept sizes on SQLite: version 7's migration fills them from the
// links an older file has, and a read-only open of an older file, which
// has none, says so.

import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { asyncStore, openStore } from 'regmeta';
import { blobDesc, caught, ociManifest, tempDir, UNDO_7 } from '../fixtures.js';

let dir: string;
let remove: () => void;
beforeEach(() => {
  ({ dir, remove } = tempDir());
});
afterEach(() => remove());

/** A store written as version 7 with links in several repositories and namespaces, one blob shared, one deleted. */
function seeded(file: string): void {
  const store = openStore(file);
  const [a, b, c] = [blobDesc('a', undefined, 100), blobDesc('b', undefined, 2000), blobDesc('c', undefined, 30_000)];
  store.linkBlob('acme/app', a);
  store.linkBlob('acme/app', b);
  store.linkBlob('acme/web', a);
  store.linkBlob('acme', c);
  store.linkBlob('beta/x', c);
  store.linkBlob('beta/gone', b);
  store.deleteRepository('beta/gone');
  const m = ociManifest({ config: a, layers: [b] });
  store.putManifest('acme/app', m.digest, m);
  store.close();
}

describe('version 7 on a version-6 file', () => {
  it('fills the kept sizes from the links there, as a new file would have kept them', async () => {
    const file = join(dir, 'metadata.db');
    seeded(file);
    const before = await asyncStore(openStore(file)).usage();
    const acme = openStore(file).usage({ namespace: 'acme', repositories: true });
    const db = new Database(file);
    db.exec(UNDO_7);
    db.close();
    const store = openStore(file);
    try {
      expect(store.usage()).toEqual(before);
      expect(store.usage({ namespace: 'acme', repositories: true })).toEqual(acme);
      expect(before.namespaces).toEqual([
        { namespace: 'acme', bytes: 32_100, repositories: 3 },
        { namespace: 'beta', bytes: 30_000, repositories: 1 },
      ]);
      expect(store.check().problems).toEqual([]);
    } finally {
      store.close();
    }
  });

  it('read-only, is read as it is: check finds nothing amiss, usage says the file is older', () => {
    const file = join(dir, 'metadata.db');
    seeded(file);
    const db = new Database(file);
    db.exec(UNDO_7);
    db.close();
    const reader = openStore(file, { readOnly: true });
    try {
      expect(reader.check().problems).toEqual([]);
      expect(caught(() => reader.usage()).code).toBe('DATABASE_INVALID');
    } finally {
      reader.close();
    }
  });
});

describe('check', () => {
  it('reports each kept size that a count of the links disagrees with, as a size problem', () => {
    const file = join(dir, 'metadata.db');
    seeded(file);
    const db = new Database(file);
    db.exec(`
      UPDATE registry_usage SET size = size + 1;
      UPDATE namespace SET size = 7 WHERE name = 'beta';
      UPDATE repository_usage SET size = 0 WHERE repository_id = (SELECT id FROM repository WHERE name = 'acme/web');
      UPDATE namespace_blob SET links = 5 WHERE namespace = 'acme' AND size = 100;`);
    db.close();
    const store = openStore(file, { readOnly: true });
    try {
      expect(store.check().problems).toEqual([
        { kind: 'size', subject: 'registry', detail: 'blobs: kept 3, counted 3; bytes: kept 32101, counted 32100' },
        { kind: 'size', subject: 'namespace beta', detail: 'bytes: kept 7, counted 30000; repositories: kept 1, counted 1' },
        { kind: 'size', subject: 'repository acme/web', detail: 'bytes: kept 0, counted 100' },
        { kind: 'size', subject: `namespace acme blob ${blobDesc('a', undefined, 100).digest}`, detail: 'links: kept 5, counted 2' },
      ]);
    } finally {
      store.close();
    }
  });
});

describe('kept sizes that drifted', () => {
  it('never fail a delete: an uncount takes nothing for a missing row and stops at 0, and check still reports the drift', () => {
    const file = join(dir, 'metadata.db');
    seeded(file);
    const db = new Database(file);
    db.exec(`
      DELETE FROM namespace_blob WHERE namespace = 'beta';
      UPDATE namespace SET size = 0, repositories = 0 WHERE name = 'acme';
      UPDATE registry_usage SET blobs = 0, size = 0;`);
    db.close();
    const store = openStore(file);
    const [a, c] = [blobDesc('a', undefined, 100), blobDesc('c', undefined, 30_000)];
    try {
      store.deleteRepository('beta/x');
      store.unlinkBlob('acme/web', a.digest);
      store.deleteRepository('acme/web');
      store.deleteBlob(c.digest);
      // Stopped at 0: the registry's total and acme's counts, lowered below what the deletes took away.
      expect(store.usage().total).toEqual({ blobs: 0, bytes: 0 });
      expect(store.check().problems).toEqual([
        { kind: 'size', subject: 'registry', detail: 'blobs: kept 0, counted 2; bytes: kept 0, counted 2100' },
        { kind: 'size', subject: 'namespace acme', detail: 'bytes: kept 0, counted 2100; repositories: kept 0, counted 2' },
        // beta's blob had no row: its delete took nothing away.
        { kind: 'size', subject: 'namespace beta', detail: 'bytes: kept 30000, counted 0; repositories: kept 0, counted 0' },
      ]);
    } finally {
      store.close();
    }
  });
});
