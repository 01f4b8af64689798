// Blob links on every backend: linkBlob, statBlob, unlinkBlob and deleteBlob.

import { describe, expect, it } from 'vitest';
import { NotFoundError } from 'regmeta';
import { blobDesc, blobDigest, codeOf, eventsOf, ociManifest } from '../fixtures.js';
import { putBuiltAsync, rejection, snapshot, tickPast, type Built } from '../fixtures.js';
import { backends, storePerTest } from './backends.js';

const future = () => new Date(Date.now() + 60_000);

describe.each(backends)('$name', (backend) => {
  const store = storePerTest(backend);

  const put = (repo: string, m: Built) => putBuiltAsync(store, repo, m);

  describe('linkBlob and statBlob', () => {
    it('links a blob into a repository, creating the repository with a CREATE REPOSITORY event', async () => {
      const digest = blobDigest('a');
      const t0 = Date.now();
      await store.linkBlob('acme/app', { digest, size: 1234 }, { actor: 'alice' });
      const info = await store.statBlob('acme/app', digest);
      expect(info).toEqual({ digest, size: 1234, createdAt: expect.any(Date) });
      expect(info.createdAt.getTime()).toBeGreaterThanOrEqual(t0);
      expect(await store.catalog()).toEqual(['acme/app']);
      expect((await eventsOf(store)).map((e) => [e.actor, e.type, e.object.type, e.object.id])).toEqual([
        ['alice', 'CREATE', 'REPOSITORY', 'acme/app'],
      ]);
    });

    it('a blob is readable only from the repositories it is linked in', async () => {
      const digest = blobDigest('a');
      await store.linkBlob('acme/app', { digest, size: 10 });
      await put('acme/other', ociManifest());
      const error = await rejection(store.statBlob('acme/other', digest));
      expect(error).toBeInstanceOf(NotFoundError);
      expect(error.code).toBe('BLOB_UNKNOWN');
      await store.linkBlob('acme/other', { digest, size: 10 });
      expect((await store.statBlob('acme/other', digest)).size).toBe(10);
    });

    it('statBlob of a missing repository is NAME_UNKNOWN, of an unknown blob BLOB_UNKNOWN', async () => {
      expect(await codeOf(store.statBlob('acme/none', blobDigest('a')))).toBe('NAME_UNKNOWN');
      await store.linkBlob('acme/app', { digest: blobDigest('a'), size: 1 });
      expect(await codeOf(store.statBlob('acme/app', blobDigest('b')))).toBe('BLOB_UNKNOWN');
    });

    it('refuses a size that disagrees with the recorded one with SIZE_INVALID, and links nothing', async () => {
      const digest = blobDigest('a');
      await store.linkBlob('acme/app', { digest, size: 10 });
      await put('acme/other', ociManifest());
      const error = await rejection(store.linkBlob('acme/other', { digest, size: 11 }));
      expect(error.code).toBe('SIZE_INVALID');
      expect(error.detail).toEqual({ size: 10 });
      expect(await codeOf(store.statBlob('acme/other', digest))).toBe('BLOB_UNKNOWN');
      expect((await store.statBlob('acme/app', digest)).size).toBe(10);
    });

    it("linking again with the same size is allowed and keeps the blob's createdAt", async () => {
      const digest = blobDigest('a');
      await store.linkBlob('acme/app', { digest, size: 10 });
      const first = await store.statBlob('acme/app', digest);
      tickPast(first.createdAt.getTime());
      await store.linkBlob('acme/app', { digest, size: 10 });
      expect(await store.statBlob('acme/app', digest)).toEqual(first);
    });

    it('a blob of size 0 is a blob', async () => {
      const digest = blobDigest('empty');
      await store.linkBlob('acme/app', { digest, size: 0 });
      expect((await store.statBlob('acme/app', digest)).size).toBe(0);
    });
  });

  describe('unlinkBlob', () => {
    it('removes the link from that repository only; the blob stays for the collector', async () => {
      const digest = blobDigest('a');
      await store.linkBlob('acme/app', { digest, size: 10 });
      await store.linkBlob('acme/other', { digest, size: 10 });
      await store.unlinkBlob('acme/app', digest);
      expect(await codeOf(store.statBlob('acme/app', digest))).toBe('BLOB_UNKNOWN');
      expect((await store.statBlob('acme/other', digest)).size).toBe(10);
      await store.unlinkBlob('acme/other', digest);
      expect((await store.unreferencedBlobs({ olderThan: future() })).map((b) => b.digest)).toEqual([digest]);
    });

    it('an unlinked blob is BLOB_UNKNOWN, a missing repository NAME_UNKNOWN', async () => {
      await store.linkBlob('acme/app', { digest: blobDigest('a'), size: 1 });
      const error = await rejection(store.unlinkBlob('acme/app', blobDigest('b')));
      expect(error).toBeInstanceOf(NotFoundError);
      expect(error.code).toBe('BLOB_UNKNOWN');
      expect(await codeOf(store.unlinkBlob('acme/none', blobDigest('a')))).toBe('NAME_UNKNOWN');
    });

    it('writes a DELETE BLOB event for repo@digest with the actor', async () => {
      const digest = blobDigest('a');
      await store.linkBlob('acme/app', { digest, size: 10 });
      const before = (await eventsOf(store)).length;
      await store.unlinkBlob('acme/app', digest, { actor: 'alice' });
      const added = (await eventsOf(store)).slice(before);
      expect(added).toHaveLength(1);
      expect(added[0]).toMatchObject({
        actor: 'alice',
        type: 'DELETE',
        object: { type: 'BLOB', id: `acme/app@${digest}` },
        repository: 'acme/app',
        digest,
      });
    });

    it('refuses with BLOB_REFERENCED while a manifest of that repository references it, changing nothing', async () => {
      const config = blobDesc('cfg', 'application/vnd.oci.image.config.v1+json');
      const layer = blobDesc('layer');
      const m = ociManifest({ config, layers: [layer] });
      for (const repo of ['acme/app', 'acme/other']) {
        await store.linkBlob(repo, { digest: config.digest, size: config.size });
        await store.linkBlob(repo, { digest: layer.digest, size: layer.size });
      }
      await put('acme/app', m);
      const before = await snapshot(store);
      for (const digest of [config.digest, layer.digest]) {
        const error = await rejection(store.unlinkBlob('acme/app', digest, { actor: 'alice' }));
        expect(error.code).toBe('BLOB_REFERENCED');
        expect(error).not.toBeInstanceOf(NotFoundError);
      }
      expect(await snapshot(store)).toEqual(before);
      // Another repository's manifest does not hold this repository's link.
      await store.unlinkBlob('acme/other', layer.digest);
      await store.deleteManifest('acme/app', m.digest);
      await store.unlinkBlob('acme/app', layer.digest);
      expect(await codeOf(store.statBlob('acme/app', layer.digest))).toBe('BLOB_UNKNOWN');
    });

    it("unlinking from a repository where the blob is not linked leaves the other repository's link", async () => {
      const digest = blobDigest('a');
      await store.linkBlob('acme/app', { digest, size: 10 });
      await put('acme/other', ociManifest());
      expect(await codeOf(store.unlinkBlob('acme/other', digest))).toBe('BLOB_UNKNOWN');
      expect((await store.statBlob('acme/app', digest)).size).toBe(10);
    });
  });

  describe('deleteBlob', () => {
    it('forgets the blob everywhere with a DELETE BLOB event', async () => {
      const digest = blobDigest('a');
      await store.linkBlob('acme/app', { digest, size: 10 });
      await store.linkBlob('acme/other', { digest, size: 10 });
      const before = (await eventsOf(store)).length;
      await store.deleteBlob(digest, { actor: 'GARBAGE_COLLECTOR' });
      const added = (await eventsOf(store)).slice(before);
      expect(added).toHaveLength(1);
      expect(added[0]).toMatchObject({ actor: 'GARBAGE_COLLECTOR', type: 'DELETE', object: { type: 'BLOB', id: digest }, digest });
      expect(await codeOf(store.statBlob('acme/app', digest))).toBe('BLOB_UNKNOWN');
      expect(await codeOf(store.statBlob('acme/other', digest))).toBe('BLOB_UNKNOWN');
      expect(await store.unreferencedBlobs({ olderThan: future() })).toEqual([]);
    });

    it('after a delete the digest can be linked again with another size', async () => {
      const digest = blobDigest('a');
      await store.linkBlob('acme/app', { digest, size: 10 });
      await store.deleteBlob(digest);
      await store.linkBlob('acme/app', { digest, size: 20 });
      expect((await store.statBlob('acme/app', digest)).size).toBe(20);
    });

    it('refuses with BLOB_REFERENCED while a manifest of any repository references it, and allows it after', async () => {
      const config = blobDesc('cfg', 'application/vnd.oci.image.config.v1+json');
      const layer = blobDesc('layer');
      const m = ociManifest({ config, layers: [layer] });
      await store.linkBlob('acme/app', { digest: config.digest, size: config.size });
      await store.linkBlob('acme/app', { digest: layer.digest, size: layer.size });
      await put('acme/other', m);
      const before = (await eventsOf(store)).length;
      for (const digest of [config.digest, layer.digest]) {
        const error = await rejection(store.deleteBlob(digest));
        expect(error.code).toBe('BLOB_REFERENCED');
        expect(error).not.toBeInstanceOf(NotFoundError);
      }
      expect(await eventsOf(store)).toHaveLength(before);
      expect((await store.statBlob('acme/app', layer.digest)).size).toBe(layer.size);

      await store.deleteManifest('acme/other', m.digest);
      await store.deleteBlob(config.digest);
      await store.deleteBlob(layer.digest);
      expect(await codeOf(store.statBlob('acme/app', layer.digest))).toBe('BLOB_UNKNOWN');
    });

    it('an unknown blob is NotFoundError BLOB_UNKNOWN and writes no event', async () => {
      const error = await rejection(store.deleteBlob(blobDigest('never')));
      expect(error).toBeInstanceOf(NotFoundError);
      expect(error.code).toBe('BLOB_UNKNOWN');
      expect(await eventsOf(store)).toEqual([]);
    });
  });
});
