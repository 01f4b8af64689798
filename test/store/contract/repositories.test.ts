// Repositories on every backend: the catalog, and deleteRepository with
// everything in it.

import { describe, expect, it } from 'vitest';
import { NotFoundError } from 'regmeta';
import { blobDesc, blobDigest, codeOf, eventsOf, ociIndex, ociManifest, putBuiltAsync, rejection, type Built } from '../fixtures.js';
import { backends, storePerTest } from './backends.js';

const future = () => new Date(Date.now() + 60_000);

describe.each(backends)('$name', (backend) => {
  const store = storePerTest(backend);

  const put = (repo: string, m: Built) => putBuiltAsync(store, repo, m);

  describe('catalog', () => {
    it('lists repositories in byte order, paged by n and last', async () => {
      const names = ['b/x', 'a', 'a-b/c', 'a/b', 'a.b', 'a_b', 'a0'];
      for (const name of names) await store.linkBlob(name, { digest: blobDigest('x'), size: 1 });
      // '-' < '.' < '/' < '0' < '_' in byte order.
      const sorted = ['a', 'a-b/c', 'a.b', 'a/b', 'a0', 'a_b', 'b/x'];
      expect(await store.catalog()).toEqual(sorted);
      expect(await store.catalog({ n: 2 })).toEqual(['a', 'a-b/c']);
      expect(await store.catalog({ n: 2, last: 'a.b' })).toEqual(['a/b', 'a0']);
      expect(await store.catalog({ last: 'a1' })).toEqual(['a_b', 'b/x']);
      expect(await store.catalog({ n: 0 })).toEqual([]);
    });

    it('lists only the names that start with a prefix, paged the same way', async () => {
      const names = ['a', 'a-b/c', 'a.b', 'a/b', 'a/b/c', 'a/bz', 'a0', 'a_b', 'b/x', 'z'];
      for (const name of names) await store.linkBlob(name, { digest: blobDigest('x'), size: 1 });
      expect(await store.catalog({ prefix: 'a/' })).toEqual(['a/b', 'a/b/c', 'a/bz']);
      expect(await store.catalog({ prefix: 'a/b' })).toEqual(['a/b', 'a/b/c', 'a/bz']);
      expect(await store.catalog({ prefix: 'a/b/' })).toEqual(['a/b/c']);
      expect(await store.catalog({ prefix: 'a/', n: 1, last: 'a/b' })).toEqual(['a/b/c']);
      // `last` before the range seeks to its start; after it, nothing.
      expect(await store.catalog({ prefix: 'a/', last: 'a' })).toEqual(['a/b', 'a/b/c', 'a/bz']);
      expect(await store.catalog({ prefix: 'a/', last: 'a0' })).toEqual([]);
      expect(await store.catalog({ prefix: 'a' })).toEqual(names.slice(0, 8));
      expect(await store.catalog({ prefix: 'z' })).toEqual(['z']);
      expect(await store.catalog({ prefix: 'zz' })).toEqual([]);
      expect(await store.catalog({ prefix: '' })).toEqual(names);
    });
  });

  describe('deleteRepository', () => {
    it('removes tags, manifests, links and history, with a DELETE event for each tag, manifest and the repository', async () => {
      const layer = blobDesc('layer');
      await store.linkBlob('acme/app', { digest: layer.digest, size: layer.size });
      const child = await put('acme/app', ociManifest({ layers: [layer] }));
      const idx = await put('acme/app', ociIndex([child.descriptor]));
      const sig = await put('acme/app', ociManifest({ seed: 'sig', subject: child.descriptor, artifactType: 'x/sig' }));
      await store.putTag('acme/app', 'v1', { digest: child.digest });
      await store.putTag('acme/app', 'latest', { digest: idx.digest });
      const before = (await eventsOf(store)).length;

      await store.deleteRepository('acme/app', { actor: 'admin' });

      const added = (await eventsOf(store)).slice(before);
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

      expect(await store.catalog()).toEqual([]);
      expect(await codeOf(store.getManifest('acme/app', child.digest))).toBe('NAME_UNKNOWN');
      expect(await codeOf(store.allTags('acme/app'))).toBe('NAME_UNKNOWN');
      expect(await codeOf(store.statBlob('acme/app', layer.digest))).toBe('NAME_UNKNOWN');
      expect(await store.referrers('acme/app', child.digest)).toEqual([]);
      // Nothing of it is left: no repository, manifest, tag or link is counted...
      expect((await store.stats()).counts).toMatchObject({ repositories: 0, manifests: 0, manifestBytes: 0, tags: 0, blobLinks: 0 });
      // ...and the blob itself stays for the garbage collector, now unreferenced.
      expect((await store.unreferencedBlobs({ olderThan: future() })).map((b) => b.digest)).toEqual([layer.digest]);
      // A repository of the same name starts without history, and without the index that listed the child.
      await put('acme/app', child);
      for (const tag of ['v1', 'latest']) expect(await store.tagHistory('acme/app', tag)).toEqual([]);
      await store.deleteManifest('acme/app', child.digest);
    });

    it('leaves other repositories alone, the same digests included', async () => {
      const m = ociManifest();
      await put('acme/app', m);
      await put('acme/app2', m);
      await store.putTag('acme/app2', 'latest', { digest: m.digest });
      await store.deleteRepository('acme/app');
      expect(await store.catalog()).toEqual(['acme/app2']);
      expect((await store.getTag('acme/app2', 'latest')).digest).toBe(m.digest);
    });

    it('a missing repository is NotFoundError NAME_UNKNOWN and writes no event', async () => {
      const error = await rejection(store.deleteRepository('acme/none'));
      expect(error).toBeInstanceOf(NotFoundError);
      expect(error.code).toBe('NAME_UNKNOWN');
      expect(await eventsOf(store)).toEqual([]);
    });

    it('the name can be used again afterwards, starting empty', async () => {
      const m = await put('acme/app', ociManifest());
      await store.putTag('acme/app', 'latest', { digest: m.digest });
      await store.deleteRepository('acme/app');
      const before = (await eventsOf(store)).length;
      await put('acme/app', ociManifest({ seed: 'new' }));
      expect((await eventsOf(store)).slice(before)[0].object).toEqual({ type: 'REPOSITORY', id: 'acme/app' });
      expect(await store.allTags('acme/app')).toEqual([]);
      expect(await store.tagHistory('acme/app', 'latest')).toEqual([]);
    });
  });
});
