// Retention on a real store, on every backend: each keep condition, the
// first rule that matches, and on a seeded registry of 10,000 tags with
// indexes, referrers and immutable tags, a dry run that lists exactly what
// the apply deletes, nothing an index, a subject or a kept tag needs
// removed, every deletion an event by `retention`, and a tag moved or pushed
// again between the plan and the apply left alone.

import { describe, expect, it } from 'vitest';
import type { Event, ImmutableRule, RepositoryLinks, Store } from 'regmeta';
import { applyPlan, applyRetention, deletionsOf, type RetentionDeletion } from '../../src/store/retention.js';
import { planRetention } from '../../src/store/retention-plan.js';
import type { RetentionRule } from '../../src/store/retention-rules.js';
import { ociIndex, ociManifest, tickPast, type Built } from './fixtures.js';
import { backends, storePerTest } from './contract/backends.js';

const HOUR = 3_600_000;

async function put(store: Store, repo: string, m: Built, tag?: string): Promise<Built> {
  await store.putManifest(repo, m.digest, m, undefined, tag === undefined ? {} : { tag });
  return m;
}

/** Runs `fns` with at most `width` in flight: a PostgreSQL store takes many at once. */
async function inParallel(fns: (() => Promise<unknown>)[], width = 16): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < fns.length) await fns[next++]();
  }));
}

async function retentionEvents(store: Store): Promise<Event[]> {
  const events: Event[] = [];
  let page: string | undefined;
  do {
    const result = await store.getEvents({ actor: 'retention', perPage: 1000, page });
    events.push(...result.events);
    page = result.next;
  } while (page !== undefined);
  return events;
}

const key = (d: RetentionDeletion) => (d.tag === undefined ? `${d.repository}@${d.digest}` : `${d.repository}:${d.tag}`);

/**
 * One repository of the seeded registry: 100 images with two tags each
 * (b-N, and v1.N or c-N), every tenth b-N on an index of two untagged
 * children instead, a signature (untagged) of every seventh image, and five
 * untagged images.
 */
function seedRepository(store: Store, repo: string): (() => Promise<unknown>)[] {
  const work: (() => Promise<unknown>)[] = [];
  for (let i = 0; i < 100; i++) {
    const image = ociManifest({ seed: `${repo}/${i}` });
    const second = i % 10 === 1 ? `v1.${i}` : `c-${i}`;
    const signature = i % 7 === 0 ? ociManifest({ seed: `${repo}/${i}/sig`, subject: image.descriptor, artifactType: 'application/vnd.example.sig' }) : undefined;
    if (i % 10 === 0) {
      const children = [ociManifest({ seed: `${repo}/${i}/amd64` }), ociManifest({ seed: `${repo}/${i}/arm64` })];
      const index = ociIndex(children.map((c) => c.descriptor));
      work.push(async () => {
        for (const child of children) await put(store, repo, child);
        await put(store, repo, index, `b-${i}`);
        await put(store, repo, image, second);
        if (signature) await put(store, repo, signature);
      });
    } else {
      work.push(async () => {
        await put(store, repo, image, `b-${i}`);
        await store.putTag(repo, second, { digest: image.digest });
        if (signature) await put(store, repo, signature);
      });
    }
  }
  for (let i = 0; i < 5; i++) work.push(() => put(store, repo, ociManifest({ seed: `${repo}/orphan/${i}` })));
  return work;
}

const IMMUTABLE: ImmutableRule[] = [{ repositories: 'rel/*', tags: ['v*'] }];

describe.each(backends)('$name', (backend) => {
  // rel/*'s v* tags are immutable: the store's policy, which retention keeps to.
  const store = storePerTest(backend, { policy: { immutable: IMMUTABLE } });

  it('keeps by each condition, by the first rule that matches, and leaves alone what no rule matches', async () => {
    for (const repo of ['acme/app', 'acme/tools', 'other/app']) {
      for (const tag of ['dev-1', 'dev-2', 'v1', 'latest', 'dev-3']) {
        await put(store, repo, ociManifest({ seed: `${repo}/${tag}` }), tag);
        tickPast(Date.now());
      }
      await put(store, repo, ociManifest({ seed: `${repo}/untagged` }));
    }
    tickPast(Date.now());
    const now = new Date(Date.now() + HOUR);
    const rules: RetentionRule[] = [
      { repositories: 'acme/app', keep: { newest: 2, tags: ['v*'], untaggedGrace: 0 } },
      { repositories: 'acme/*', keep: { pushedWithin: 2 * HOUR } },
    ];
    const result = await applyRetention(store, rules, { now });
    expect(result.tags.map(key).sort()).toEqual(['acme/app:dev-1', 'acme/app:dev-2']);
    // acme/app's untagged manifests go after a grace of 0; acme/tools keeps its for the default day.
    const removed = result.manifests.map((m) => m.repository);
    expect(removed).toEqual(['acme/app', 'acme/app', 'acme/app']);
    expect(await store.allTags('acme/app')).toEqual(['dev-3', 'latest', 'v1']);
    expect(await store.allTags('acme/tools')).toHaveLength(5);
    expect(await store.allTags('other/app')).toHaveLength(5);
    expect((await store.repositoryLinks('other/app')).manifests).toHaveLength(6);
  });

  it('keeps what was pulled within pulledWithin, by tag or its manifest by digest, as recordPulls wrote it', async () => {
    const repo = 'acme/app';
    const byTag = await put(store, repo, ociManifest({ seed: 'by-tag' }), 'pulled-by-tag');
    const byDigest = await put(store, repo, ociManifest({ seed: 'by-digest' }), 'pulled-by-digest');
    await put(store, repo, ociManifest({ seed: 'long-ago' }), 'pulled-long-ago');
    await put(store, repo, ociManifest({ seed: 'never' }), 'never-pulled');
    const now = Date.now() + HOUR;
    await store.recordPulls([
      { repo, tag: 'pulled-by-tag', digest: byTag.digest, at: new Date(now - 2 * HOUR) },
      { repo, digest: byDigest.digest, at: new Date(now - 3 * HOUR) },
      { repo, tag: 'pulled-long-ago', at: new Date(now - 48 * HOUR) },
    ]);
    const result = await applyRetention(store, [{ repositories: 'acme/*', keep: { pulledWithin: 24 * HOUR } }], { now: new Date(now) });
    expect(result.tags.map((t) => `${t.tag}: ${t.reason}`).sort()).toEqual(['never-pulled: never pulled', 'pulled-long-ago: pulled 2d ago']);
    expect(await store.allTags(repo)).toEqual(['pulled-by-digest', 'pulled-by-tag']);
  });

  it('on 10,000 tags with indexes, referrers and immutable tags: the dry run lists what the apply deletes, and nothing needed goes', async () => {
    const repos = [
      ...Array.from({ length: 40 }, (_, i) => `acme/app-${i}`),
      ...Array.from({ length: 5 }, (_, i) => `rel/lib-${i}`),
      ...Array.from({ length: 5 }, (_, i) => `other/x-${i}`),
    ];
    await inParallel(repos.flatMap((repo) => seedRepository(store, repo)));
    const before = new Map<string, RepositoryLinks>();
    for (const repo of repos) before.set(repo, await store.repositoryLinks(repo));
    expect([...before.values()].reduce((n, l) => n + l.tags.length, 0)).toBe(10_000);
    tickPast(Date.now());

    const rules: RetentionRule[] = [
      { repositories: 'acme/*', keep: { newest: 3, tags: ['c-1?'], untaggedGrace: 0 } },
      { repositories: 'rel/**', keep: { newest: 1, untaggedGrace: 0 } },
    ];
    const now = new Date();
    const dry = deletionsOf(await planRetention(store, rules, { now }));
    const result = await applyRetention(store, rules, { now });
    expect(result.skipped).toBe(0);
    expect(result.tags.map(key).sort()).toEqual(dry.tags.map(key).sort());
    expect(result.manifests.map(key).sort()).toEqual(dry.manifests.map(key).sort());
    expect(result.tags.length).toBeGreaterThan(8000);
    expect(result.manifests.length).toBeGreaterThan(5000);

    const deletedTags = new Set(result.tags.map(key));
    const deletedManifests = new Set(result.manifests.map(key));
    for (const repo of repos) {
      const was = before.get(repo)!;
      const now = await store.repositoryLinks(repo);
      const present = new Set(now.manifests.map((m) => m.digest));
      // Every tag not deleted is there, on the manifest it had.
      const kept = was.tags.filter((t) => !deletedTags.has(`${repo}:${t.tag}`));
      expect(now.tags.map((t) => `${t.tag}@${t.digest}`).sort()).toEqual(kept.map((t) => `${t.tag}@${t.digest}`).sort());
      for (const t of now.tags) expect(present.has(t.digest)).toBe(true);
      // Every present index has its children; every present subject its referrers.
      for (const m of now.manifests) for (const child of m.children) expect(present.has(child) || !was.manifests.some((w) => w.digest === child)).toBe(true);
      for (const m of was.manifests) if (m.subject !== undefined && present.has(m.subject)) expect(present.has(m.digest)).toBe(true);
      // Exactly the manifests deleted are gone.
      const gone = was.manifests.filter((m) => !present.has(m.digest)).map((m) => `${repo}@${m.digest}`);
      expect(gone.sort()).toEqual([...deletedManifests].filter((k) => k.startsWith(`${repo}@`)).sort());
      if (repo.startsWith('rel/')) for (const t of was.tags.filter((t) => t.tag.startsWith('v'))) expect(now.tags.some((n) => n.tag === t.tag)).toBe(true);
      if (repo.startsWith('other/')) expect(now).toEqual(was);
    }

    const events = await retentionEvents(store);
    const evented = events.map((e) => (e.object.type === 'TAG' ? `${e.repository}:${e.tag}` : `${e.repository}@${e.digest}`));
    expect(events.every((e) => e.type === 'DELETE' && e.reason !== undefined && e.reason !== '')).toBe(true);
    expect(evented.sort()).toEqual([...deletedTags, ...deletedManifests].sort());
  }, 300_000);

  it('stops between batches when its signal aborts, what it deleted staying deleted', async () => {
    for (let i = 0; i < 1500; i++) await put(store, 'acme/app', ociManifest({ seed: `s${i}` }), `t${i}`);
    const stop = new AbortController();
    const batches: number[] = [];
    const rules: RetentionRule[] = [{ repositories: 'acme/*', keep: { newest: 0 } }];
    const run = applyRetention(store, rules, {
      signal: stop.signal,
      onProgress: (p) => {
        if (p.phase !== 'apply') return;
        batches.push(p.done);
        stop.abort(new Error('stopping'));
      },
    });
    await expect(run).rejects.toThrow('stopping');
    expect(batches).toEqual([1000]);
    expect(await store.allTags('acme/app')).toHaveLength(500);
  }, 120_000);

  it('leaves a tag moved or pushed again between the plan and the apply, and the manifest it keeps', async () => {
    const repo = 'acme/app';
    const a = await put(store, repo, ociManifest({ seed: 'a' }), 'moved');
    const b = await put(store, repo, ociManifest({ seed: 'b' }), 'again');
    const c = await put(store, repo, ociManifest({ seed: 'c' }), 'gone');
    const d = await put(store, repo, ociManifest({ seed: 'd' }));
    tickPast(Date.now());
    const rules: RetentionRule[] = [{ repositories: 'acme/*', keep: { newest: 0, untaggedGrace: 0 } }];
    const plan = await planRetention(store, rules, { now: new Date() });
    expect(deletionsOf(plan).tags.map((t) => t.tag).sort()).toEqual(['again', 'gone', 'moved']);
    expect(deletionsOf(plan).manifests.map((m) => m.digest).sort()).toEqual([a.digest, b.digest, c.digest, d.digest].sort());
    await store.putTag(repo, 'moved', { digest: d.digest });
    await put(store, repo, b, 'again');
    const result = await applyPlan(store, plan);
    expect(result.tags.map((t) => t.tag)).toEqual(['gone']);
    // a is untagged now (its tag moved to d) and goes, as c; b and d are tagged and stay.
    expect(result.manifests.map((m) => m.digest).sort()).toEqual([a.digest, c.digest].sort());
    expect(result.skipped).toBe(4);
    expect(await store.allTags(repo)).toEqual(['again', 'moved']);
    expect((await store.getTag(repo, 'moved')).digest).toBe(d.digest);
  });
});
