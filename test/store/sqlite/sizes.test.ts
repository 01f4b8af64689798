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
