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

  it('refuses an asynchronous callback inside a SQLite transaction and writes nothing', async () => {
    const store = asyncStore(openStore(':memory:'));
    const blob = { digest: blobDigest('x'), size: 3 };
    const failed = store.linkBlob('a/b', blob, {}, { place: async () => {} });
    await expect(failed).rejects.toBeInstanceOf(StoreError);
    await expect(failed).rejects.toMatchObject({ code: 'ARGUMENT_INVALID' });
    await expect(store.statBlob('a/b', blob.digest)).rejects.toMatchObject({ code: 'NAME_UNKNOWN' });
    let placed = false;
    await store.linkBlob('a/b', blob, {}, { place: () => void (placed = true) });
    expect(placed).toBe(true);
    expect((await store.statBlob('a/b', blob.digest)).size).toBe(3);
    await store.close();
  });
});
