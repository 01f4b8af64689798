import { describe, expect, it } from 'vitest';
import { asyncStore, openStore, StoreError } from 'regmeta';
import { blobDesc, blobDigest, ociManifest } from '../fixtures.js';

describe('asyncStore: the SQLite store behind the asynchronous contract', () => {
  it('answers what the synchronous store answers', async () => {
    const sync = openStore(':memory:');
    const store = asyncStore(sync);
    const config = blobDesc('c', 'application/vnd.oci.image.config.v1+json', 500);
    const layer = blobDesc('l');
    const m = ociManifest({ config, layers: [layer] });
    await store.linkBlob('a/b', config);
    await store.linkBlob('a/b', layer);
    const put = await store.putManifest('a/b', m.digest, { mediaType: m.mediaType, payload: m.payload }, {}, { tag: 'latest', requireReferences: true });
    expect(put.digest).toBe(m.digest);
    expect(await store.getTag('a/b', 'latest')).toEqual(sync.getTag('a/b', 'latest'));
    expect(await store.allTags('a/b')).toEqual(['latest']);
    expect(store.backend).toBe('sqlite');
    expect(store.location).toBe(':memory:');
    await store.close();
  });

  it('rejects with the store error instead of throwing synchronously', async () => {
    const store = asyncStore(openStore(':memory:'));
    const pending = store.getTag('no/such', 'tag');
    expect(pending).toBeInstanceOf(Promise);
    await expect(pending).rejects.toMatchObject({ code: 'NAME_UNKNOWN' });
    await store.close();
    await expect(store.catalog()).rejects.toMatchObject({ code: 'STORE_CLOSED' });
  });

  it('awaits an asynchronous callback, then writes; a synchronous one still runs inside the transaction', async () => {
    const store = asyncStore(openStore(':memory:'));
    const blob = { digest: blobDigest('x'), size: 3 };
    let placed = false;
    await store.linkBlob('a/b', blob, {}, { place: async () => void (placed = await Promise.resolve(true)) });
    expect(placed).toBe(true);
    expect((await store.statBlob('a/b', blob.digest)).size).toBe(3);
    const other = { digest: blobDigest('y'), size: 4 };
    await store.linkBlob('a/b', other, {}, { place: () => void (placed = false) });
    expect(placed).toBe(false);
    expect((await store.statBlob('a/b', other.digest)).size).toBe(4);
    await store.close();
  });

  it('derives its methods, and those of its sessions and cursors, from the contract', async () => {
    const sync = openStore(':memory:');
    const store = asyncStore(sync);
    const prototype = Object.getPrototypeOf(store) as Record<string, unknown>;
    for (const name of ['putManifest', 'getManifestByReference', 'whileBlobUnknown', 'subscribe', 'close']) {
      expect(typeof prototype[name]).toBe('function');
    }
    for (const name of ['open', 'claim', 'count']) expect(typeof (store.uploads as unknown as Record<string, unknown>)[name]).toBe('function');
    expect(await store.notifications.claim('http://x')).toBe(true);
    await expect(store.notifications.claim('')).rejects.toMatchObject({ code: 'ARGUMENT_INVALID' });
    await store.close();
  });
});

describe('MetadataStore: the contract, synchronously, for embedders', () => {
  it('checks its arguments before any transaction, throwing the codes the contract names', () => {
    const store = openStore(':memory:');
    expect(() => store.getTag('Bad Name', 'latest')).toThrow(expect.objectContaining({ code: 'NAME_INVALID' }));
    expect(() => store.allTags('a/b', { n: -1 })).toThrow(expect.objectContaining({ code: 'PAGINATION_NUMBER_INVALID' }));
    expect(() => store.uploads.get('a/b', 'not-a-session')).toThrow(expect.objectContaining({ code: 'BLOB_UPLOAD_UNKNOWN' }));
    expect(() => store.notifications.open('')).toThrow(expect.objectContaining({ code: 'ARGUMENT_INVALID' }));
    store.close();
    // Closed: a bad argument is still told first, a good one meets the closed store.
    expect(() => store.getTag('Bad Name', 'latest')).toThrow(expect.objectContaining({ code: 'NAME_INVALID' }));
    expect(() => store.getTag('a/b', 'latest')).toThrow(expect.objectContaining({ code: 'STORE_CLOSED' }));
  });

  it('refuses a callback that returns a promise, and rolls its transaction back', () => {
    const store = openStore(':memory:');
    const blob = { digest: blobDigest('y'), size: 3 };
    const place = (async () => {}) as unknown as () => void;
    expect(() => store.linkBlob('a/b', blob, {}, { place })).toThrow(expect.objectContaining({ code: 'ARGUMENT_INVALID' }));
    expect(() => store.statBlob('a/b', blob.digest)).toThrow(expect.objectContaining({ code: 'NAME_UNKNOWN' }));
    expect(() => store.whileBlobUnknown(blob.digest, place)).toThrow(expect.objectContaining({ code: 'ARGUMENT_INVALID' }));
    store.close();
  });
});
