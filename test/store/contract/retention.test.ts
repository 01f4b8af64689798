// Retention's store methods: repositoryLinks (what a plan weighs), and the
// conditional deletes retireTags and retireManifests, which skip whatever
// changed since the plan and never take what a tag, an index or a subject
// keeps. On every backend.

import { describe, expect, it } from 'vitest';
import type { Store, TagToRetire } from 'regmeta';
import { absentManifest, codeOf, eventsOf, ociIndex, ociManifest, putBuiltAsync, snapshot, tickPast, type Built } from '../fixtures.js';
import { backends, storePerTest } from './backends.js';

const repo = 'acme/app';
const RETENTION = { actor: 'retention' };
const future = () => new Date(Date.now() + 60_000);

/** A tag as a plan would have read it: its target, when it was set and when its manifest was pushed. */
async function planned(store: Store, tag: string): Promise<TagToRetire> {
  const links = await store.repositoryLinks(repo);
  const { digest, updatedAt } = links.tags.find((t) => t.tag === tag)!;
  const { pushedAt } = links.manifests.find((m) => m.digest === digest)!;
  return { tag, digest, updatedAt, pushedAt, reason: 'not kept' };
}

describe.each(backends)('$name', (backend) => {
  const store = storePerTest(backend, { policy: { immutable: [{ repositories: 'acme/*', tags: ['release-*'] }] } });
  const put = (m: Built, tag?: string) => store.putManifest(repo, m.digest, m, undefined, tag === undefined ? {} : { tag });

  describe('repositoryLinks', () => {
    it('lists each tag with its target and when it was set', async () => {
      const a = ociManifest({ seed: 'a' });
      const b = ociManifest({ seed: 'b' });
      await put(a, 'one');
      await put(b, 'two');
      const [{ taggedAt }] = await store.tagHistory(repo, 'two');
      tickPast(taggedAt.getTime());
      await store.putTag(repo, 'two', { digest: a.digest });
      const [{ taggedAt: moved }] = await store.tagHistory(repo, 'two');
      const { tags } = await store.repositoryLinks(repo);
      expect(tags.sort((x, y) => (x.tag < y.tag ? -1 : 1))).toEqual([
        { tag: 'one', digest: a.digest, updatedAt: (await store.tagHistory(repo, 'one'))[0].taggedAt },
        { tag: 'two', digest: a.digest, updatedAt: moved },
      ]);
    });

    it('lists each manifest with its last push, its subject and its children', async () => {
      const a = ociManifest({ seed: 'a' });
      const b = ociManifest({ seed: 'b' });
      const absent = absentManifest('gone');
      const index = ociIndex([a.descriptor, b.descriptor, absent]);
      const sig = ociManifest({ seed: 'sig', subject: index.descriptor, artifactType: 'application/example' });
      for (const m of [a, b, index, sig]) await put(m);
      const links = (await store.repositoryLinks(repo)).manifests;
      const byDigest = new Map(links.map((l) => [l.digest, l]));
      expect(links).toHaveLength(4);
      expect(byDigest.get(index.digest)!.children.sort()).toEqual([a.digest, b.digest, absent.digest].sort());
      expect(byDigest.get(a.digest)!.children).toEqual([]);
      expect(byDigest.get(sig.digest)!.subject).toBe(index.digest);
      expect(byDigest.get(a.digest)!.subject).toBeUndefined();
      expect(byDigest.get(a.digest)!.pushedAt).toBeInstanceOf(Date);
    });

    it('has none for a repository that is not there', async () => {
      expect(await store.repositoryLinks('no/such')).toEqual({ tags: [], manifests: [] });
    });
  });

  describe('retireTags', () => {
    it('deletes the tags as planned, not their manifests, with a DELETE TAG event by the actor each', async () => {
      const m = ociManifest({ seed: 'one' });
      await put(m, 'v1');
      await store.putTag(repo, 'v1-alias', { digest: m.digest });
      const plan = [await planned(store, 'v1'), await planned(store, 'v1-alias')];
      expect(await store.retireTags(repo, plan, RETENTION)).toEqual(['v1', 'v1-alias']);
      expect(await store.allTags(repo)).toEqual([]);
      expect((await store.statManifest(repo, m.digest)).digest).toBe(m.digest);
      const deletes = (await eventsOf(store)).filter((e) => e.type === 'DELETE');
      expect(deletes.map((e) => [e.actor, e.object.type, e.tag, e.digest, e.reason])).toEqual([
        ['retention', 'TAG', 'v1', m.digest, 'not kept'],
        ['retention', 'TAG', 'v1-alias', m.digest, 'not kept'],
      ]);
    });

    it('keeps a tag moved since the plan, and one moved away and back', async () => {
      const one = ociManifest({ seed: 'one' });
      const two = ociManifest({ seed: 'two' });
      await put(one, 'moved');
      await put(one, 'back');
      await put(two);
      const plan = [await planned(store, 'moved'), await planned(store, 'back')];
      await store.putTag(repo, 'moved', { digest: two.digest });
      tickPast(plan[1].updatedAt.getTime());
      await store.putTag(repo, 'back', { digest: two.digest });
      tickPast(Date.now());
      await store.putTag(repo, 'back', { digest: one.digest });
      expect(await store.retireTags(repo, plan, RETENTION)).toEqual([]);
      expect(await store.allTags(repo)).toEqual(['back', 'moved']);
    });

    it('keeps a tag whose manifest was pushed again since the plan', async () => {
      const m = ociManifest({ seed: 'again' });
      await put(m, 'latest');
      const plan = [await planned(store, 'latest')];
      tickPast(plan[0].pushedAt.getTime());
      await put(m, 'latest');
      expect(await store.retireTags(repo, plan, RETENTION)).toEqual([]);
      expect(await store.allTags(repo)).toEqual(['latest']);
    });

    it('never deletes an immutable tag', async () => {
      const m = ociManifest({ seed: 'rel' });
      await put(m, 'release-1');
      await store.putTag(repo, 'dev', { digest: m.digest });
      const plan = [await planned(store, 'release-1'), await planned(store, 'dev')];
      expect(await store.retireTags(repo, plan, RETENTION)).toEqual(['dev']);
      expect(await store.allTags(repo)).toEqual(['release-1']);
    });

    it('skips a tag or a repository that is gone', async () => {
      const m = ociManifest({ seed: 'x' });
      await put(m, 'a');
      const plan = await planned(store, 'a');
      expect(await store.retireTags(repo, [{ ...plan, tag: 'never' }], RETENTION)).toEqual([]);
      expect(await store.retireTags('other/repo', [plan], RETENTION)).toEqual([]);
      expect(await store.retireTags(repo, [], RETENTION)).toEqual([]);
      expect(await store.allTags(repo)).toEqual(['a']);
    });

    it('refuses bad entries and more than a batch, changing nothing', async () => {
      const m = ociManifest({ seed: 'x' });
      await put(m, 'a');
      const plan = await planned(store, 'a');
      const before = await snapshot(store);
      expect(await codeOf(store.retireTags(repo, [{ ...plan, updatedAt: 'yesterday' as unknown as Date }]))).toBe('ARGUMENT_INVALID');
      expect(await codeOf(store.retireTags(repo, [{ ...plan, tag: '-bad' }]))).toBe('TAG_INVALID');
      expect(await codeOf(store.retireTags(repo, [plan, { ...plan, digest: 'sha256:nope' }]))).toBe('DIGEST_INVALID');
      expect(await codeOf(store.retireTags(repo, Array.from({ length: 10_001 }, () => plan)))).toBe('ARGUMENT_INVALID');
      expect(await codeOf(store.retireTags(repo, 'a' as unknown as TagToRetire[]))).toBe('ARGUMENT_INVALID');
      expect(await snapshot(store)).toEqual(before);
    });
  });

  describe('retireManifests', () => {
    it('deletes untagged manifests past the grace, with a DELETE MANIFEST event by the actor each', async () => {
      const m = ociManifest({ seed: 'old' });
      await put(m);
      expect(await store.retireManifests(repo, [{ digest: m.digest, reason: 'untagged' }], RETENTION, { olderThan: future() })).toEqual([m.digest]);
      expect(await codeOf(store.statManifest(repo, m.digest))).toBe('MANIFEST_UNKNOWN');
      const deletes = (await eventsOf(store)).filter((e) => e.type === 'DELETE');
      expect(deletes.map((e) => [e.actor, e.object.type, e.digest, e.reason])).toEqual([['retention', 'MANIFEST', m.digest, 'untagged']]);
    });

    it('keeps what a tag, an index, a present subject or the grace keeps, without error', async () => {
      const tagged = ociManifest({ seed: 'tagged' });
      const child = ociManifest({ seed: 'child' });
      const index = ociIndex([child.descriptor]);
      const referrer = ociManifest({ seed: 'sig', subject: tagged.descriptor, artifactType: 'application/example' });
      const fresh = ociManifest({ seed: 'fresh' });
      await put(tagged, 'v1');
      await put(child);
      await put(index, 'multi');
      await put(referrer);
      const olderThan = future();
      await put(fresh);
      const entries = [tagged, child, referrer].map((m) => ({ digest: m.digest }));
      expect(await store.retireManifests(repo, entries, RETENTION, { olderThan })).toEqual([]);
      expect(await store.retireManifests(repo, [{ digest: fresh.digest }], RETENTION, { olderThan: new Date(Date.now() - 60_000) })).toEqual([]);
      expect((await store.repositoryLinks(repo)).manifests.length).toBe(5);
    });

    it('deletes what deleting another of the list frees, in any order given: children, then referrers', async () => {
      const child = ociManifest({ seed: 'child' });
      const index = ociIndex([child.descriptor]);
      const referrer = ociManifest({ seed: 'sig', subject: index.descriptor, artifactType: 'application/example' });
      for (const m of [child, index, referrer]) await put(m);
      const entries = [referrer, child, index].map((m) => ({ digest: m.digest }));
      const deleted = await store.retireManifests(repo, entries, RETENTION, { olderThan: future() });
      expect(deleted[0]).toBe(index.digest);
      expect(deleted.slice(1).sort()).toEqual([child.digest, referrer.digest].sort());
      expect((await store.repositoryLinks(repo)).manifests).toEqual([]);
    });

    it('refuses a missing olderThan and bad digests, changing nothing', async () => {
      const m = ociManifest({ seed: 'x' });
      await put(m);
      const before = await snapshot(store);
      expect(await codeOf(store.retireManifests(repo, [{ digest: m.digest }], RETENTION, undefined as unknown as { olderThan: Date }))).toBe('ARGUMENT_INVALID');
      expect(await codeOf(store.retireManifests(repo, [{ digest: 'md5:x' }], RETENTION, { olderThan: future() }))).toBe('DIGEST_INVALID');
      expect(await snapshot(store)).toEqual(before);
    });
  });
});
