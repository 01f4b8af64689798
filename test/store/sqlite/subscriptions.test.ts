// What SQLite's subscribe adds to the contract (test/store/contract/): its
// delivery is synchronous, so this connection's commits reach subscribers
// before the write returns, and bring other connections' earlier commits
// with them, before any poll has run.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type Event, type MetadataStore } from 'regmeta';
import { blobDigest, gcEvent, ociManifest, putBuilt, tempStore } from '../fixtures.js';

let store: MetadataStore;
beforeEach(() => {
  store = openStore(':memory:');
});
afterEach(() => store.close());

describe('subscribe on SQLite: synchronous delivery', () => {
  it("delivers this connection's commits before the write returns", () => {
    const got: Event[] = [];
    const unsubscribe = store.subscribe((e) => got.push(e));
    const m = putBuilt(store, 'acme/app', ociManifest());
    expect(got.map((e) => e.object.type)).toEqual(['REPOSITORY', 'MANIFEST']);
    store.putTag('acme/app', 'latest', { digest: m.digest });
    expect(got).toHaveLength(3);
    const gc = store.createEvent(gcEvent('x'));
    expect(got.at(-1)).toEqual(gc);
    unsubscribe();
  });

  it("a write's own delivery brings another connection's earlier commits first, before any poll", () => {
    const t = tempStore({ pollInterval: 5 });
    const other = openStore(t.file);
    try {
      const got: string[] = [];
      const unsubscribe = t.store.subscribe((e) => got.push(e.digest!));
      t.store.createEvent(gcEvent('own1'));
      other.createEvent(gcEvent('remote'));
      // No poll can have run yet: this write's own delivery must bring the remote event first.
      t.store.createEvent(gcEvent('own2'));
      expect(got).toEqual([blobDigest('own1'), blobDigest('remote'), blobDigest('own2')]);
      unsubscribe();
    } finally {
      other.close();
      t.cleanup();
    }
  });
});
