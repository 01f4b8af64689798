// Blob links: linkBlob, statBlob, unlinkBlob and deleteBlob.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, NotFoundError, type MetadataStore } from 'regmeta';
import { caught, allEvents, blobDesc, blobDigest, dump, ociManifest, tempStore, putBuilt, type Built } from './fixtures.js';

let store: MetadataStore;
beforeEach(() => {
  store = openStore(':memory:');
});
afterEach(() => store.close());


const put = (repo: string, m: Built, s: MetadataStore = store): Built => putBuilt(s, repo, m);

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
