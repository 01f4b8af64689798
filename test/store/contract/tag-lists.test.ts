// allTags, lookupTags and tagDescriptors: byte order, pages, and which tags
// each repository sees, on every backend.

import { describe, expect, it } from 'vitest';
import { NotFoundError } from 'regmeta';
import { codeOf, dockerManifest, ociManifest, putBuiltAsync, rejection, type Built } from '../fixtures.js';
import { backends, storePerTest } from './backends.js';

describe.each(backends)('$name', (backend) => {
  const store = storePerTest(backend);

  const put = (repo: string, m: Built) => putBuiltAsync(store, repo, m);

  describe('allTags', () => {
    // Byte order, as Go's sort.Strings: digits < uppercase < '_' < lowercase,
    // and '-' < '.' < digits, so 'a-b' < 'a.b' < 'a0' < 'a_b' < 'ab'.
    const byteOrder = ['0', '9z', 'A', 'B', 'Z', '_x', 'a', 'a-b', 'a.b', 'a0', 'aB', 'a_b', 'ab', 'b', 'z'];

    async function tagAll(tags: string[]) {
      const m = await put('acme/app', ociManifest());
      for (const tag of [...tags].reverse()) await store.putTag('acme/app', tag, { digest: m.digest });
    }

    it('lists every tag in byte order (uppercase before lowercase, - . _ as Go sorts them)', async () => {
      // Tagged in an order unlike the result so that insertion order cannot pass.
      const shuffled = [...byteOrder].sort((x, y) => (x.length - y.length) || (x < y ? 1 : -1));
      const m = await put('acme/app', ociManifest());
      for (const tag of shuffled) await store.putTag('acme/app', tag, { digest: m.digest });
      expect(await store.allTags('acme/app')).toEqual(byteOrder);
    });

    it('is not in update order: moving a tag does not move it in the list', async () => {
      const a = await put('acme/app', ociManifest({ seed: 'a' }));
      const b = await put('acme/app', ociManifest({ seed: 'b' }));
      for (const tag of ['x', 'y', 'z']) await store.putTag('acme/app', tag, { digest: a.digest });
      await store.putTag('acme/app', 'x', { digest: b.digest });
      expect(await store.allTags('acme/app')).toEqual(['x', 'y', 'z']);
    });

    it('pages with n and last', async () => {
      await tagAll(byteOrder);
      expect(await store.allTags('acme/app', { n: 3 })).toEqual(byteOrder.slice(0, 3));
      expect(await store.allTags('acme/app', { n: 3, last: 'B' })).toEqual(['Z', '_x', 'a']);
      expect(await store.allTags('acme/app', { last: 'a_b' })).toEqual(['ab', 'b', 'z']);
      expect(await store.allTags('acme/app', { n: 100 })).toEqual(byteOrder);
      expect(await store.allTags('acme/app', { n: 2, last: 'z' })).toEqual([]);
    });

    it('walks every tag exactly once page by page', async () => {
      await tagAll(byteOrder);
      const seen: string[] = [];
      let last: string | undefined;
      for (;;) {
        const page = await store.allTags('acme/app', last === undefined ? { n: 4 } : { n: 4, last });
        if (page.length === 0) break;
        expect(page.length).toBeLessThanOrEqual(4);
        seen.push(...page);
        last = page[page.length - 1];
      }
      expect(seen).toEqual(byteOrder);
    });

    it('takes a last that is not a tag, and starts after where it would sort', async () => {
      await tagAll(byteOrder);
      expect(await store.allTags('acme/app', { n: 2, last: 'a-a' })).toEqual(['a-b', 'a.b']);
      expect(await store.allTags('acme/app', { n: 2, last: 'C' })).toEqual(['Z', '_x']);
    });

    it('gives [] for n = 0', async () => {
      await tagAll(byteOrder);
      expect(await store.allTags('acme/app', { n: 0 })).toEqual([]);
    });

    it('gives [] for a repository with no tags', async () => {
      await put('acme/app', ociManifest());
      expect(await store.allTags('acme/app')).toEqual([]);
      expect(await store.allTags('acme/app', { n: 5, last: 'x' })).toEqual([]);
    });

    it('gives [] for a repository that only has a blob link', async () => {
      await store.linkBlob('acme/blobs', { digest: ociManifest().digest, size: 10 });
      expect(await store.allTags('acme/blobs')).toEqual([]);
    });

    it('a missing repository is NotFoundError NAME_UNKNOWN, also with paging', async () => {
      for (const call of [() => store.allTags('acme/none'), () => store.allTags('acme/none', { n: 0 }), () => store.allTags('acme/none', { n: 3, last: 'a' })]) {
        const error = await rejection(call());
        expect(error).toBeInstanceOf(NotFoundError);
        expect(error.code).toBe('NAME_UNKNOWN');
      }
    });

    it("lists only that repository's tags", async () => {
      const m = await put('acme/app', ociManifest());
      const o = await put('acme/app2', ociManifest());
      await store.putTag('acme/app', 'mine', { digest: m.digest });
      await store.putTag('acme/app2', 'theirs', { digest: o.digest });
      expect(await store.allTags('acme/app')).toEqual(['mine']);
      expect(await store.allTags('acme/app2')).toEqual(['theirs']);
    });

    it('refuses a negative or fractional n with PAGINATION_NUMBER_INVALID', async () => {
      await put('acme/app', ociManifest());
      for (const n of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        expect(await codeOf(store.allTags('acme/app', { n }))).toBe('PAGINATION_NUMBER_INVALID');
      }
    });
  });

  describe('lookupTags', () => {
    it('returns the tags pointing at the digest, in byte order', async () => {
      const a = await put('acme/app', ociManifest({ seed: 'a' }));
      const b = await put('acme/app', ociManifest({ seed: 'b' }));
      for (const tag of ['v1', 'latest', 'V2', 'stable', '_x']) await store.putTag('acme/app', tag, { digest: a.digest });
      await store.putTag('acme/app', 'other', { digest: b.digest });
      expect(await store.lookupTags('acme/app', a.digest)).toEqual(['V2', '_x', 'latest', 'stable', 'v1']);
      expect(await store.lookupTags('acme/app', b.digest)).toEqual(['other']);
    });

    it('takes a descriptor as well as a digest', async () => {
      const a = await put('acme/app', ociManifest());
      await store.putTag('acme/app', 'latest', { digest: a.digest });
      expect(await store.lookupTags('acme/app', a.descriptor)).toEqual(['latest']);
      expect(await store.lookupTags('acme/app', { digest: a.digest })).toEqual(['latest']);
    });

    it("returns only that repository's tags for a digest pushed to two repositories", async () => {
      const m = ociManifest();
      await put('acme/app', m);
      await put('acme/copy', m);
      await store.putTag('acme/app', 'mine', { digest: m.digest });
      await store.putTag('acme/copy', 'theirs', { digest: m.digest });
      expect(await store.lookupTags('acme/app', m.digest)).toEqual(['mine']);
      expect(await store.lookupTags('acme/copy', m.digest)).toEqual(['theirs']);
    });

    it('follows moves and deletes', async () => {
      const a = await put('acme/app', ociManifest({ seed: 'a' }));
      const b = await put('acme/app', ociManifest({ seed: 'b' }));
      await store.putTag('acme/app', 'latest', { digest: a.digest });
      await store.putTag('acme/app', 'v1', { digest: a.digest });
      await store.putTag('acme/app', 'latest', { digest: b.digest });
      await store.deleteTag('acme/app', 'v1');
      expect(await store.lookupTags('acme/app', a.digest)).toEqual([]);
      expect(await store.lookupTags('acme/app', b.digest)).toEqual(['latest']);
    });

    it('gives [] for an untagged or unknown digest', async () => {
      const a = await put('acme/app', ociManifest());
      expect(await store.lookupTags('acme/app', a.digest)).toEqual([]);
      expect(await store.lookupTags('acme/app', ociManifest({ seed: 'unknown' }).digest)).toEqual([]);
    });

    it('a missing repository is NotFoundError NAME_UNKNOWN', async () => {
      const error = await rejection(store.lookupTags('acme/none', ociManifest().digest));
      expect(error).toBeInstanceOf(NotFoundError);
      expect(error.code).toBe('NAME_UNKNOWN');
    });
  });

  describe('tagDescriptors', () => {
    it('lists tags in byte order with the descriptor of what each points at, paginated like allTags', async () => {
      const a = await put('acme/app', ociManifest({ seed: 'a' }));
      const b = await put('acme/app', dockerManifest({ seed: 'b' }));
      for (const [tag, m] of [['v2', b], ['Latest', a], ['v1', a]] as const) await store.putTag('acme/app', tag, { digest: m.digest });
      expect(await store.tagDescriptors('acme/app')).toEqual([
        { tag: 'Latest', mediaType: a.mediaType, digest: a.digest, size: a.size },
        { tag: 'v1', mediaType: a.mediaType, digest: a.digest, size: a.size },
        { tag: 'v2', mediaType: b.mediaType, digest: b.digest, size: b.size },
      ]);
      expect((await store.tagDescriptors('acme/app', { n: 1, last: 'Latest' })).map((d) => d.tag)).toEqual(['v1']);
      expect((await store.tagDescriptors('acme/app')).map((d) => d.tag)).toEqual(await store.allTags('acme/app'));
      expect(await codeOf(store.tagDescriptors('acme/none'))).toBe('NAME_UNKNOWN');
    });
  });
});
