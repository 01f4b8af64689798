// check, stats and allBlobs on every backend: what an operator's inspection
// reads. (What SQLite's check finds in a damaged file, and what its stats say
// of the file: test/store/sqlite/inspection.test.ts.)

import { describe, expect, it } from 'vitest';
import type { Store } from 'regmeta';
import { blobDigest, ociManifest, rejection, type Built } from '../fixtures.js';
import { backends, storePerTest } from './backends.js';

/** Puts an image with its config and layer linked, as a registry would. */
async function putImage(store: Store, repo: string, seed: string): Promise<Built> {
  const m = ociManifest({ seed });
  await store.linkBlob(repo, { digest: blobDigest(`${seed}/config`), size: 500 });
  await store.linkBlob(repo, { digest: blobDigest(`${seed}/layer`), size: 1000 });
  await store.putManifest(repo, m.digest, m, {}, { requireReferences: true });
  return m;
}

describe.each(backends)('$name', (backend) => {
  const store = storePerTest(backend);

  describe('check', () => {
    it('finds nothing wrong in a sound store, counts what it checked, and reports progress', async () => {
      const a = await putImage(store, 'acme/app', 'a');
      await putImage(store, 'acme/app', 'b');
      await store.putTag('acme/app', 'v1', { digest: a.digest });
      const progress: [number, number][] = [];
      const found = await store.check({ onProgress: (done, total) => progress.push([done, total]) });
      expect(found).toEqual({
        checked: { integrity: true, foreignKeys: true, manifests: 2, tags: 1, blobReferences: 4 },
        problems: [],
        complete: true,
      });
      expect(progress).toEqual([[0, 2], [1, 2], [2, 2]]);
    });
  });

  describe('stats', () => {
    it('counts what the store holds and lists the largest repositories, in one snapshot', async () => {
      await putImage(store, 'acme/big', 'a');
      await putImage(store, 'acme/big', 'b');
      const small = await putImage(store, 'acme/small', 'c');
      await store.putTag('acme/small', 'v1', { digest: small.digest });
      const found = await store.stats({ top: 1 });
      expect(found.counts).toEqual({
        repositories: 2,
        manifests: 3,
        manifestBytes: expect.any(Number),
        tags: 1,
        blobs: 6,
        blobBytes: 3 * 1500,
        blobLinks: 6,
        events: expect.any(Number),
      });
      expect(found.largestRepositories).toEqual([{ repository: 'acme/big', manifests: 2, tags: 0, blobs: 4, blobBytes: 3000 }]);
      expect((await store.stats()).largestRepositories.map((r) => r.repository)).toEqual(['acme/big', 'acme/small']);
      expect((await rejection(store.stats({ top: -1 }))).code).toBe('ARGUMENT_INVALID');
    });
  });

  describe('allBlobs', () => {
    it('lists every blob in digest order, paginated like allTags', async () => {
      const digests = ['x', 'y', 'z'].map((seed) => blobDigest(seed));
      for (const digest of digests) await store.linkBlob('acme/app', { digest, size: 3 });
      const sorted = [...digests].sort();
      expect((await store.allBlobs()).map((b) => b.digest)).toEqual(sorted);
      expect((await store.allBlobs({ n: 1, last: sorted[0] })).map((b) => b.digest)).toEqual([sorted[1]]);
      expect((await store.allBlobs())[0]).toEqual({ digest: sorted[0], size: 3, createdAt: expect.any(Date) });
      expect((await rejection(store.allBlobs({ last: 'nope' }))).code).toBe('DIGEST_INVALID');
    });
  });
});
