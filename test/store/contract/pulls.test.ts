// A mirror's cache on every backend: the last pull of each repository,
// recorded in batches, and a namespace's repositories with what they link
// (what regmeta gc's eviction weighs).

import { describe, expect, it } from 'vitest';
import { blobDigest, codeOf, eventsOf } from '../fixtures.js';
import { backends, storePerTest } from './backends.js';

const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms);
const blob = (seed: string, size: number) => ({ digest: blobDigest(seed), size });

describe.each(backends)('$name', (backend) => {
  const store = storePerTest(backend);

  const pulledAt = async (repo: string) => {
    const prefix = repo.slice(0, repo.indexOf('/'));
    return (await store.namespaceUsage(prefix)).find((r) => r.name === repo)?.pulledAt;
  };

  describe('recordPulls', () => {
    it('keeps the latest pull of each repository, whatever order the batches and their entries come in', async () => {
      await store.linkBlob('hub/a', blob('a', 1));
      await store.linkBlob('hub/b', blob('b', 1));
      expect(await pulledAt('hub/a')).toBeUndefined();
      expect(await store.recordPulls([{ repo: 'hub/a', at: at(20) }, { repo: 'hub/a', at: at(30) }, { repo: 'hub/a', at: at(10) }])).toBe(1);
      expect(await pulledAt('hub/a')).toEqual(at(30));
      expect(await store.recordPulls([{ repo: 'hub/a', at: at(5) }, { repo: 'hub/b', at: at(7) }])).toBe(2);
      expect(await pulledAt('hub/a')).toEqual(at(30));
      expect(await pulledAt('hub/b')).toEqual(at(7));
      expect(await store.recordPulls([])).toBe(0);
    });

    it('skips repositories that do not exist, writes no events, and a repository created again starts unpulled', async () => {
      await store.linkBlob('hub/a', blob('a', 1), { actor: 'mirror' });
      const before = (await eventsOf(store)).length;
      expect(await store.recordPulls([{ repo: 'hub/gone', at: at(1) }, { repo: 'hub/a', at: at(2) }])).toBe(1);
      expect(await eventsOf(store)).toHaveLength(before);
      await store.deleteRepository('hub/a', { actor: 'mirror' });
      await store.linkBlob('hub/a', blob('a', 1), { actor: 'mirror' });
      expect(await pulledAt('hub/a')).toBeUndefined();
    });

    it('refuses a batch that is not an array of { repo, at: a valid Date }, recording none of it', async () => {
      await store.linkBlob('hub/a', blob('a', 1));
      const bad: unknown[] = [
        undefined,
        'hub/a',
        [{ repo: 'hub/a', at: at(1) }, null],
        [{ repo: 'hub/a', at: at(1) }, { repo: 'hub/a', at: Date.now() }],
        [{ repo: 'hub/a', at: new Date(NaN) }],
      ];
      for (const pulls of bad) expect(await codeOf(store.recordPulls(pulls as never))).toBe('ARGUMENT_INVALID');
      expect(await codeOf(store.recordPulls([{ repo: 'Hub/A', at: at(1) }]))).toBe('NAME_INVALID');
      expect(await pulledAt('hub/a')).toBeUndefined();
    });
  });

  describe('namespaceUsage', () => {
    it('lists the repositories named prefix/…, in byte order, with their creation, last pull and linked blobs', async () => {
      const shared = blob('shared', 100);
      await store.linkBlob('hub/library/alpine', shared, { actor: 'mirror' });
      await store.linkBlob('hub/library/alpine', blob('alpine', 10), { actor: 'mirror' });
      await store.linkBlob('hub/library/busybox', shared, { actor: 'mirror' });
      // Outside the namespace, though their names start alike.
      for (const name of ['hub', 'hub-x/y', 'hub.io/y', 'hub0/y', 'hubz/y', 'other/x']) await store.linkBlob(name, shared);
      await store.recordPulls([{ repo: 'hub/library/busybox', at: at(1) }]);
      const created = Date.now();
      const usage = await store.namespaceUsage('hub');
      expect(usage.map((r) => r.name)).toEqual(['hub/library/alpine', 'hub/library/busybox']);
      const [alpine, busybox] = usage;
      expect(alpine.pulledAt).toBeUndefined();
      expect(Math.abs(alpine.createdAt.getTime() - created)).toBeLessThan(60_000);
      expect(alpine.blobs).toEqual([blob('alpine', 10), shared].sort((a, b) => (a.digest < b.digest ? -1 : 1)));
      expect(busybox).toMatchObject({ pulledAt: at(1), blobs: [shared] });
      expect((await store.namespaceUsage('hub/library')).map((r) => r.name)).toEqual(['hub/library/alpine', 'hub/library/busybox']);
      expect(await store.namespaceUsage('nothing')).toEqual([]);
    });

    it('lists a repository that links no blob (its manifests alone) with none', async () => {
      await store.linkBlob('hub/a', blob('a', 1));
      await store.unlinkBlob('hub/a', blob('a', 1).digest);
      expect(await store.namespaceUsage('hub')).toEqual([{ name: 'hub/a', createdAt: expect.any(Date), blobs: [] }]);
    });

    it('refuses a prefix that is not a repository name', async () => {
      for (const prefix of ['', 'Hub', 'hub/', undefined]) expect(await codeOf(store.namespaceUsage(prefix as never))).toBe('NAME_INVALID');
    });
  });
});
