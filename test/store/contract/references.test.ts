// putManifest({ requireReferences }): the registry's presence check, done in
// the same transaction as the write, on every backend.

import { describe, expect, it } from 'vitest';
import { absentManifest, blobDesc, ociIndex, ociManifest, rejection, snapshot } from '../fixtures.js';
import { backends, storePerTest } from './backends.js';

const repo = 'acme/app';

describe.each(backends)('$name', (backend) => {
  const store = storePerTest(backend);

  const codeAndDetail = async (pending: Promise<unknown>) => {
    const error = await rejection(pending);
    return { code: error.code, detail: error.detail };
  };

  async function linkAll(name: string, image = ociManifest()) {
    const json = JSON.parse(image.payload.toString()) as { config: { digest: string; size: number }; layers: { digest: string; size: number }[] };
    for (const d of [json.config, ...json.layers]) await store.linkBlob(name, { digest: d.digest, size: d.size });
    return image;
  }

  describe('putManifest with requireReferences', () => {
    it('stores and tags a manifest whose blobs are all linked in the repository', async () => {
      const image = await linkAll(repo);
      await store.putManifest(repo, image.digest, image, {}, { tag: 'v1', requireReferences: true });
      expect((await store.getTag(repo, 'v1')).digest).toBe(image.digest);
    });

    it('refuses a manifest with an unlinked layer as MANIFEST_BLOB_UNKNOWN naming it, and changes nothing', async () => {
      const missing = blobDesc('never-pushed');
      const image = ociManifest({ layers: [missing] });
      await store.linkBlob(repo, { digest: JSON.parse(image.payload.toString()).config.digest, size: 500 });
      const before = await snapshot(store);
      const error = await codeAndDetail(store.putManifest(repo, image.digest, image, {}, { tag: 'v1', requireReferences: true }));
      expect(error).toEqual({ code: 'MANIFEST_BLOB_UNKNOWN', detail: { digest: missing.digest } });
      expect(await snapshot(store)).toEqual(before);
    });

    it('does not count a blob linked only in another repository', async () => {
      const image = await linkAll('other/repo');
      const error = await codeAndDetail(store.putManifest(repo, image.digest, image, {}, { requireReferences: true }));
      expect(error.code).toBe('MANIFEST_BLOB_UNKNOWN');
      expect(await store.catalog()).toEqual(['other/repo']);
    });

    it('refuses an index whose child manifest is not in the repository', async () => {
      const child = await linkAll(repo);
      await store.putManifest(repo, child.digest, child);
      const absent = absentManifest('child');
      const index = ociIndex([child.descriptor, absent]);
      const error = await codeAndDetail(store.putManifest(repo, index.digest, index, {}, { requireReferences: true }));
      expect(error).toEqual({ code: 'MANIFEST_BLOB_UNKNOWN', detail: { digest: absent.digest } });
      const complete = ociIndex([child.descriptor]);
      await store.putManifest(repo, complete.digest, complete, {}, { requireReferences: true });
      expect((await store.statManifest(repo, complete.digest)).mediaType).toBe(complete.mediaType);
    });

    it('allows a missing subject', async () => {
      const referrer = await linkAll(repo, ociManifest({ seed: 'sbom', artifactType: 'application/spdx+json', subject: absentManifest('subject') }));
      await store.putManifest(repo, referrer.digest, referrer, {}, { requireReferences: true });
      expect((await store.referrers(repo, absentManifest('subject').digest)).map((d) => d.digest)).toEqual([referrer.digest]);
    });

    it('without the option records references whose targets are absent', async () => {
      const layer = blobDesc('nowhere');
      const image = ociManifest({ layers: [layer] });
      await store.putManifest(repo, image.digest, image);
      expect((await store.statManifest(repo, image.digest)).digest).toBe(image.digest);
      // The layer, linked later, is held by the manifest recorded before it.
      await store.linkBlob(repo, { digest: layer.digest, size: layer.size });
      expect((await codeAndDetail(store.unlinkBlob(repo, layer.digest))).code).toBe('BLOB_REFERENCED');
    });
  });
});
