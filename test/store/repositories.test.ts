// Repositories: the catalog, and deleteRepository with everything in it.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, NotFoundError, type MetadataStore } from 'regmeta';
import { caught, allEvents, blobDesc, blobDigest, dump, ociIndex, ociManifest, tempStore, putBuilt, type Built } from './fixtures.js';

let store: MetadataStore;
beforeEach(() => {
  store = openStore(':memory:');
});
afterEach(() => store.close());

const put = (repo: string, m: Built, s: MetadataStore = store): Built => putBuilt(s, repo, m);

const future = () => new Date(Date.now() + 60_000);

describe('catalog', () => {
  it('lists repositories in byte order, paged by n and last', () => {
    const names = ['b/x', 'a', 'a-b/c', 'a/b', 'a.b', 'a_b', 'a0'];
    for (const name of names) store.linkBlob(name, { digest: blobDigest('x'), size: 1 });
    // '-' < '.' < '/' < '0' < '_' in byte order.
    const sorted = ['a', 'a-b/c', 'a.b', 'a/b', 'a0', 'a_b', 'b/x'];
    expect(store.catalog()).toEqual(sorted);
    expect(store.catalog({ n: 2 })).toEqual(['a', 'a-b/c']);
    expect(store.catalog({ n: 2, last: 'a.b' })).toEqual(['a/b', 'a0']);
    expect(store.catalog({ last: 'a1' })).toEqual(['a_b', 'b/x']);
    expect(store.catalog({ n: 0 })).toEqual([]);
  });
});

describe('deleteRepository', () => {
  it('removes tags, manifests, links and history, with a DELETE event for each tag, manifest and the repository', () => {
    const t = tempStore();
    try {
      const s = t.store;
      const layer = blobDesc('layer');
      s.linkBlob('acme/app', { digest: layer.digest, size: layer.size });
      const child = put('acme/app', ociManifest({ layers: [layer] }), s);
      const idx = put('acme/app', ociIndex([child.descriptor]), s);
      const sig = put('acme/app', ociManifest({ seed: 'sig', subject: child.descriptor, artifactType: 'x/sig' }), s);
      s.putTag('acme/app', 'v1', { digest: child.digest });
      s.putTag('acme/app', 'latest', { digest: idx.digest });
      const before = allEvents(s).length;

      s.deleteRepository('acme/app', { actor: 'admin' });

      const added = allEvents(s).slice(before);
      expect(added.every((e) => e.actor === 'admin' && e.type === 'DELETE')).toBe(true);
      expect(added.map((e) => `${e.object.type} ${e.object.id}`).sort()).toEqual(
        [
          'TAG acme/app:latest',
          'TAG acme/app:v1',
          `MANIFEST acme/app@${child.digest}`,
          `MANIFEST acme/app@${idx.digest}`,
          `MANIFEST acme/app@${sig.digest}`,
          'REPOSITORY acme/app',
        ].sort(),
      );
      expect(added[added.length - 1].object).toEqual({ type: 'REPOSITORY', id: 'acme/app' });
      expect(added.find((e) => e.tag === 'v1')?.digest).toBe(child.digest);

      expect(s.catalog()).toEqual([]);
      expect(caught(() => s.getManifest('acme/app', child.digest)).code).toBe('NAME_UNKNOWN');
      expect(caught(() => s.allTags('acme/app')).code).toBe('NAME_UNKNOWN');
      expect(caught(() => s.statBlob('acme/app', layer.digest)).code).toBe('NAME_UNKNOWN');
      expect(s.referrers('acme/app', child.digest)).toEqual([]);
      const rows = dump(t.file);
      for (const table of ['repository', 'manifest', 'tag', 'tag_history', 'blob_link', 'manifest_blob', 'manifest_child']) {
        expect(rows[table], table).toEqual([]);
      }
      // The blob itself stays for the garbage collector, now unreferenced.
      expect(s.unreferencedBlobs({ olderThan: future() }).map((b) => b.digest)).toEqual([layer.digest]);
    } finally {
      t.cleanup();
    }
  });

  it('leaves other repositories alone, the same digests included', () => {
    const m = ociManifest();
    put('acme/app', m);
    put('acme/app2', m);
    store.putTag('acme/app2', 'latest', { digest: m.digest });
    store.deleteRepository('acme/app');
    expect(store.catalog()).toEqual(['acme/app2']);
    expect(store.getTag('acme/app2', 'latest').digest).toBe(m.digest);
  });

  it('a missing repository is NotFoundError NAME_UNKNOWN and writes no event', () => {
    const error = caught(() => store.deleteRepository('acme/none'));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.code).toBe('NAME_UNKNOWN');
    expect(allEvents(store)).toEqual([]);
  });

  it('the name can be used again afterwards, starting empty', () => {
    const m = put('acme/app', ociManifest());
    store.putTag('acme/app', 'latest', { digest: m.digest });
    store.deleteRepository('acme/app');
    const before = allEvents(store).length;
    put('acme/app', ociManifest({ seed: 'new' }));
    expect(allEvents(store).slice(before)[0].object).toEqual({ type: 'REPOSITORY', id: 'acme/app' });
    expect(store.allTags('acme/app')).toEqual([]);
    expect(store.tagHistory('acme/app', 'latest')).toEqual([]);
  });
});
