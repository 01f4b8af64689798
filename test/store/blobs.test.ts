// Blob links (linkBlob, statBlob, unlinkBlob, deleteBlob), unreferencedBlobs,
// the catalog and deleteRepository.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, NotFoundError, type MetadataStore } from 'regmeta';
import { caught, allEvents, blobDesc, blobDigest, dump, ociIndex, ociManifest, tempStore, type Built } from './fixtures.js';

let store: MetadataStore;
beforeEach(() => {
  store = openStore(':memory:');
});
afterEach(() => store.close());


function put(repo: string, m: Built, s: MetadataStore = store): Built {
  s.putManifest(repo, m.digest, m);
  return m;
}

function tickPast(t: number) {
  while (Date.now() <= t) {
    // Spin until the clock moves.
  }
}

const future = () => new Date(Date.now() + 60_000);

describe('linkBlob and statBlob', () => {
  it('links a blob into a repository, creating the repository with a CREATE REPOSITORY event', () => {
    const digest = blobDigest('a');
    const t0 = Date.now();
    store.linkBlob('acme/app', { digest, size: 1234 }, { actor: 'alice' });
    const info = store.statBlob('acme/app', digest);
    expect(info).toEqual({ digest, size: 1234, createdAt: expect.any(Date) });
    expect(info.createdAt.getTime()).toBeGreaterThanOrEqual(t0);
    expect(store.catalog()).toEqual(['acme/app']);
    expect(allEvents(store).map((e) => [e.actor, e.type, e.object.type, e.object.id])).toEqual([
      ['alice', 'CREATE', 'REPOSITORY', 'acme/app'],
    ]);
  });

  it('a blob is readable only from the repositories it is linked in', () => {
    const digest = blobDigest('a');
    store.linkBlob('acme/app', { digest, size: 10 });
    put('acme/other', ociManifest());
    const error = caught(() => store.statBlob('acme/other', digest));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.code).toBe('BLOB_UNKNOWN');
    store.linkBlob('acme/other', { digest, size: 10 });
    expect(store.statBlob('acme/other', digest).size).toBe(10);
  });

  it('statBlob of a missing repository is NAME_UNKNOWN, of an unknown blob BLOB_UNKNOWN', () => {
    expect(caught(() => store.statBlob('acme/none', blobDigest('a'))).code).toBe('NAME_UNKNOWN');
    store.linkBlob('acme/app', { digest: blobDigest('a'), size: 1 });
    expect(caught(() => store.statBlob('acme/app', blobDigest('b'))).code).toBe('BLOB_UNKNOWN');
  });

  it('refuses a size that disagrees with the recorded one with SIZE_INVALID, and links nothing', () => {
    const digest = blobDigest('a');
    store.linkBlob('acme/app', { digest, size: 10 });
    put('acme/other', ociManifest());
    const error = caught(() => store.linkBlob('acme/other', { digest, size: 11 }));
    expect(error.code).toBe('SIZE_INVALID');
    expect(error.detail).toEqual({ size: 10 });
    expect(caught(() => store.statBlob('acme/other', digest)).code).toBe('BLOB_UNKNOWN');
    expect(store.statBlob('acme/app', digest).size).toBe(10);
  });

  it('linking again with the same size is allowed and keeps the blob\'s createdAt', () => {
    const digest = blobDigest('a');
    store.linkBlob('acme/app', { digest, size: 10 });
    const first = store.statBlob('acme/app', digest);
    tickPast(first.createdAt.getTime());
    store.linkBlob('acme/app', { digest, size: 10 });
    expect(store.statBlob('acme/app', digest)).toEqual(first);
  });

  it('a blob of size 0 is a blob', () => {
    const digest = blobDigest('empty');
    store.linkBlob('acme/app', { digest, size: 0 });
    expect(store.statBlob('acme/app', digest).size).toBe(0);
  });
});

describe('unlinkBlob', () => {
  it('removes the link from that repository only; the blob stays for the collector', () => {
    const digest = blobDigest('a');
    store.linkBlob('acme/app', { digest, size: 10 });
    store.linkBlob('acme/other', { digest, size: 10 });
    store.unlinkBlob('acme/app', digest);
    expect(caught(() => store.statBlob('acme/app', digest)).code).toBe('BLOB_UNKNOWN');
    expect(store.statBlob('acme/other', digest).size).toBe(10);
    store.unlinkBlob('acme/other', digest);
    expect(store.unreferencedBlobs({ olderThan: future() }).map((b) => b.digest)).toEqual([digest]);
  });

  it('an unlinked blob is BLOB_UNKNOWN, a missing repository NAME_UNKNOWN', () => {
    store.linkBlob('acme/app', { digest: blobDigest('a'), size: 1 });
    const error = caught(() => store.unlinkBlob('acme/app', blobDigest('b')));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.code).toBe('BLOB_UNKNOWN');
    expect(caught(() => store.unlinkBlob('acme/none', blobDigest('a'))).code).toBe('NAME_UNKNOWN');
  });

  it('writes a DELETE BLOB event for repo@digest with the actor', () => {
    const digest = blobDigest('a');
    store.linkBlob('acme/app', { digest, size: 10 });
    const before = allEvents(store).length;
    store.unlinkBlob('acme/app', digest, { actor: 'alice' });
    const added = allEvents(store).slice(before);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({
      actor: 'alice',
      type: 'DELETE',
      object: { type: 'BLOB', id: `acme/app@${digest}` },
      repository: 'acme/app',
      digest,
    });
  });

  it('refuses with BLOB_REFERENCED while a manifest of that repository references it, changing nothing', () => {
    const t = tempStore();
    try {
      const s = t.store;
      const config = blobDesc('cfg', 'application/vnd.oci.image.config.v1+json');
      const layer = blobDesc('layer');
      const m = ociManifest({ config, layers: [layer] });
      for (const repo of ['acme/app', 'acme/other']) {
        s.linkBlob(repo, { digest: config.digest, size: config.size });
        s.linkBlob(repo, { digest: layer.digest, size: layer.size });
      }
      put('acme/app', m, s);
      const rows = dump(t.file);
      for (const digest of [config.digest, layer.digest]) {
        const error = caught(() => s.unlinkBlob('acme/app', digest, { actor: 'alice' }));
        expect(error.code).toBe('BLOB_REFERENCED');
        expect(error).not.toBeInstanceOf(NotFoundError);
      }
      expect(dump(t.file)).toEqual(rows);
      // Another repository's manifest does not hold this repository's link.
      s.unlinkBlob('acme/other', layer.digest);
      s.deleteManifest('acme/app', m.digest);
      s.unlinkBlob('acme/app', layer.digest);
      expect(caught(() => s.statBlob('acme/app', layer.digest)).code).toBe('BLOB_UNKNOWN');
    } finally {
      t.cleanup();
    }
  });

  it("unlinking from a repository where the blob is not linked leaves the other repository's link", () => {
    const digest = blobDigest('a');
    store.linkBlob('acme/app', { digest, size: 10 });
    put('acme/other', ociManifest());
    expect(caught(() => store.unlinkBlob('acme/other', digest)).code).toBe('BLOB_UNKNOWN');
    expect(store.statBlob('acme/app', digest).size).toBe(10);
  });
});

describe('deleteBlob', () => {
  it('forgets the blob everywhere with a DELETE BLOB event', () => {
    const digest = blobDigest('a');
    store.linkBlob('acme/app', { digest, size: 10 });
    store.linkBlob('acme/other', { digest, size: 10 });
    const before = allEvents(store).length;
    store.deleteBlob(digest, { actor: 'GARBAGE_COLLECTOR' });
    const added = allEvents(store).slice(before);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({ actor: 'GARBAGE_COLLECTOR', type: 'DELETE', object: { type: 'BLOB', id: digest }, digest });
    expect(caught(() => store.statBlob('acme/app', digest)).code).toBe('BLOB_UNKNOWN');
    expect(caught(() => store.statBlob('acme/other', digest)).code).toBe('BLOB_UNKNOWN');
    expect(store.unreferencedBlobs({ olderThan: future() })).toEqual([]);
  });

  it('after a delete the digest can be linked again with another size', () => {
    const digest = blobDigest('a');
    store.linkBlob('acme/app', { digest, size: 10 });
    store.deleteBlob(digest);
    store.linkBlob('acme/app', { digest, size: 20 });
    expect(store.statBlob('acme/app', digest).size).toBe(20);
  });

  it('refuses with BLOB_REFERENCED while a manifest of any repository references it, and allows it after', () => {
    const config = blobDesc('cfg', 'application/vnd.oci.image.config.v1+json');
    const layer = blobDesc('layer');
    const m = ociManifest({ config, layers: [layer] });
    store.linkBlob('acme/app', { digest: config.digest, size: config.size });
    store.linkBlob('acme/app', { digest: layer.digest, size: layer.size });
    put('acme/other', m);
    const before = allEvents(store).length;
    for (const digest of [config.digest, layer.digest]) {
      const error = caught(() => store.deleteBlob(digest));
      expect(error.code).toBe('BLOB_REFERENCED');
      expect(error).not.toBeInstanceOf(NotFoundError);
    }
    expect(allEvents(store)).toHaveLength(before);
    expect(store.statBlob('acme/app', layer.digest).size).toBe(layer.size);

    store.deleteManifest('acme/other', m.digest);
    store.deleteBlob(config.digest);
    store.deleteBlob(layer.digest);
    expect(caught(() => store.statBlob('acme/app', layer.digest)).code).toBe('BLOB_UNKNOWN');
  });

  it('an unknown blob is NotFoundError BLOB_UNKNOWN and writes no event', () => {
    const error = caught(() => store.deleteBlob(blobDigest('never')));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.code).toBe('BLOB_UNKNOWN');
    expect(allEvents(store)).toEqual([]);
  });
});

describe('unreferencedBlobs', () => {
  it('lists blobs no manifest references, older than the grace, in digest order', () => {
    const layer = blobDesc('layer');
    const loose = [blobDigest('x'), blobDigest('y'), blobDigest('z')];
    for (const digest of loose) store.linkBlob('acme/app', { digest, size: 5 });
    store.linkBlob('acme/app', { digest: layer.digest, size: layer.size });
    put('acme/app', ociManifest({ layers: [layer] }));
    const found = store.unreferencedBlobs({ olderThan: future() });
    expect(found.map((b) => b.digest)).toEqual([...loose].sort());
    for (const b of found) expect(b).toEqual({ digest: b.digest, size: 5, createdAt: expect.any(Date) });
  });

  it('leaves out blobs newer than olderThan (the grace period)', () => {
    store.linkBlob('acme/app', { digest: blobDigest('x'), size: 5 });
    expect(store.unreferencedBlobs({ olderThan: new Date(Date.now() - 60_000) })).toEqual([]);
  });

  it('a fresh link restarts the grace period of an old blob', () => {
    const digest = blobDigest('x');
    store.linkBlob('acme/app', { digest, size: 5 });
    tickPast(store.statBlob('acme/app', digest).createdAt.getTime());
    const cut = new Date();
    expect(store.unreferencedBlobs({ olderThan: cut }).map((b) => b.digest)).toEqual([digest]);
    tickPast(cut.getTime());
    store.linkBlob('acme/other', { digest, size: 5 });
    expect(store.unreferencedBlobs({ olderThan: cut })).toEqual([]);
  });

  it('a blob becomes unreferenced when its last manifest is deleted', () => {
    const layer = blobDesc('layer');
    store.linkBlob('acme/app', { digest: layer.digest, size: layer.size });
    const a = put('acme/app', ociManifest({ seed: 'a', layers: [layer] }));
    const b = put('acme/app', ociManifest({ seed: 'b', layers: [layer] }));
    store.deleteManifest('acme/app', a.digest);
    expect(store.unreferencedBlobs({ olderThan: future() }).map((x) => x.digest)).not.toContain(layer.digest);
    store.deleteManifest('acme/app', b.digest);
    expect(store.unreferencedBlobs({ olderThan: future() }).map((x) => x.digest)).toContain(layer.digest);
  });
});

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
