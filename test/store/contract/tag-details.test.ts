// tagDetails: what each tag shows (digest, media type, size, platforms,
// times), its sorts and filters, keyset pages over 10,000 tags in every
// order, and the typed errors of a bad query, on every backend.

import { describe, expect, it } from 'vitest';
import type { Store, TagDetail, TagQuery } from 'regmeta';
import { blobDesc, codeOf, ociIndex, ociManifest, putBuiltAsync, tickPast, type Built } from '../fixtures.js';
import { backends, storePerTest } from './backends.js';

/** Every tag of `repo` in the query's order, page by page, with the number of pages. */
async function walk(store: Store, repo: string, query: TagQuery): Promise<{ tags: TagDetail[]; pages: number }> {
  const tags: TagDetail[] = [];
  let pages = 0;
  let last: string | undefined;
  do {
    const page = await store.tagDetails(repo, last === undefined ? query : { ...query, last });
    pages++;
    expect(page.tags.length).toBeLessThanOrEqual(query.n ?? 100);
    if (page.next !== undefined) expect(page.tags).toHaveLength(query.n ?? 100);
    tags.push(...page.tags);
    last = page.next;
  } while (last !== undefined);
  return { tags, pages };
}

const time = (detail: TagDetail, sort: 'pushed' | 'pulled') => (sort === 'pushed' ? detail.pushedAt : detail.pulledAt ?? new Date(0)).getTime();

/** Whether `a` comes before `b` in the order (time, then name in byte order). */
function before(a: TagDetail, b: TagDetail, sort: 'name' | 'pushed' | 'pulled'): boolean {
  if (sort !== 'name' && time(a, sort) !== time(b, sort)) return time(a, sort) < time(b, sort);
  return a.tag < b.tag;
}

describe.each(backends)('$name', (backend) => {
  const store = storePerTest(backend);
  const put = (repo: string, m: Built) => putBuiltAsync(store, repo, m);

  async function linked(repo: string, seed: string, size: number) {
    const blob = blobDesc(seed, undefined, size);
    await store.linkBlob(repo, { digest: blob.digest, size });
    return blob;
  }

  describe('each tag', () => {
    it("shows its manifest's digest, media type and size: the manifest's bytes plus each blob it references", async () => {
      const config = await linked('acme/app', 'config', 300);
      const layer = await linked('acme/app', 'layer', 5000);
      const m = await put('acme/app', ociManifest({ config, layers: [layer] }));
      await store.putTag('acme/app', 'v1', { digest: m.digest });
      const { tags } = await store.tagDetails('acme/app');
      expect(tags).toEqual([
        expect.objectContaining({ tag: 'v1', digest: m.digest, mediaType: m.mediaType, size: m.size + 300 + 5000, pullCount: 0 }),
      ]);
      expect(tags[0].platforms).toBeUndefined();
      expect(tags[0].pulledAt).toBeUndefined();
    });

    it("an index's size counts its present children and their blobs, each blob once; its platforms are the index's", async () => {
      const shared = await linked('acme/app', 'shared', 7000);
      const amd = await put('acme/app', ociManifest({ seed: 'amd', config: await linked('acme/app', 'c1', 10), layers: [shared] }));
      const arm = await put('acme/app', ociManifest({ seed: 'arm', config: await linked('acme/app', 'c2', 20), layers: [shared] }));
      const absent = { mediaType: amd.mediaType, digest: `sha256:${'e'.repeat(64)}`, size: 99, platform: { architecture: 'riscv64', os: 'linux' } };
      const index = await put('acme/app', ociIndex([
        { ...amd.descriptor, platform: { architecture: 'amd64', os: 'linux' } },
        { ...arm.descriptor, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
        absent,
      ]));
      await store.putTag('acme/app', 'multi', { digest: index.digest });
      const [detail] = (await store.tagDetails('acme/app')).tags;
      expect(detail.size).toBe(index.size + amd.size + arm.size + 10 + 20 + 7000);
      expect(detail.platforms).toEqual([
        { architecture: 'amd64', os: 'linux' },
        { architecture: 'arm64', os: 'linux', variant: 'v8' },
        { architecture: 'riscv64', os: 'linux' },
      ]);
    });

    it('a blob the store does not hold counts nothing', async () => {
      const m = await put('acme/app', ociManifest({ seed: 'bare' }));
      await store.putTag('acme/app', 'bare', { digest: m.digest });
      expect((await store.tagDetails('acme/app')).tags[0].size).toBe(m.size);
    });

    it('dates the tag (set, moved) and its manifest (last push)', async () => {
      const a = await put('acme/app', ociManifest({ seed: 'a' }));
      const b = await put('acme/app', ociManifest({ seed: 'b' }));
      await store.putTag('acme/app', 'x', { digest: a.digest });
      const [set] = (await store.tagDetails('acme/app')).tags;
      tickPast(set.updatedAt.getTime());
      await store.putTag('acme/app', 'x', { digest: b.digest });
      const [moved] = (await store.tagDetails('acme/app')).tags;
      expect(moved.createdAt).toEqual(set.createdAt);
      expect(moved.updatedAt.getTime()).toBeGreaterThan(set.updatedAt.getTime());
      expect(moved.pushedAt.getTime()).toBeLessThanOrEqual(moved.updatedAt.getTime());
    });
  });

  describe('sorts and filters', () => {
    // Pushed c, a, b in that order (each in a later millisecond): by name a b c, by push c a b.
    async function seed() {
      const names = ['c', 'a', 'b'];
      for (const name of names) {
        const m = await put('acme/app', ociManifest({ seed: name }));
        await store.putTag('acme/app', `${name}1`, { digest: m.digest });
        await store.putTag('acme/app', `${name}2`, { digest: m.digest });
        tickPast(Date.now());
      }
    }
    const tagsOf = async (query: TagQuery) => (await store.tagDetails('acme/app', query)).tags.map((t) => t.tag);

    it('sorts by name (default), by push time with ties by name, and in reverse', async () => {
      await seed();
      expect(await tagsOf({})).toEqual(['a1', 'a2', 'b1', 'b2', 'c1', 'c2']);
      expect(await tagsOf({ order: 'desc' })).toEqual(['c2', 'c1', 'b2', 'b1', 'a2', 'a1']);
      expect(await tagsOf({ sort: 'pushed' })).toEqual(['c1', 'c2', 'a1', 'a2', 'b1', 'b2']);
      expect(await tagsOf({ sort: 'pushed', order: 'desc' })).toEqual(['b2', 'b1', 'a2', 'a1', 'c2', 'c1']);
      // Nothing pulled: every tag ties at no pull, so name decides.
      expect(await tagsOf({ sort: 'pulled' })).toEqual(['a1', 'a2', 'b1', 'b2', 'c1', 'c2']);
    });

    it('a push of the same manifest again moves its tags to the end of the push order', async () => {
      await seed();
      await put('acme/app', ociManifest({ seed: 'c' }));
      expect(await tagsOf({ sort: 'pushed' })).toEqual(['a1', 'a2', 'b1', 'b2', 'c1', 'c2']);
    });

    it('filters by prefix and by pattern, in any sort, pages still full', async () => {
      await seed();
      expect(await tagsOf({ prefix: 'b' })).toEqual(['b1', 'b2']);
      expect(await tagsOf({ prefix: 'b', sort: 'pushed', order: 'desc' })).toEqual(['b2', 'b1']);
      expect(await tagsOf({ pattern: '*2' })).toEqual(['a2', 'b2', 'c2']);
      expect(await tagsOf({ pattern: '?1', sort: 'pushed' })).toEqual(['c1', 'a1', 'b1']);
      expect(await tagsOf({ pattern: 'c*', prefix: 'c2' })).toEqual(['c2']);
      expect(await tagsOf({ pattern: 'a*', prefix: 'b' })).toEqual([]);
      expect(await tagsOf({ prefix: 'z' })).toEqual([]);
      const page = await store.tagDetails('acme/app', { pattern: '*2', n: 2 });
      expect(page.tags.map((t) => t.tag)).toEqual(['a2', 'b2']);
      expect((await store.tagDetails('acme/app', { pattern: '*2', n: 2, last: page.next })).tags.map((t) => t.tag)).toEqual(['c2']);
    });

    it('the last page has no next; an empty repository gives an empty page', async () => {
      await seed();
      expect((await store.tagDetails('acme/app', { n: 6 })).next).toBeUndefined();
      expect((await store.tagDetails('acme/app', { n: 5 })).next).toBeDefined();
      await store.linkBlob('acme/empty', { digest: blobDesc('x').digest, size: 1 });
      expect(await store.tagDetails('acme/empty')).toEqual({ tags: [] });
    });

    it('refuses a bad query with a typed error', async () => {
      await seed();
      const code = (query: unknown) => codeOf(store.tagDetails('acme/app', query as TagQuery));
      expect(await codeOf(store.tagDetails('acme/none'))).toBe('NAME_UNKNOWN');
      expect(await codeOf(store.tagDetails('Bad Name'))).toBe('NAME_INVALID');
      expect(await code({ sort: 'size' })).toBe('ARGUMENT_INVALID');
      expect(await code({ order: 'up' })).toBe('ARGUMENT_INVALID');
      expect(await code({ sorted: 'name' })).toBe('ARGUMENT_INVALID');
      expect(await code({ pattern: 'a/b' })).toBe('ARGUMENT_INVALID');
      expect(await code({ prefix: 'a b' })).toBe('TAG_INVALID');
      expect(await code({ n: 0 })).toBe('PAGINATION_NUMBER_INVALID');
      expect(await code({ n: 1001 })).toBe('PAGINATION_NUMBER_INVALID');
      expect(await code({ n: 1.5 })).toBe('PAGINATION_NUMBER_INVALID');
      expect(await code({ last: 'not a cursor' })).toBe('PAGINATION_NUMBER_INVALID');
      const next = (await store.tagDetails('acme/app', { n: 1 })).next;
      expect(await code({ sort: 'pushed', last: next })).toBe('PAGINATION_NUMBER_INVALID');
      expect(await code({ order: 'desc', last: next })).toBe('PAGINATION_NUMBER_INVALID');
    });
  });

  describe('10,000 tags', () => {
    it('page correctly in every order: each tag once, in order, full pages', { timeout: 600_000 }, async () => {
      // 100 manifests pushed one after another (some in the same millisecond), 100 tags each: ties in push time are the rule.
      const total = 10_000;
      const manifests: Built[] = [];
      for (let i = 0; i < 100; i++) manifests.push(await put('acme/big', ociManifest({ seed: `m${i}` })));
      const names = Array.from({ length: total }, (_, i) => `t${((i * 7919) % total).toString(36)}-${i % 3}`);
      // Ten at a time: a PostgreSQL store's pool takes them in parallel.
      for (let i = 0; i < total; i += 10) {
        await Promise.all(names.slice(i, i + 10).map((tag, j) => store.putTag('acme/big', tag, { digest: manifests[(i + j) % 100].digest })));
      }
      const sorted = [...names].sort();
      for (const sort of ['name', 'pushed', 'pulled'] as const) {
        for (const order of ['asc', 'desc'] as const) {
          const { tags, pages } = await walk(store, 'acme/big', { sort, order, n: 1000 });
          expect(pages).toBe(10);
          expect(tags.map((t) => t.tag).sort()).toEqual(sorted);
          for (let i = 1; i < tags.length; i++) {
            const [a, b] = order === 'asc' ? [tags[i - 1], tags[i]] : [tags[i], tags[i - 1]];
            if (!before(a, b, sort)) throw new Error(`${sort} ${order}: ${tags[i - 1].tag} before ${tags[i].tag}`);
          }
        }
      }
      const filtered = await walk(store, 'acme/big', { pattern: 't1*-2', sort: 'pushed', n: 7 });
      expect(filtered.tags.map((t) => t.tag).sort()).toEqual(sorted.filter((t) => /^t1.*-2$/.test(t)));
    });
  });
});
