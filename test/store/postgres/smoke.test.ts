import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStore, type AsyncStore } from 'regmeta/postgres';
import { blobDesc, ociIndex, ociManifest } from '../fixtures.js';
import { startPostgres, type PostgresServer } from './server.js';

describe('smoke', () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('does the basics', async () => {
    const store: AsyncStore = await openPostgresStore(await server.createDatabase());
    const config = blobDesc('c', 'application/vnd.oci.image.config.v1+json', 500);
    const layer = blobDesc('l');
    const m = ociManifest({ config, layers: [layer] });
    await store.linkBlob('a/b', config);
    await store.linkBlob('a/b', layer);
    await store.linkBlob('a/b', layer);
    const put = await store.putManifest('a/b', m.digest, m, { actor: 'me' }, { tag: 'latest', requireReferences: true });
    expect(put.digest).toBe(m.digest);
    await store.putManifest('a/b', m.digest, m, { actor: 'me' }, { tag: 'latest', requireReferences: true });
    expect(await store.getTag('a/b', 'latest')).toEqual({ mediaType: m.mediaType, digest: m.digest, size: m.size });
    const got = await store.getManifestByReference('a/b', 'latest');
    expect(Buffer.compare(got.payload, m.payload)).toBe(0);
    const m2 = ociManifest({ config, layers: [layer], annotations: { n: '2' } });
    await store.putManifest('a/b', m2.digest, m2, {}, { tag: 'latest' });
    const idx = ociIndex([m.descriptor, m2.descriptor]);
    await store.putManifest('a/b', idx.digest, idx, {}, { tag: 'multi', requireReferences: true });
    await expect(store.deleteManifest('a/b', m.digest)).rejects.toMatchObject({ code: 'MANIFEST_REFERENCED' });
    expect(await store.allTags('a/b')).toEqual(['latest', 'multi']);
    expect(await store.allTags('a/b', { n: 1 })).toEqual(['latest']);
    expect(await store.lookupTags('a/b', m2.digest)).toEqual(['latest']);
    expect((await store.tagHistory('a/b', 'latest')).map((h) => h.digest)).toEqual([m2.digest, m.digest]);
    expect(await store.catalog()).toEqual(['a/b']);
    await store.deleteManifest('a/b', idx.digest, { actor: 'me' });
    await expect(store.getTag('a/b', 'multi')).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
    await expect(store.getTag('x/y', 'multi')).rejects.toMatchObject({ code: 'NAME_UNKNOWN' });
    const page = await store.getEvents({ queryingUser: '', isAdmin: true, perPage: 100 });
    console.log(page.events.map((e) => `${e.type} ${e.object.type} ${e.object.id} ${e.previousDigest ?? ''}`).reverse().join('\n'));
    await store.stats(); await store.check();
    expect((await store.untaggedManifests()).map((u) => u.digest)).toEqual([m.digest]);
    await store.deleteRepository('a/b');
    expect(await store.catalog()).toEqual([]);
    console.log(await store.unreferencedBlobs());
    await store.collectBlob(config.digest, {}, { removeFile: async () => {} });
    await store.notifications.open('http://x');
    console.log(await store.notifications.status());
    await store.close();
    await expect(store.catalog()).rejects.toMatchObject({ code: 'STORE_CLOSED' });
  });
});
