// Pulls on every backend: the pull counts and last pulls of manifests and
// tags and the last pull of each repository, recorded in batches that add
// up (as replicas' would), their PULL events, and a namespace's
// repositories with what they link (what regmeta gc's eviction weighs).

import { afterEach, describe, expect, it } from 'vitest';
import type { Store } from 'regmeta';
import { blobDigest, codeOf, eventsOf, ociManifest } from '../fixtures.js';
import { backends, storePerTest, type Opened } from './backends.js';

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

    it('refuses a batch that is not an array of { repo, digest?, tag?, at: a valid Date, count? }, recording none of it', async () => {
      await store.linkBlob('hub/a', blob('a', 1));
      const ok = { repo: 'hub/a', at: at(1) };
      const bad: unknown[] = [
        undefined,
        'hub/a',
        [ok, null],
        [ok, { repo: 'hub/a', at: Date.now() }],
        [{ repo: 'hub/a', at: new Date(NaN) }],
        [ok, { ...ok, count: -1 }],
        [ok, { ...ok, count: 1.5 }],
        [ok, { ...ok, count: '2' }],
      ];
      for (const pulls of bad) expect(await codeOf(store.recordPulls(pulls as never))).toBe('ARGUMENT_INVALID');
      for (const options of [null, 'events', { events: 'yes' }]) expect(await codeOf(store.recordPulls([ok], options as never))).toBe('ARGUMENT_INVALID');
      expect(await codeOf(store.recordPulls([ok, { repo: 'Hub/A', at: at(1) }]))).toBe('NAME_INVALID');
      expect(await codeOf(store.recordPulls([ok, { ...ok, digest: 'sha256:nope' }]))).toBe('DIGEST_INVALID');
      expect(await codeOf(store.recordPulls([ok, { ...ok, tag: '-v1' }]))).toBe('TAG_INVALID');
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

/** A repository's last pull, as gc's eviction reads it. */
async function lastPull(store: Store, repo: string): Promise<Date | undefined> {
  return (await store.namespaceUsage(repo.slice(0, repo.indexOf('/')))).find((r) => r.name === repo)?.pulledAt;
}

/** The pull statistics of a repository's manifests and tags, read from the database itself (the store writes them for others to read). */
async function statsOf(opened: Opened, repo: string) {
  const rows = (table: string, key: string) =>
    opened.query(`
      SELECT x.${key} AS "key", x.pull_count AS "count", x.pulled_at AS "at"
      FROM ${table} x JOIN repository r ON r.id = x.repository_id
      WHERE r.name = '${repo}' ORDER BY x.${key}`);
  const pairs = (list: Record<string, unknown>[]) => Object.fromEntries(list.map((r) => [r.key, { count: r.count, at: r.at }]));
  return { manifests: pairs(await rows('manifest', 'digest')), tags: pairs(await rows('tag', 'name')) };
}

describe.each(backends)('$name: pull statistics', (backend) => {
  let opened: Opened | undefined;
  afterEach(async () => {
    await opened?.cleanup();
    opened = undefined;
  });

  /** A repository `hub/a` with manifests m1 (tagged v1 and latest) and m2 (tagged v2). */
  async function seeded(): Promise<{ store: Store; m1: string; m2: string }> {
    opened = await backend.open({ shared: true });
    const { store } = opened;
    const [m1, m2] = [ociManifest({ seed: 'one' }), ociManifest({ seed: 'two' })];
    await store.putManifest('hub/a', m1.digest, m1, { actor: 'alice' }, { tag: 'v1' });
    await store.putTag('hub/a', 'latest', { digest: m1.digest }, { actor: 'alice' });
    await store.putManifest('hub/a', m2.digest, m2, { actor: 'alice' }, { tag: 'v2' });
    return { store, m1: m1.digest, m2: m2.digest };
  }

  it('adds each entry\'s count to its manifest and its tag, and keeps the latest time of each and of the repository', async () => {
    const { store, m1, m2 } = await seeded();
    expect(await statsOf(opened!, 'hub/a')).toEqual({
      manifests: { [m1]: { count: 0, at: null }, [m2]: { count: 0, at: null } },
      tags: { latest: { count: 0, at: null }, v1: { count: 0, at: null }, v2: { count: 0, at: null } },
    });
    const recorded = await store.recordPulls([
      { repo: 'hub/a', digest: m1, tag: 'v1', at: at(20), count: 3 },
      { repo: 'hub/a', digest: m1, at: at(10) },
      // A HEAD by tag: the tag alone.
      { repo: 'hub/a', tag: 'latest', at: at(5), count: 2 },
      { repo: 'hub/a', digest: m1, tag: 'v1', at: at(15), count: 4 },
    ]);
    expect(recorded).toBe(1);
    const stats = await statsOf(opened!, 'hub/a');
    expect(stats.manifests).toEqual({ [m1]: { count: 8, at: at(20).getTime() }, [m2]: { count: 0, at: null } });
    expect(stats.tags).toEqual({ latest: { count: 2, at: at(5).getTime() }, v1: { count: 7, at: at(20).getTime() }, v2: { count: 0, at: null } });
    expect(await lastPull(store, 'hub/a')).toEqual(at(20));
    // An older batch adds its counts and leaves the later times; a count of 0 marks a time alone.
    await store.recordPulls([{ repo: 'hub/a', digest: m1, tag: 'v1', at: at(1) }, { repo: 'hub/a', digest: m2, tag: 'v2', at: at(30), count: 0 }]);
    const again = await statsOf(opened!, 'hub/a');
    expect(again.manifests).toEqual({ [m1]: { count: 9, at: at(20).getTime() }, [m2]: { count: 0, at: at(30).getTime() } });
    expect(again.tags.v1).toEqual({ count: 8, at: at(20).getTime() });
    expect(again.tags.v2).toEqual({ count: 0, at: at(30).getTime() });
    expect(await lastPull(store, 'hub/a')).toEqual(at(30));
  });

  it('adds the batches of two stores on one database, as two replicas\' would, at once or one after the other', async () => {
    const { store, m1 } = await seeded();
    const other = await opened!.connect();
    const batch = (count: number) => [{ repo: 'hub/a', digest: m1, tag: 'v1', at: at(count), count }];
    await store.recordPulls(batch(5));
    await other.recordPulls(batch(7));
    await Promise.all([store.recordPulls(batch(11)), other.recordPulls(batch(13)), store.recordPulls(batch(17)), other.recordPulls(batch(19))]);
    const stats = await statsOf(opened!, 'hub/a');
    expect(stats.manifests[m1]).toEqual({ count: 5 + 7 + 11 + 13 + 17 + 19, at: at(19).getTime() });
    expect(stats.tags.v1).toEqual({ count: 5 + 7 + 11 + 13 + 17 + 19, at: at(19).getTime() });
  });

  it('runs beside pushes, tag moves and deletes of the same rows, from another store, failing none of them', async () => {
    const { store, m1, m2 } = await seeded();
    const other = await opened!.connect();
    let pulls = 0;
    let previous: string | undefined;
    for (let i = 0; i < 20; i++) {
      const m = ociManifest({ seed: `more ${i}` });
      await other.putManifest('hub/a', m.digest, m, { actor: 'alice' }, { tag: 'new' });
      await Promise.all([
        store.recordPulls([
          { repo: 'hub/a', digest: m1, tag: 'v1', at: at(i) },
          { repo: 'hub/a', digest: m2, tag: 'latest', at: at(i) },
          { repo: 'hub/a', tag: 'v2', at: at(i) },
          { repo: 'hub/a', digest: m.digest, tag: 'new', at: at(i) },
          ...(previous === undefined ? [] : [{ repo: 'hub/a', digest: previous, at: at(i) }]),
        ]),
        other.putTag('hub/a', 'latest', { digest: i % 2 === 0 ? m2 : m1 }, { actor: 'alice' }),
        other.putTag('hub/a', 'v2', { digest: i % 2 === 0 ? m1 : m2 }, { actor: 'alice' }),
        // Untagged since the tag moved on: deleted while its pull is written.
        previous === undefined ? undefined : other.deleteManifest('hub/a', previous, { actor: 'alice' }),
      ]);
      previous = m.digest;
      pulls++;
    }
    const stats = await statsOf(opened!, 'hub/a');
    expect(stats.manifests[m1].count).toBe(pulls);
    expect(stats.tags.v1.count).toBe(pulls);
  });

  it('skips a manifest, a tag or a repository deleted since, recording the rest of the batch', async () => {
    const { store, m1, m2 } = await seeded();
    await store.deleteTag('hub/a', 'latest', { actor: 'alice' });
    await store.deleteManifest('hub/a', m2, { actor: 'alice' });
    const recorded = await store.recordPulls([
      { repo: 'hub/a', digest: m2, tag: 'v2', at: at(1), count: 5 },
      { repo: 'hub/a', tag: 'latest', at: at(1), count: 5 },
      { repo: 'hub/gone', digest: m1, tag: 'v1', at: at(1), count: 5 },
      { repo: 'hub/a', digest: m1, tag: 'v1', at: at(2), count: 1 },
    ]);
    expect(recorded).toBe(1);
    expect(await statsOf(opened!, 'hub/a')).toEqual({ manifests: { [m1]: { count: 1, at: at(2).getTime() } }, tags: { v1: { count: 1, at: at(2).getTime() } } });
    // Pushed again, a manifest starts unpulled.
    const two = ociManifest({ seed: 'two' });
    await store.putManifest('hub/a', two.digest, two, { actor: 'alice' }, { tag: 'v2' });
    expect((await statsOf(opened!, 'hub/a')).manifests[m2]).toEqual({ count: 0, at: null });
  });

  it('writes a PULL event per entry that found its manifest or tag, with its count, when asked to, and none otherwise', async () => {
    const { store, m1, m2 } = await seeded();
    const before = (await eventsOf(store)).length;
    await store.recordPulls([{ repo: 'hub/a', digest: m1, tag: 'v1', at: at(1), count: 2 }]);
    expect(await eventsOf(store)).toHaveLength(before);
    await store.deleteManifest('hub/a', m2, { actor: 'alice' });
    const deleted = (await eventsOf(store)).length;
    await store.recordPulls(
      [
        { repo: 'hub/a', digest: m1, tag: 'v1', at: at(2), count: 3 },
        { repo: 'hub/a', digest: m1, at: at(2), count: 4 },
        { repo: 'hub/a', tag: 'latest', at: at(2), count: 5 },
        { repo: 'hub/a', digest: m1, tag: 'v1', at: at(3), count: 6 },
        // Gone, or no manifest or tag: no event.
        { repo: 'hub/a', digest: m2, tag: 'v2', at: at(2) },
        { repo: 'hub/gone', digest: m1, at: at(2) },
        { repo: 'hub/a', at: at(2) },
        // A time alone: no pull to tell of.
        { repo: 'hub/a', tag: 'v1', at: at(2), count: 0 },
      ],
      { events: true },
    );
    const events = (await eventsOf(store)).slice(deleted);
    const object = { type: 'MANIFEST', id: `hub/a@${m1}` };
    expect(events.map(({ type, actor, object, repository, digest, tag, count }) => ({ type, actor, object, repository, digest, tag, count }))).toEqual([
      { type: 'PULL', actor: '', object, repository: 'hub/a', digest: m1, tag: 'v1', count: 9 },
      { type: 'PULL', actor: '', object, repository: 'hub/a', digest: m1, tag: undefined, count: 4 },
      // The tag's manifest, for a tag resolved alone.
      { type: 'PULL', actor: '', object, repository: 'hub/a', digest: m1, tag: 'latest', count: 5 },
    ]);
    expect((await store.getEvents({ type: 'PULL' })).events).toHaveLength(3);
  });

  it('refuses a bad entry among good ones, changing nothing', async () => {
    const { store, m1 } = await seeded();
    const good = { repo: 'hub/a', digest: m1, tag: 'v1', at: at(1) };
    const before = await statsOf(opened!, 'hub/a');
    const events = (await eventsOf(store)).length;
    for (const bad of [{ ...good, count: -1 }, { ...good, digest: 'sha256:x' }, { ...good, at: 'yesterday' }]) {
      await expect(store.recordPulls([good, bad as never], { events: true })).rejects.toMatchObject({ code: expect.stringMatching(/ARGUMENT_INVALID|DIGEST_INVALID/) });
    }
    expect(await statsOf(opened!, 'hub/a')).toEqual(before);
    expect(await eventsOf(store)).toHaveLength(events);
    expect(await lastPull(store, 'hub/a')).toBeUndefined();
  });
});
