// putTag, getTag, deleteTag, allTags, lookupTags and tagHistory, case by case.

import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, NotFoundError, type MetadataStore } from 'regmeta';
import { caught, MediaType, allEvents, dockerManifest, ociIndex, ociManifest, tempStore, putBuilt, type Built } from './fixtures.js';

let store: MetadataStore;
beforeEach(() => {
  store = openStore(':memory:');
});
afterEach(() => store.close());


const put = (repo: string, m: Built, s: MetadataStore = store): Built => putBuilt(s, repo, m);

function eventsSince(count: number) {
  return allEvents(store).slice(count);
}

describe('putTag', () => {
  it('creates a tag with a CREATE TAG event that names the digest and no previousDigest', () => {
    const m = put('acme/app', ociManifest());
    const before = allEvents(store).length;
    store.putTag('acme/app', 'latest', { digest: m.digest }, { actor: 'alice' });
    const [event, ...rest] = eventsSince(before);
    expect(rest).toEqual([]);
    expect(event).toMatchObject({
      actor: 'alice',
      type: 'CREATE',
      object: { type: 'TAG', id: 'acme/app:latest' },
      repository: 'acme/app',
      tag: 'latest',
      digest: m.digest,
    });
    expect(event.previousDigest).toBeUndefined();
    expect(store.getTag('acme/app', 'latest').digest).toBe(m.digest);
  });

  it('moves a tag with an UPDATE TAG event carrying previousDigest, and grows the history', () => {
    const a = put('acme/app', ociManifest({ seed: 'a' }));
    const b = put('acme/app', ociManifest({ seed: 'b' }));
    store.putTag('acme/app', 'latest', { digest: a.digest });
    const before = allEvents(store).length;
    store.putTag('acme/app', 'latest', { digest: b.digest }, { actor: 'bob' });
    const added = eventsSince(before);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({
      actor: 'bob',
      type: 'UPDATE',
      object: { type: 'TAG', id: 'acme/app:latest' },
      tag: 'latest',
      digest: b.digest,
      previousDigest: a.digest,
    });
    expect(store.getTag('acme/app', 'latest').digest).toBe(b.digest);
    expect(store.tagHistory('acme/app', 'latest').map((h) => h.digest)).toEqual([b.digest, a.digest]);
  });

  it('a move keeps the tag row\'s created_at and advances updated_at', async () => {
    const t = tempStore();
    try {
      const a = put('acme/app', ociManifest({ seed: 'a' }), t.store);
      const b = put('acme/app', ociManifest({ seed: 'b' }), t.store);
      t.store.putTag('acme/app', 'latest', { digest: a.digest });
      const read = () => {
        const raw = new Database(t.file, { readonly: true });
        try {
          return raw.prepare("SELECT created_at, updated_at FROM tag WHERE name = 'latest'").get() as {
            created_at: number;
            updated_at: number;
          };
        } finally {
          raw.close();
        }
      };
      const first = read();
      // Wait for the clock to move so that updated_at can differ from created_at.
      while (Date.now() <= first.updated_at) await new Promise((r) => setTimeout(r, 2));
      t.store.putTag('acme/app', 'latest', { digest: b.digest });
      const second = read();
      expect(second.created_at).toBe(first.created_at);
      expect(second.updated_at).toBeGreaterThan(first.updated_at);
      const history = t.store.tagHistory('acme/app', 'latest');
      expect(history[0].taggedAt.getTime()).toBe(second.updated_at);
      expect(history[1].taggedAt.getTime()).toBe(first.created_at);
    } finally {
      t.cleanup();
    }
  });

  it('re-putting the same target writes no event and no history', () => {
    const m = put('acme/app', ociManifest());
    store.putTag('acme/app', 'latest', { digest: m.digest });
    const before = allEvents(store).length;
    store.putTag('acme/app', 'latest', { digest: m.digest, mediaType: m.mediaType, size: m.size });
    expect(allEvents(store)).toHaveLength(before);
    expect(store.tagHistory('acme/app', 'latest')).toHaveLength(1);
  });

  it('moving away and back is two updates, each with its previousDigest', () => {
    const a = put('acme/app', ociManifest({ seed: 'a' }));
    const b = put('acme/app', ociManifest({ seed: 'b' }));
    store.putTag('acme/app', 'latest', { digest: a.digest });
    const before = allEvents(store).length;
    store.putTag('acme/app', 'latest', { digest: b.digest });
    store.putTag('acme/app', 'latest', { digest: a.digest });
    expect(eventsSince(before).map((e) => [e.type, e.digest, e.previousDigest])).toEqual([
      ['UPDATE', b.digest, a.digest],
      ['UPDATE', a.digest, b.digest],
    ]);
    expect(store.tagHistory('acme/app', 'latest').map((h) => h.digest)).toEqual([a.digest, b.digest, a.digest]);
  });

  it('needs the manifest in that repository: MANIFEST_UNKNOWN otherwise, and no event', () => {
    put('acme/app', ociManifest());
    const elsewhere = put('acme/other', ociManifest({ seed: 'elsewhere' }));
    const before = allEvents(store).length;
    const error = caught(() => store.putTag('acme/app', 'latest', { digest: elsewhere.digest }));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.code).toBe('MANIFEST_UNKNOWN');
    expect(allEvents(store)).toHaveLength(before);
    expect(store.allTags('acme/app')).toEqual([]);
  });

  it('a missing repository is NAME_UNKNOWN and is not created', () => {
    const error = caught(() => store.putTag('acme/none', 'latest', { digest: ociManifest().digest }));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.code).toBe('NAME_UNKNOWN');
    expect(store.catalog()).toEqual([]);
  });

  it('re-tagging after a delete is a fresh CREATE, not a revived tombstone', () => {
    const a = put('acme/app', ociManifest({ seed: 'a' }));
    const b = put('acme/app', ociManifest({ seed: 'b' }));
    store.putTag('acme/app', 'latest', { digest: a.digest });
    store.deleteTag('acme/app', 'latest');
    const before = allEvents(store).length;
    store.putTag('acme/app', 'latest', { digest: b.digest });
    const [event] = eventsSince(before);
    expect(event.type).toBe('CREATE');
    expect(event.previousDigest).toBeUndefined();
    expect(store.getTag('acme/app', 'latest').digest).toBe(b.digest);
  });
});

describe('getTag', () => {
  it("reports the manifest's own mediaType and size, whatever the descriptor given to putTag said", () => {
    const m = put('acme/app', dockerManifest());
    store.putTag('acme/app', 'latest', {
      digest: m.digest,
      mediaType: 'application/vnd.example.wrong',
      size: m.size + 12345,
      annotations: { a: 'b' },
    });
    expect(store.getTag('acme/app', 'latest')).toEqual({ mediaType: MediaType.DockerManifest, digest: m.digest, size: m.size });
  });

  it('reports an index as an index', () => {
    const child = put('acme/app', ociManifest());
    const idx = put('acme/app', ociIndex([child.descriptor]));
    store.putTag('acme/app', 'multi', { digest: idx.digest });
    expect(store.getTag('acme/app', 'multi')).toEqual({ mediaType: MediaType.OciIndex, digest: idx.digest, size: idx.size });
  });

  it('a missing tag is NotFoundError MANIFEST_UNKNOWN', () => {
    put('acme/app', ociManifest());
    const error = caught(() => store.getTag('acme/app', 'nope'));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.code).toBe('MANIFEST_UNKNOWN');
  });

  it('a missing repository is NotFoundError NAME_UNKNOWN', () => {
    const error = caught(() => store.getTag('acme/none', 'latest'));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.code).toBe('NAME_UNKNOWN');
  });

  it('a tag of another repository is not found', () => {
    const m = put('acme/app', ociManifest());
    put('acme/other', ociManifest({ seed: 'o' }));
    store.putTag('acme/app', 'latest', { digest: m.digest });
    expect(caught(() => store.getTag('acme/other', 'latest')).code).toBe('MANIFEST_UNKNOWN');
  });

  it('tags are case-sensitive', () => {
    const m = put('acme/app', ociManifest());
    store.putTag('acme/app', 'Latest', { digest: m.digest });
    expect(caught(() => store.getTag('acme/app', 'latest')).code).toBe('MANIFEST_UNKNOWN');
    expect(store.getTag('acme/app', 'Latest').digest).toBe(m.digest);
  });
});

describe('deleteTag', () => {
  it('removes the tag, not the manifest, with a DELETE TAG event naming the digest', () => {
    const m = put('acme/app', ociManifest());
    store.putTag('acme/app', 'latest', { digest: m.digest });
    store.putTag('acme/app', 'v1', { digest: m.digest });
    const before = allEvents(store).length;
    store.deleteTag('acme/app', 'latest', { actor: 'carol' });
    const added = eventsSince(before);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({
      actor: 'carol',
      type: 'DELETE',
      object: { type: 'TAG', id: 'acme/app:latest' },
      repository: 'acme/app',
      tag: 'latest',
      digest: m.digest,
    });
    expect(caught(() => store.getTag('acme/app', 'latest')).code).toBe('MANIFEST_UNKNOWN');
    expect(store.statManifest('acme/app', m.digest).digest).toBe(m.digest);
    expect(store.allTags('acme/app')).toEqual(['v1']);
  });

  it('a missing tag is NotFoundError MANIFEST_UNKNOWN and writes no event', () => {
    put('acme/app', ociManifest());
    const before = allEvents(store).length;
    const error = caught(() => store.deleteTag('acme/app', 'latest'));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.code).toBe('MANIFEST_UNKNOWN');
    expect(allEvents(store)).toHaveLength(before);
  });

  it('deleting twice fails the second time', () => {
    const m = put('acme/app', ociManifest());
    store.putTag('acme/app', 'latest', { digest: m.digest });
    store.deleteTag('acme/app', 'latest');
    expect(caught(() => store.deleteTag('acme/app', 'latest')).code).toBe('MANIFEST_UNKNOWN');
  });

  it('a missing repository is NotFoundError NAME_UNKNOWN', () => {
    expect(caught(() => store.deleteTag('acme/none', 'latest')).code).toBe('NAME_UNKNOWN');
  });
});

describe('allTags', () => {
  // Byte order, as Go's sort.Strings: digits < uppercase < '_' < lowercase,
  // and '-' < '.' < digits, so 'a-b' < 'a.b' < 'a0' < 'a_b' < 'ab'.
  const byteOrder = ['0', '9z', 'A', 'B', 'Z', '_x', 'a', 'a-b', 'a.b', 'a0', 'aB', 'a_b', 'ab', 'b', 'z'];

  function tagAll(tags: string[]) {
    const m = put('acme/app', ociManifest());
    for (const tag of [...tags].reverse()) store.putTag('acme/app', tag, { digest: m.digest });
  }

  it('lists every tag in byte order (uppercase before lowercase, - . _ as Go sorts them)', () => {
    // Tagged in an order unlike the result so that insertion order cannot pass.
    const shuffled = [...byteOrder].sort((x, y) => (x.length - y.length) || (x < y ? 1 : -1));
    const m = put('acme/app', ociManifest());
    for (const tag of shuffled) store.putTag('acme/app', tag, { digest: m.digest });
    expect(store.allTags('acme/app')).toEqual(byteOrder);
  });

  it('is not in update order: moving a tag does not move it in the list', () => {
    const a = put('acme/app', ociManifest({ seed: 'a' }));
    const b = put('acme/app', ociManifest({ seed: 'b' }));
    for (const tag of ['x', 'y', 'z']) store.putTag('acme/app', tag, { digest: a.digest });
    store.putTag('acme/app', 'x', { digest: b.digest });
    expect(store.allTags('acme/app')).toEqual(['x', 'y', 'z']);
  });

  it('pages with n and last', () => {
    tagAll(byteOrder);
    expect(store.allTags('acme/app', { n: 3 })).toEqual(byteOrder.slice(0, 3));
    expect(store.allTags('acme/app', { n: 3, last: 'B' })).toEqual(['Z', '_x', 'a']);
    expect(store.allTags('acme/app', { last: 'a_b' })).toEqual(['ab', 'b', 'z']);
    expect(store.allTags('acme/app', { n: 100 })).toEqual(byteOrder);
    expect(store.allTags('acme/app', { n: 2, last: 'z' })).toEqual([]);
  });

  it('walks every tag exactly once page by page', () => {
    tagAll(byteOrder);
    const seen: string[] = [];
    let last: string | undefined;
    for (;;) {
      const page = store.allTags('acme/app', last === undefined ? { n: 4 } : { n: 4, last });
      if (page.length === 0) break;
      expect(page.length).toBeLessThanOrEqual(4);
      seen.push(...page);
      last = page[page.length - 1];
    }
    expect(seen).toEqual(byteOrder);
  });

  it('takes a last that is not a tag, and starts after where it would sort', () => {
    tagAll(byteOrder);
    expect(store.allTags('acme/app', { n: 2, last: 'a-a' })).toEqual(['a-b', 'a.b']);
    expect(store.allTags('acme/app', { n: 2, last: 'C' })).toEqual(['Z', '_x']);
  });

  it('gives [] for n = 0', () => {
    tagAll(byteOrder);
    expect(store.allTags('acme/app', { n: 0 })).toEqual([]);
  });

  it('gives [] for a repository with no tags', () => {
    put('acme/app', ociManifest());
    expect(store.allTags('acme/app')).toEqual([]);
    expect(store.allTags('acme/app', { n: 5, last: 'x' })).toEqual([]);
  });

  it('gives [] for a repository that only has a blob link', () => {
    store.linkBlob('acme/blobs', { digest: ociManifest().digest, size: 10 });
    expect(store.allTags('acme/blobs')).toEqual([]);
  });

  it('a missing repository is NotFoundError NAME_UNKNOWN, also with paging', () => {
    for (const call of [() => store.allTags('acme/none'), () => store.allTags('acme/none', { n: 0 }), () => store.allTags('acme/none', { n: 3, last: 'a' })]) {
      const error = caught(call);
      expect(error).toBeInstanceOf(NotFoundError);
      expect(error.code).toBe('NAME_UNKNOWN');
    }
  });

  it('lists only that repository\'s tags', () => {
    const m = put('acme/app', ociManifest());
    const o = put('acme/app2', ociManifest());
    store.putTag('acme/app', 'mine', { digest: m.digest });
    store.putTag('acme/app2', 'theirs', { digest: o.digest });
    expect(store.allTags('acme/app')).toEqual(['mine']);
    expect(store.allTags('acme/app2')).toEqual(['theirs']);
  });

  it('refuses a negative or fractional n with PAGINATION_NUMBER_INVALID', () => {
    put('acme/app', ociManifest());
    for (const n of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(caught(() => store.allTags('acme/app', { n })).code).toBe('PAGINATION_NUMBER_INVALID');
    }
  });
});

describe('lookupTags', () => {
  it('returns the tags pointing at the digest, in byte order', () => {
    const a = put('acme/app', ociManifest({ seed: 'a' }));
    const b = put('acme/app', ociManifest({ seed: 'b' }));
    for (const tag of ['v1', 'latest', 'V2', 'stable', '_x']) store.putTag('acme/app', tag, { digest: a.digest });
    store.putTag('acme/app', 'other', { digest: b.digest });
    expect(store.lookupTags('acme/app', a.digest)).toEqual(['V2', '_x', 'latest', 'stable', 'v1']);
    expect(store.lookupTags('acme/app', b.digest)).toEqual(['other']);
  });

  it('takes a descriptor as well as a digest', () => {
    const a = put('acme/app', ociManifest());
    store.putTag('acme/app', 'latest', { digest: a.digest });
    expect(store.lookupTags('acme/app', a.descriptor)).toEqual(['latest']);
    expect(store.lookupTags('acme/app', { digest: a.digest })).toEqual(['latest']);
  });

  it('returns only that repository\'s tags for a digest pushed to two repositories', () => {
    const m = ociManifest();
    put('acme/app', m);
    put('acme/copy', m);
    store.putTag('acme/app', 'mine', { digest: m.digest });
    store.putTag('acme/copy', 'theirs', { digest: m.digest });
    expect(store.lookupTags('acme/app', m.digest)).toEqual(['mine']);
    expect(store.lookupTags('acme/copy', m.digest)).toEqual(['theirs']);
  });

  it('follows moves and deletes', () => {
    const a = put('acme/app', ociManifest({ seed: 'a' }));
    const b = put('acme/app', ociManifest({ seed: 'b' }));
    store.putTag('acme/app', 'latest', { digest: a.digest });
    store.putTag('acme/app', 'v1', { digest: a.digest });
    store.putTag('acme/app', 'latest', { digest: b.digest });
    store.deleteTag('acme/app', 'v1');
    expect(store.lookupTags('acme/app', a.digest)).toEqual([]);
    expect(store.lookupTags('acme/app', b.digest)).toEqual(['latest']);
  });

  it('gives [] for an untagged or unknown digest', () => {
    const a = put('acme/app', ociManifest());
    expect(store.lookupTags('acme/app', a.digest)).toEqual([]);
    expect(store.lookupTags('acme/app', ociManifest({ seed: 'unknown' }).digest)).toEqual([]);
  });

  it('a missing repository is NotFoundError NAME_UNKNOWN', () => {
    expect(caught(() => store.lookupTags('acme/none', ociManifest().digest)).code).toBe('NAME_UNKNOWN');
  });
});

describe('tagHistory', () => {
  it('lists every target newest first with when it was set', () => {
    const a = put('acme/app', ociManifest({ seed: 'a' }));
    const b = put('acme/app', ociManifest({ seed: 'b' }));
    const t0 = Date.now();
    store.putTag('acme/app', 'latest', { digest: a.digest });
    store.putTag('acme/app', 'latest', { digest: b.digest });
    const history = store.tagHistory('acme/app', 'latest');
    expect(history.map((h) => h.digest)).toEqual([b.digest, a.digest]);
    for (const h of history) {
      expect(h.taggedAt).toBeInstanceOf(Date);
      expect(h.taggedAt.getTime()).toBeGreaterThanOrEqual(t0);
    }
    expect(history[0].taggedAt.getTime()).toBeGreaterThanOrEqual(history[1].taggedAt.getTime());
  });

  it('keeps the history of one tag apart from another', () => {
    const a = put('acme/app', ociManifest({ seed: 'a' }));
    const b = put('acme/app', ociManifest({ seed: 'b' }));
    store.putTag('acme/app', 'one', { digest: a.digest });
    store.putTag('acme/app', 'two', { digest: b.digest });
    expect(store.tagHistory('acme/app', 'one').map((h) => h.digest)).toEqual([a.digest]);
    expect(store.tagHistory('acme/app', 'two').map((h) => h.digest)).toEqual([b.digest]);
  });

  it('is [] for a tag never set, NAME_UNKNOWN for a missing repository', () => {
    put('acme/app', ociManifest());
    expect(store.tagHistory('acme/app', 'never')).toEqual([]);
    expect(caught(() => store.tagHistory('acme/none', 'latest')).code).toBe('NAME_UNKNOWN');
  });
});

describe('tagDescriptors', () => {
  it('lists tags in byte order with the descriptor of what each points at, paginated like allTags', () => {
    const a = ociManifest({ seed: 'a' });
    const b = dockerManifest({ seed: 'b' });
    store.putManifest('acme/app', a.digest, a);
    store.putManifest('acme/app', b.digest, b);
    for (const [tag, m] of [['v2', b], ['Latest', a], ['v1', a]] as const) store.putTag('acme/app', tag, { digest: m.digest });
    expect(store.tagDescriptors('acme/app')).toEqual([
      { tag: 'Latest', mediaType: a.mediaType, digest: a.digest, size: a.size },
      { tag: 'v1', mediaType: a.mediaType, digest: a.digest, size: a.size },
      { tag: 'v2', mediaType: b.mediaType, digest: b.digest, size: b.size },
    ]);
    expect(store.tagDescriptors('acme/app', { n: 1, last: 'Latest' }).map((d) => d.tag)).toEqual(['v1']);
    expect(store.tagDescriptors('acme/app').map((d) => d.tag)).toEqual(store.allTags('acme/app'));
    expect(caught(() => store.tagDescriptors('acme/none')).code).toBe('NAME_UNKNOWN');
  });
});
