// What a tag move does to SQLite's own rows (the semantics of putTag, getTag,
// deleteTag, allTags, lookupTags, tagHistory and tagDescriptors are pinned on
// every backend by test/store/contract/).

import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { ociManifest, tempStore, putBuilt } from '../fixtures.js';

describe('putTag on SQLite', () => {
  it("a move keeps the tag row's created_at and advances updated_at, which the history reports", async () => {
    const t = tempStore();
    try {
      const a = putBuilt(t.store, 'acme/app', ociManifest({ seed: 'a' }));
      const b = putBuilt(t.store, 'acme/app', ociManifest({ seed: 'b' }));
      t.store.putTag('acme/app', 'latest', { digest: a.digest });
      const read = () => {
        const raw = new Database(t.file, { readonly: true });
        try {
          return raw.prepare("SELECT created_at, updated_at FROM tag WHERE name = 'latest'").get() as {
            created_at: number;
            updated_at: number;
          };
        } finally {
          raw.close();
        }
      };
      const first = read();
      // Wait for the clock to move so that updated_at can differ from created_at.
      while (Date.now() <= first.updated_at) await new Promise((r) => setTimeout(r, 2));
      t.store.putTag('acme/app', 'latest', { digest: b.digest });
      const second = read();
      expect(second.created_at).toBe(first.created_at);
      expect(second.updated_at).toBeGreaterThan(first.updated_at);
      const history = t.store.tagHistory('acme/app', 'latest');
      expect(history[0].taggedAt.getTime()).toBe(second.updated_at);
      expect(history[1].taggedAt.getTime()).toBe(first.created_at);
    } finally {
      t.cleanup();
    }
  });
});
