// Storage sizes and quotas on every backend: the sizes the store keeps on
// each link, unlink and delete agree with a count made through the
// contract after any mix of writes, and a quota refuses the link that
// would take its namespace over, changing nothing.

import { describe, expect, it } from 'vitest';
import type { Store, Usage } from 'regmeta';
import { blobDesc, blobDigest, ociManifest, rejection, type Built } from '../fixtures.js';
import { backends, storePerTest } from './backends.js';

const future = () => new Date(Date.now() + 60_000);

/** A small deterministic generator (mulberry32): the same mix each run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const REPOSITORIES = ['acme', 'acme/app', 'acme/web', 'beta/app', 'beta/tools/x', 'gamma'];
const BLOBS = Array.from({ length: 8 }, (_, i) => blobDesc(`blob${i}`, 'application/vnd.oci.image.layer.v1.tar+gzip', 100 * (i + 1) + i));
const namespaceOf = (name: string) => name.split('/')[0];

/** What usage() must say, counted through the contract: which blob each repository has (statBlob), each blob once per level. */
async function counted(store: Store): Promise<Usage> {
  const all = await store.allBlobs();
  const sizes = new Map(all.map((b) => [b.digest, b.size]));
  const namespaces = new Map<string, { repositories: number; blobs: Set<string> }>();
  const repositories: { repository: string; bytes: number }[] = [];
  for (const repository of await store.catalog()) {
    const ns = namespaceOf(repository);
    const entry = namespaces.get(ns) ?? { repositories: 0, blobs: new Set<string>() };
    namespaces.set(ns, entry);
    entry.repositories++;
    let bytes = 0;
    for (const { digest } of all) {
      const linked = await store.statBlob(repository, digest).then(() => true, () => false);
      if (!linked) continue;
      bytes += sizes.get(digest)!;
      entry.blobs.add(digest);
    }
    repositories.push({ repository, bytes });
  }
  const sum = (digests: Iterable<string>) => [...digests].reduce((n, d) => n + sizes.get(d)!, 0);
  return {
    total: { blobs: all.length, bytes: sum(sizes.keys()) },
    namespaces: [...namespaces]
      .map(([namespace, e]) => ({ namespace, bytes: sum(e.blobs), repositories: e.repositories }))
      .sort((a, b) => (a.namespace < b.namespace ? -1 : 1)),
    repositories,
  };
}

/** usage() for the whole registry, with every namespace's repositories gathered from usage({ namespace }). */
async function kept(store: Store): Promise<Usage> {
  const usage = await store.usage();
  const repositories = [];
  for (const { namespace } of usage.namespaces) repositories.push(...(await store.usage({ namespace, repositories: true })).repositories!);
  return { ...usage, repositories: repositories.sort((a, b) => (a.repository < b.repository ? -1 : 1)) };
}

/** One random write, whatever it is refused with (a referenced blob, a missing repository). */
async function step(store: Store, next: () => number, manifests: Map<string, Built>): Promise<void> {
  const pick = <T>(list: readonly T[]) => list[Math.floor(next() * list.length)];
  const repo = pick(REPOSITORIES);
  const blob = pick(BLOBS);
  const ignore = () => undefined;
  const roll = next();
  if (roll < 0.35) await store.linkBlob(repo, blob);
  else if (roll < 0.45) await store.mountBlob(repo, blob.digest, pick(REPOSITORIES)).catch(ignore);
  else if (roll < 0.55) await store.unlinkBlob(repo, blob.digest).catch(ignore);
  else if (roll < 0.65) {
    // A manifest of two blobs linked here: what makes unlinks and deletes refuse.
    const layer = pick(BLOBS);
    await store.linkBlob(repo, blob);
    await store.linkBlob(repo, layer);
    const m = ociManifest({ config: blob, layers: [layer], annotations: { n: String(next()) } });
    await store.putManifest(repo, m.digest, m);
    manifests.set(`${repo}@${m.digest}`, m);
  } else if (roll < 0.72) {
    const key = pick([...manifests.keys()].filter((k) => k.startsWith(`${repo}@`)).concat(['']));
    if (key !== '') await store.deleteManifest(repo, key.slice(repo.length + 1)).then(() => manifests.delete(key), ignore);
  } else if (roll < 0.78) {
    await store.deleteRepository(repo).catch(ignore);
    for (const key of [...manifests.keys()]) if (key.startsWith(`${repo}@`)) manifests.delete(key);
  } else if (roll < 0.86) await store.deleteBlob(blob.digest).catch(ignore);
  else await store.collectBlob(blob.digest, undefined, { olderThan: future() }).catch(ignore);
}

describe.each(backends)('$name', (backend) => {
  describe('usage', () => {
    const store = storePerTest(backend, { policy: { quotas: [{ namespace: 'gamma', maxSize: 1_000_000 }, { namespace: 'delta', maxSize: 10 }] } });

    it('keeps the sizes that a count finds, after a random mix of pushes, mounts, unlinks, deletes and collections', async () => {
      const next = random(20);
      const manifests = new Map<string, Built>();
      for (let round = 0; round < 6; round++) {
        for (let i = 0; i < 25; i++) await step(store, next, manifests);
        const usage = await kept(store);
        const count = await counted(store);
        expect({ ...usage, namespaces: usage.namespaces.filter((n) => n.repositories > 0).map(({ quota: _, ...n }) => n) }).toEqual(count);
        expect((await store.check()).problems).toEqual([]);
      }
    });

    it('lists each namespace with its repositories and quota, a quota without repositories too, and one namespace with its repositories', async () => {
      const [a, b] = BLOBS;
      await store.linkBlob('acme/app', a);
      await store.linkBlob('acme/web', a);
      await store.linkBlob('acme/web', b);
      await store.linkBlob('acme', b);
      await store.linkBlob('gamma', a);
      expect(await store.usage()).toEqual({
        total: { blobs: 2, bytes: a.size + b.size },
        namespaces: [
          { namespace: 'acme', bytes: a.size + b.size, repositories: 3 },
          { namespace: 'delta', bytes: 0, repositories: 0, quota: 10 },
          { namespace: 'gamma', bytes: a.size, repositories: 1, quota: 1_000_000 },
        ],
      });
      expect(await store.usage({ namespace: 'acme' })).toEqual({
        total: { blobs: 2, bytes: a.size + b.size },
        namespaces: [{ namespace: 'acme', bytes: a.size + b.size, repositories: 3 }],
      });
      expect(await store.usage({ namespace: 'acme', repositories: true })).toEqual({
        total: { blobs: 2, bytes: a.size + b.size },
        namespaces: [{ namespace: 'acme', bytes: a.size + b.size, repositories: 3 }],
        repositories: [
          { repository: 'acme', bytes: b.size },
          { repository: 'acme/app', bytes: a.size },
          { repository: 'acme/web', bytes: a.size + b.size },
        ],
      });
      expect(await store.usage({ namespace: 'none', repositories: true })).toMatchObject({ namespaces: [{ namespace: 'none', bytes: 0, repositories: 0 }], repositories: [] });
      expect((await rejection(store.usage({ namespace: 'acme/app' }))).code).toBe('NAME_INVALID');
    });
  });

  describe('quotas', () => {
    const [a, b, c] = BLOBS; // 100, 201 and 302 bytes
    const store = storePerTest(backend, { policy: { quotas: [{ namespace: 'acme', maxSize: a.size + b.size }] } });

    it('reports the policy it enforces', () => {
      expect(store.policy).toEqual({ quotas: [{ namespace: 'acme', maxSize: a.size + b.size }] });
    });

    it('refuses a link that would take the namespace over its quota with DENIED, its numbers given, running no place and changing nothing', async () => {
      await store.linkBlob('acme/app', a);
      await store.linkBlob('acme/web', b);
      const before = await store.usage({ namespace: 'acme' });
      let placed = false;
      const error = await rejection(store.linkBlob('acme/app', c, undefined, { place: () => void (placed = true) }));
      expect(error.code).toBe('DENIED');
      expect(error.detail).toEqual({ namespace: 'acme', usage: a.size + b.size, limit: a.size + b.size, size: c.size });
      expect(error.message).toMatch(/namespace acme/);
      expect(placed).toBe(false);
      expect((await rejection(store.statBlob('acme/app', c.digest))).code).toBe('BLOB_UNKNOWN');
      expect(await store.usage({ namespace: 'acme' })).toEqual(before);
      expect((await store.allBlobs()).map((x) => x.digest)).not.toContain(c.digest);
    });

    it('lets a blob the namespace already has in, at its limit, costing nothing; another namespace is not bound', async () => {
      await store.linkBlob('acme/app', a);
      await store.linkBlob('acme/app', b);
      await store.linkBlob('acme/web', a);
      await store.linkBlob('acme', b);
      await store.linkBlob('other/app', c);
      await store.linkBlob('other/app', a);
      expect((await store.usage({ namespace: 'acme' })).namespaces[0]).toEqual({ namespace: 'acme', bytes: a.size + b.size, repositories: 3, quota: a.size + b.size });
    });

    it('refuses a mount over the quota, and takes one of a blob the namespace has', async () => {
      await store.linkBlob('other/app', c);
      await store.linkBlob('other/app', a);
      await store.linkBlob('acme/app', a);
      await store.linkBlob('acme/app', b);
      expect((await rejection(store.mountBlob('acme/web', c.digest, 'other/app'))).code).toBe('DENIED');
      expect(await store.catalog()).toEqual(['acme/app', 'other/app']);
      await store.mountBlob('acme/web', a.digest, 'other/app');
      expect((await store.statBlob('acme/web', a.digest)).size).toBe(a.size);
    });

    it('checks early as a link would: a blob another repository of the namespace has costs nothing, at the limit', async () => {
      await store.linkBlob('acme/a', a);
      await store.linkBlob('acme/a', b);
      await store.checkQuota('acme/b', { size: b.size, digest: b.digest });
      await store.checkQuota('acme/new', { size: a.size, digest: a.digest });
      await store.checkQuota('other/app', { size: 1_000_000 });
      const error = await rejection(store.checkQuota('acme/b', { size: c.size, digest: c.digest }));
      expect([error.code, error.detail]).toEqual(['DENIED', { namespace: 'acme', usage: a.size + b.size, limit: a.size + b.size, size: c.size }]);
      expect((await rejection(store.checkQuota('acme/b', { size: 1 }))).code).toBe('DENIED');
      expect((await rejection(store.checkQuota('acme/b', { size: -1 }))).code).toBe('SIZE_INVALID');
      expect((await rejection(store.checkQuota('acme/b', { size: 1, digest: 'sha256:x' }))).code).toBe('DIGEST_INVALID');
      expect((await rejection(store.checkQuota('Acme', { size: 1 }))).code).toBe('NAME_INVALID');
      expect(await store.catalog()).toEqual(['acme/a']);
    });

    it('makes room when a blob goes: an unlink of its last link in the namespace', async () => {
      await store.linkBlob('acme/app', a);
      await store.linkBlob('acme/web', a);
      await store.linkBlob('acme/app', b);
      await store.unlinkBlob('acme/app', a.digest);
      expect((await rejection(store.linkBlob('acme/app', c))).code).toBe('DENIED');
      await store.unlinkBlob('acme/web', a.digest);
      await store.linkBlob('acme', { digest: blobDigest('small'), size: a.size });
      expect((await store.usage({ namespace: 'acme' })).namespaces[0].bytes).toBe(a.size + b.size);
    });
  });
});

describe('a store policy', () => {
  it.each(backends)('$name: an invalid one is refused at open with ARGUMENT_INVALID', async (backend) => {
    for (const policy of [
      { quotas: [{ namespace: 'acme/app', maxSize: 1 }] },
      { quotas: [{ namespace: 'acme', maxSize: -1 }] },
      { quotas: [{ namespace: 'acme', maxSize: 1 }, { namespace: 'acme', maxSize: 2 }] },
      { quotas: 'acme' },
    ]) {
      const error = await rejection(backend.open({ policy: policy as never }));
      expect(error.code).toBe('ARGUMENT_INVALID');
    }
  });
});
