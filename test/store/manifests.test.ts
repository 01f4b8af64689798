// putManifest, getManifest, statManifest, getManifestByReference,
// deleteManifest and referrers, case by case through the public API.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, NotFoundError, type MetadataStore } from 'regmeta';
import {
  MediaType,
  absentManifest,
  allEvents,
  blobDesc,
  built,
  digestOf,
  dockerList,
  dockerManifest,
  ociIndex,
  ociManifest,
  caught,
} from './fixtures.js';

// The store's own nesting limit, as store.limits reports it.
const MAX_MANIFEST_DEPTH = (() => {
  const probe = openStore(':memory:');
  try {
    return probe.limits.maxManifestDepth;
  } finally {
    probe.close();
  }
})();

let store: MetadataStore;
beforeEach(() => {
  store = openStore(':memory:');
});
afterEach(() => store.close());


function put(repo: string, m: { digest: string; mediaType: string; payload: Uint8Array }, actor?: string) {
  store.putManifest(repo, m.digest, { mediaType: m.mediaType, payload: m.payload }, actor === undefined ? undefined : { actor });
}

describe('putManifest: digest verification', () => {
  it('accepts a manifest whose sha256 digest matches', () => {
    const m = ociManifest();
    put('acme/app', m);
    expect(store.getManifest('acme/app', m.digest).digest).toBe(m.digest);
  });

  it('accepts a manifest whose sha512 digest matches', () => {
    const m = built(MediaType.OciManifest, ociManifest().payload, 'sha512');
    expect(m.digest).toMatch(/^sha512:[0-9a-f]{128}$/);
    put('acme/app', m);
    expect(store.getManifest('acme/app', m.digest).payload.equals(m.payload)).toBe(true);
  });

  it('refuses a digest that is not the hash of the payload with DIGEST_INVALID', () => {
    const m = ociManifest();
    const other = ociManifest({ seed: 'other' });
    expect(caught(() => store.putManifest('acme/app', other.digest, m)).code).toBe('DIGEST_INVALID');
    expect(store.catalog()).toEqual([]);
  });

  it('refuses a sha512 digest of other bytes with DIGEST_INVALID', () => {
    const m = ociManifest();
    const wrong = digestOf('something else', 'sha512');
    expect(caught(() => store.putManifest('acme/app', wrong, m)).code).toBe('DIGEST_INVALID');
  });

  it('refuses the sha256 hex of the payload labelled sha512', () => {
    const m = ociManifest();
    expect(caught(() => store.putManifest('acme/app', m.digest.replace('sha256', 'sha512'), m)).code).toBe('DIGEST_INVALID');
  });

  it('takes the sha256 of the payload when no digest is given (a push by tag)', () => {
    const m = ociManifest();
    expect(store.putManifest('acme/app', undefined, m, undefined, { tag: 'v1' })).toEqual({ digest: m.digest });
    expect(store.getTag('acme/app', 'v1').digest).toBe(m.digest);
  });
});

describe('putManifest: what it returns', () => {
  it('the digest, and the subject when the manifest has one: what a registry answers a push with', () => {
    const subject = ociManifest({ seed: 'subject' });
    const referrer = ociManifest({ seed: 'sig', subject: subject.descriptor });
    expect(store.putManifest('acme/app', subject.digest, subject)).toEqual({ digest: subject.digest });
    expect(store.putManifest('acme/app', referrer.digest, referrer)).toEqual({ digest: referrer.digest, subject: subject.digest });
    // Again, as stored already: the same answer.
    expect(store.putManifest('acme/app', undefined, referrer)).toEqual({ digest: referrer.digest, subject: subject.digest });
  });
});

describe('putManifest: media types', () => {
  it.each([
    ['Docker schema 2 manifest', () => dockerManifest()],
    ['Docker manifest list', () => dockerList([dockerManifest().descriptor])],
    ['OCI image manifest', () => ociManifest()],
    ['OCI image manifest without mediaType in the payload', () => ociManifest({ omitMediaType: true })],
    ['OCI image index', () => ociIndex([ociManifest().descriptor])],
    ['OCI image index without mediaType in the payload', () => ociIndex([ociManifest().descriptor], { omitMediaType: true })],
    [
      'artifact with a custom config mediaType',
      () => ociManifest({ config: blobDesc('sig', 'application/vnd.example.signature.config.v1+json', 2) }),
    ],
    ['artifact with an artifactType and the empty config', () =>
      ociManifest({ artifactType: 'application/vnd.example.sbom', config: blobDesc('empty', 'application/vnd.oci.empty.v1+json', 2) })],
  ])('accepts a %s and reports its mediaType', (_name, make) => {
    const m = make();
    put('acme/app', m);
    const stored = store.getManifest('acme/app', m.digest);
    expect(stored.mediaType).toBe(m.mediaType);
  });

  it('refuses a payload whose mediaType disagrees with the declared one with MANIFEST_INVALID', () => {
    const m = ociManifest({ payloadMediaType: MediaType.DockerManifest });
    expect(caught(() => put('acme/app', m)).code).toBe('MANIFEST_INVALID');
  });

  it('refuses a Docker manifest declared as an OCI index with MANIFEST_INVALID', () => {
    const m = dockerManifest();
    expect(caught(() => store.putManifest('acme/app', m.digest, { mediaType: MediaType.OciIndex, payload: m.payload })).code).toBe(
      'MANIFEST_INVALID',
    );
  });

  it('refuses a Docker manifest whose payload leaves out its mediaType with MANIFEST_INVALID', () => {
    const m = dockerManifest({ omitMediaType: true });
    expect(caught(() => put('acme/app', m)).code).toBe('MANIFEST_INVALID');
  });

  it('refuses an unsupported manifest media type with MANIFEST_INVALID', () => {
    const m = built('application/vnd.docker.distribution.manifest.v1+json', '{"schemaVersion":1}');
    expect(caught(() => put('acme/app', m)).code).toBe('MANIFEST_INVALID');
  });

  it.each([
    ['not JSON', 'this is not json'],
    ['truncated JSON', '{"schemaVersion":2,'],
    ['a JSON array', '[1,2,3]'],
    ['a JSON string', '"manifest"'],
    ['JSON null', 'null'],
    ['schemaVersion 1', JSON.stringify({ schemaVersion: 1, mediaType: MediaType.OciManifest, config: blobDesc('c'), layers: [] })],
    ['schemaVersion "2"', JSON.stringify({ schemaVersion: '2', mediaType: MediaType.OciManifest, config: blobDesc('c'), layers: [] })],
    ['no schemaVersion', JSON.stringify({ mediaType: MediaType.OciManifest, config: blobDesc('c'), layers: [] })],
    ['no config', JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, layers: [] })],
    ['a layer with a bad digest', JSON.stringify({ schemaVersion: 2, config: blobDesc('c'), layers: [{ mediaType: 'x', digest: 'sha256:abc', size: 1 }] })],
  ])('refuses a payload that is %s with MANIFEST_INVALID', (_name, text) => {
    const m = built(MediaType.OciManifest, text);
    expect(caught(() => put('acme/app', m)).code).toBe('MANIFEST_INVALID');
    expect(store.catalog()).toEqual([]);
  });

  // A valid manifest with an extra field `value`.
  const withField = (value: string) => built(MediaType.OciManifest, `${ociManifest().payload.toString().slice(0, -1)},"x":${value}}`);

  it(`takes nesting up to MAX_MANIFEST_DEPTH (${MAX_MANIFEST_DEPTH}) levels and refuses one more with MANIFEST_INVALID`, () => {
    // The manifest object itself is the first level.
    const arrays = MAX_MANIFEST_DEPTH - 1;
    put('acme/app', withField(`${'['.repeat(arrays)}${']'.repeat(arrays)}`));
    const objects = MAX_MANIFEST_DEPTH;
    const error = caught(() => put('acme/app', withField(`${'{"a":'.repeat(objects)}1${'}'.repeat(objects)}`)));
    expect(error.code).toBe('MANIFEST_INVALID');
    expect(error.message).toMatch(/deeper than/);
  });

  it('does not count brackets inside strings, escaped quotes included', () => {
    // The JSON string \"[[[…{ : an escaped backslash, an escaped quote, then brackets.
    const text = `"\\\\\\"${'['.repeat(10_000)}{"`;
    expect(JSON.parse(text)).toMatch(/^\\"\[+\{$/);
    put('acme/app', withField(text));
  });

  it('refuses a valid manifest behind a UTF-8 BOM with MANIFEST_INVALID, naming the BOM', () => {
    const m = built(MediaType.OciManifest, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), ociManifest().payload]));
    const error = caught(() => put('acme/app', m));
    expect(error.code).toBe('MANIFEST_INVALID');
    expect(error.message).toMatch(/byte order mark/);
    expect(store.catalog()).toEqual([]);
  });

  it('refuses bytes that are not UTF-8 with MANIFEST_INVALID', () => {
    const m = built(MediaType.OciManifest, Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
    expect(caught(() => put('acme/app', m)).code).toBe('MANIFEST_INVALID');
  });
});

describe('putManifest: storage', () => {
  it('stores the bytes exactly, whitespace and key order included', () => {
    const text = `{\n  "schemaVersion": 2,\n\t"mediaType": "${MediaType.OciManifest}",\n  "layers": [],\n  "config": ${JSON.stringify(blobDesc('c'))}   \n}\n\n`;
    const m = built(MediaType.OciManifest, text);
    put('acme/app', m);
    const stored = store.getManifest('acme/app', m.digest);
    expect(stored.payload.toString()).toBe(text);
    expect(stored.size).toBe(Buffer.byteLength(text));
    expect(digestOf(stored.payload)).toBe(m.digest);
  });

  it('stores a payload given as a view into a larger buffer, and only its bytes', () => {
    const m = ociManifest();
    const big = Buffer.concat([Buffer.from('garbage before'), m.payload, Buffer.from('garbage after')]);
    const view = new Uint8Array(big.buffer, big.byteOffset + 'garbage before'.length, m.size);
    store.putManifest('acme/app', m.digest, { mediaType: m.mediaType, payload: view });
    expect(store.getManifest('acme/app', m.digest).payload.equals(m.payload)).toBe(true);
  });

  it('creates the repository on first use, in the catalog and with a CREATE REPOSITORY event', () => {
    const m = ociManifest();
    put('acme/app', m, 'alice');
    expect(store.catalog()).toEqual(['acme/app']);
    const events = allEvents(store);
    expect(events.map((e) => [e.type, e.object.type, e.object.id, e.actor])).toEqual([
      ['CREATE', 'REPOSITORY', 'acme/app', 'alice'],
      ['CREATE', 'MANIFEST', `acme/app@${m.digest}`, 'alice'],
    ]);
    expect(events[1]).toMatchObject({ repository: 'acme/app', digest: m.digest });
  });

  it('creates the repository only once: a second manifest writes no CREATE REPOSITORY', () => {
    put('acme/app', ociManifest({ seed: 'a' }));
    put('acme/app', ociManifest({ seed: 'b' }));
    const repoEvents = allEvents(store).filter((e) => e.object.type === 'REPOSITORY');
    expect(repoEvents).toHaveLength(1);
  });

  it('treats putting the same manifest again as a no-op: no event, createdAt unchanged', () => {
    const m = ociManifest();
    put('acme/app', m);
    const first = store.statManifest('acme/app', m.digest);
    const before = allEvents(store).length;
    put('acme/app', m);
    expect(allEvents(store)).toHaveLength(before);
    expect(store.statManifest('acme/app', m.digest)).toEqual(first);
  });

  it('records an anonymous actor as the empty string', () => {
    put('acme/app', ociManifest());
    expect(allEvents(store).every((e) => e.actor === '')).toBe(true);
  });

  it('refuses a payload above maxManifestSize with SIZE_INVALID and stores nothing', () => {
    const fits = ociManifest();
    const limit = fits.size + 10;
    const small = openStore(':memory:', { maxManifestSize: limit });
    try {
      const m = ociManifest({ annotations: { padding: 'x'.repeat(20) } });
      expect(m.size).toBeGreaterThan(limit);
      expect(caught(() => small.putManifest('acme/app', m.digest, m)).code).toBe('SIZE_INVALID');
      expect(small.catalog()).toEqual([]);
      small.putManifest('acme/app', fits.digest, fits);
      expect(small.statManifest('acme/app', fits.digest).size).toBe(fits.size);
    } finally {
      small.close();
    }
  });

  it('accepts a payload of exactly maxManifestSize bytes', () => {
    const m = ociManifest();
    const exact = openStore(':memory:', { maxManifestSize: m.size });
    try {
      exact.putManifest('acme/app', m.digest, m);
      expect(exact.statManifest('acme/app', m.digest).size).toBe(m.size);
    } finally {
      exact.close();
    }
  });
});

describe('putManifest with a tag (a push by tag)', () => {
  it('stores and tags in one change: CREATE MANIFEST then CREATE TAG', () => {
    const m = ociManifest();
    store.putManifest('acme/app', m.digest, m, { actor: 'alice' }, { tag: 'latest' });
    expect(store.getTag('acme/app', 'latest')).toEqual({ mediaType: m.mediaType, digest: m.digest, size: m.size });
    expect(allEvents(store).map((e) => `${e.type} ${e.object.type} ${e.actor}`)).toEqual([
      'CREATE REPOSITORY alice',
      'CREATE MANIFEST alice',
      'CREATE TAG alice',
    ]);
  });

  it('pushing the same manifest by the same tag again changes nothing', () => {
    const m = ociManifest();
    store.putManifest('acme/app', m.digest, m, undefined, { tag: 'latest' });
    const before = allEvents(store).length;
    store.putManifest('acme/app', m.digest, m, undefined, { tag: 'latest' });
    expect(allEvents(store)).toHaveLength(before);
  });

  it('pushing a present manifest by a new tag only tags it; by a taken tag moves it', () => {
    const a = ociManifest({ seed: 'a' });
    const b = ociManifest({ seed: 'b' });
    store.putManifest('acme/app', a.digest, a, undefined, { tag: 'latest' });
    store.putManifest('acme/app', b.digest, b);
    const before = allEvents(store).length;
    store.putManifest('acme/app', a.digest, a, undefined, { tag: 'v1' });
    store.putManifest('acme/app', b.digest, b, undefined, { tag: 'latest' });
    expect(allEvents(store).slice(before).map((e) => [e.type, e.object.id, e.previousDigest])).toEqual([
      ['CREATE', 'acme/app:v1', undefined],
      ['UPDATE', 'acme/app:latest', a.digest],
    ]);
    expect(store.tagHistory('acme/app', 'latest').map((h) => h.digest)).toEqual([b.digest, a.digest]);
  });

  it('a bad tag refuses the whole push with TAG_INVALID', () => {
    const m = ociManifest();
    expect(caught(() => store.putManifest('acme/app', m.digest, m, undefined, { tag: '.bad' })).code).toBe('TAG_INVALID');
    expect(store.catalog()).toEqual([]);
  });
});

describe('manifests are per repository', () => {
  it('another repository cannot get, stat, tag, list or delete it', () => {
    const m = ociManifest();
    put('acme/app', m);
    put('acme/other', ociManifest({ seed: 'other' }));
    expect(caught(() => store.getManifest('acme/other', m.digest)).code).toBe('MANIFEST_UNKNOWN');
    expect(caught(() => store.statManifest('acme/other', m.digest)).code).toBe('MANIFEST_UNKNOWN');
    expect(caught(() => store.putTag('acme/other', 'latest', { digest: m.digest })).code).toBe('MANIFEST_UNKNOWN');
    expect(store.lookupTags('acme/other', m.digest)).toEqual([]);
    expect(caught(() => store.deleteManifest('acme/other', m.digest)).code).toBe('MANIFEST_UNKNOWN');
    expect(store.getManifest('acme/app', m.digest).payload.equals(m.payload)).toBe(true);
  });

  it('the same digest in two repositories is two manifests: deleting one leaves the other', () => {
    const m = ociManifest();
    put('acme/app', m);
    put('acme/copy', m);
    store.deleteManifest('acme/app', m.digest);
    expect(caught(() => store.getManifest('acme/app', m.digest)).code).toBe('MANIFEST_UNKNOWN');
    expect(store.getManifest('acme/copy', m.digest).digest).toBe(m.digest);
  });

  it('a repository name that is a prefix of another shares nothing with it', () => {
    const m = ociManifest();
    put('acme/xy', m);
    expect(caught(() => store.getManifest('acme/x', m.digest)).code).toBe('NAME_UNKNOWN');
  });
});

describe('getManifest and statManifest', () => {
  it('getManifest returns repo, digest, mediaType, payload, size and createdAt', () => {
    const m = dockerManifest();
    const t0 = Date.now();
    put('acme/app', m);
    const got = store.getManifest('acme/app', m.digest);
    expect(Object.keys(got).sort()).toEqual(['createdAt', 'digest', 'mediaType', 'payload', 'repo', 'size']);
    expect(got).toMatchObject({ repo: 'acme/app', digest: m.digest, mediaType: MediaType.DockerManifest, size: m.size });
    expect(Buffer.isBuffer(got.payload)).toBe(true);
    expect(got.payload.equals(m.payload)).toBe(true);
    expect(got.createdAt).toBeInstanceOf(Date);
    expect(got.createdAt.getTime()).toBeGreaterThanOrEqual(t0);
    expect(got.createdAt.getTime()).toBeLessThanOrEqual(Date.now());
  });

  it('statManifest returns the same without the payload', () => {
    const m = ociManifest();
    put('acme/app', m);
    const { payload: _payload, ...info } = store.getManifest('acme/app', m.digest);
    expect(store.statManifest('acme/app', m.digest)).toEqual(info);
    expect('payload' in store.statManifest('acme/app', m.digest)).toBe(false);
  });

  it('a missing repository is NotFoundError NAME_UNKNOWN', () => {
    const m = ociManifest();
    for (const read of [() => store.getManifest('acme/none', m.digest), () => store.statManifest('acme/none', m.digest)]) {
      const error = caught(read);
      expect(error).toBeInstanceOf(NotFoundError);
      expect(error.code).toBe('NAME_UNKNOWN');
    }
  });

  it('a missing manifest in an existing repository is NotFoundError MANIFEST_UNKNOWN', () => {
    put('acme/app', ociManifest());
    const missing = ociManifest({ seed: 'missing' });
    for (const read of [() => store.getManifest('acme/app', missing.digest), () => store.statManifest('acme/app', missing.digest)]) {
      const error = caught(read);
      expect(error).toBeInstanceOf(NotFoundError);
      expect(error.code).toBe('MANIFEST_UNKNOWN');
    }
  });
});

describe('getManifestByReference', () => {
  it('reads by tag or by digest, parsed from a string or given split, with or without the bytes', () => {
    const m = ociManifest();
    put('acme/app', m);
    store.putTag('acme/app', 'v1', { digest: m.digest });
    const full = store.getManifest('acme/app', m.digest);
    const { payload: _payload, ...info } = full;
    for (const reference of ['v1', m.digest, { tag: 'v1' }, { digest: m.digest }]) {
      expect(store.getManifestByReference('acme/app', reference)).toEqual(full);
      expect(store.getManifestByReference('acme/app', reference, { head: true })).toEqual(info);
    }
  });

  it('follows a tag that moved, and never serves the manifest it left', () => {
    const [a, b] = [ociManifest({ seed: 'a' }), ociManifest({ seed: 'b' })];
    put('acme/app', a);
    put('acme/app', b);
    store.putTag('acme/app', 'latest', { digest: a.digest });
    store.putTag('acme/app', 'latest', { digest: b.digest });
    store.deleteManifest('acme/app', a.digest);
    expect(store.getManifestByReference('acme/app', 'latest').digest).toBe(b.digest);
  });

  it('answers NAME_UNKNOWN, MANIFEST_UNKNOWN, TAG_INVALID or DIGEST_INVALID as getTag and getManifest do', () => {
    put('acme/app', ociManifest());
    const missing = ociManifest({ seed: 'missing' }).digest;
    const cases: [() => unknown, string][] = [
      [() => store.getManifestByReference('acme/none', 'v1'), 'NAME_UNKNOWN'],
      [() => store.getManifestByReference('acme/none', missing, { head: true }), 'NAME_UNKNOWN'],
      [() => store.getManifestByReference('acme/app', 'nope'), 'MANIFEST_UNKNOWN'],
      [() => store.getManifestByReference('acme/app', { tag: 'nope' }, { head: true }), 'MANIFEST_UNKNOWN'],
      [() => store.getManifestByReference('acme/app', missing), 'MANIFEST_UNKNOWN'],
      [() => store.getManifestByReference('acme/app', 'Bad Tag'), 'TAG_INVALID'],
      [() => store.getManifestByReference('acme/app', { tag: 'Bad Tag' }), 'TAG_INVALID'],
      [() => store.getManifestByReference('acme/app', 'sha256:not-hex'), 'DIGEST_INVALID'],
      [() => store.getManifestByReference('acme/app', { digest: 'sha256:not-hex' }), 'DIGEST_INVALID'],
      [() => store.getManifestByReference('Acme', 'v1'), 'NAME_INVALID'],
    ];
    for (const [read, code] of cases) expect(caught(read).code).toBe(code);
  });
});

describe('deleteManifest', () => {
  it('removes the manifest and its tags, one DELETE TAG event each, then DELETE MANIFEST', () => {
    const m = ociManifest();
    const keep = ociManifest({ seed: 'keep' });
    put('acme/app', m);
    put('acme/app', keep);
    store.putTag('acme/app', 'v1', { digest: m.digest });
    store.putTag('acme/app', 'latest', { digest: m.digest });
    store.putTag('acme/app', 'stable', { digest: keep.digest });
    const before = allEvents(store).length;

    store.deleteManifest('acme/app', m.digest, { actor: 'bob' });

    const added = allEvents(store).slice(before);
    expect(added.map((e) => [e.type, e.object.type, e.object.id, e.actor])).toEqual([
      ['DELETE', 'TAG', 'acme/app:latest', 'bob'],
      ['DELETE', 'TAG', 'acme/app:v1', 'bob'],
      ['DELETE', 'MANIFEST', `acme/app@${m.digest}`, 'bob'],
    ]);
    expect(added[0]).toMatchObject({ repository: 'acme/app', tag: 'latest', digest: m.digest });
    expect(caught(() => store.getManifest('acme/app', m.digest)).code).toBe('MANIFEST_UNKNOWN');
    expect(caught(() => store.getTag('acme/app', 'v1')).code).toBe('MANIFEST_UNKNOWN');
    expect(store.allTags('acme/app')).toEqual(['stable']);
    expect(store.getTag('acme/app', 'stable').digest).toBe(keep.digest);
  });

  it('a manifest without tags writes only the DELETE MANIFEST event', () => {
    const m = ociManifest();
    put('acme/app', m);
    const before = allEvents(store).length;
    store.deleteManifest('acme/app', m.digest);
    expect(allEvents(store).slice(before).map((e) => `${e.type} ${e.object.type}`)).toEqual(['DELETE MANIFEST']);
  });

  it('a missing manifest is NotFoundError MANIFEST_UNKNOWN and writes no event', () => {
    put('acme/app', ociManifest());
    const before = allEvents(store).length;
    const error = caught(() => store.deleteManifest('acme/app', ociManifest({ seed: 'gone' }).digest));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.code).toBe('MANIFEST_UNKNOWN');
    expect(allEvents(store)).toHaveLength(before);
  });

  it('deleting twice fails the second time', () => {
    const m = ociManifest();
    put('acme/app', m);
    store.deleteManifest('acme/app', m.digest);
    expect(caught(() => store.deleteManifest('acme/app', m.digest)).code).toBe('MANIFEST_UNKNOWN');
  });

  it('a missing repository is NotFoundError NAME_UNKNOWN', () => {
    expect(caught(() => store.deleteManifest('acme/none', ociManifest().digest)).code).toBe('NAME_UNKNOWN');
  });

  it('refuses with MANIFEST_REFERENCED while an index in the same repository lists it, and allows it after', () => {
    const child = ociManifest();
    const parent = ociIndex([child.descriptor]);
    put('acme/app', child);
    put('acme/app', parent);
    const before = allEvents(store).length;
    const error = caught(() => store.deleteManifest('acme/app', child.digest));
    expect(error.code).toBe('MANIFEST_REFERENCED');
    expect(error.detail).toEqual({ parent: parent.digest });
    expect(error).not.toBeInstanceOf(NotFoundError);
    expect(store.statManifest('acme/app', child.digest).digest).toBe(child.digest);
    expect(allEvents(store)).toHaveLength(before);

    store.deleteManifest('acme/app', parent.digest);
    store.deleteManifest('acme/app', child.digest);
    expect(caught(() => store.statManifest('acme/app', child.digest)).code).toBe('MANIFEST_UNKNOWN');
  });

  it('a Docker manifest list protects its children too', () => {
    const child = dockerManifest();
    put('acme/app', child);
    put('acme/app', dockerList([child.descriptor]));
    expect(caught(() => store.deleteManifest('acme/app', child.digest)).code).toBe('MANIFEST_REFERENCED');
  });

  it('an index in another repository does not protect the manifest', () => {
    const child = ociManifest();
    put('acme/app', child);
    put('acme/other', child);
    put('acme/other', ociIndex([child.descriptor]));
    store.deleteManifest('acme/app', child.digest);
    expect(caught(() => store.statManifest('acme/app', child.digest)).code).toBe('MANIFEST_UNKNOWN');
    expect(caught(() => store.deleteManifest('acme/other', child.digest)).code).toBe('MANIFEST_REFERENCED');
  });

  it('records references even when the targets are absent: a child pushed after its index is protected', () => {
    const child = ociManifest();
    const parent = ociIndex([child.descriptor, absentManifest('never')]);
    put('acme/app', parent);
    put('acme/app', child);
    expect(caught(() => store.deleteManifest('acme/app', child.digest)).code).toBe('MANIFEST_REFERENCED');
  });

  it('an index whose children are absent can itself be deleted', () => {
    const parent = ociIndex([absentManifest('a'), absentManifest('b')]);
    put('acme/app', parent);
    store.deleteManifest('acme/app', parent.digest);
    expect(caught(() => store.statManifest('acme/app', parent.digest)).code).toBe('MANIFEST_UNKNOWN');
  });

  it('the repository stays after its last manifest is deleted', () => {
    const m = ociManifest();
    put('acme/app', m);
    store.deleteManifest('acme/app', m.digest);
    expect(store.catalog()).toEqual(['acme/app']);
    expect(store.allTags('acme/app')).toEqual([]);
  });
});

describe('referrers', () => {
  it('lists the manifests whose subject is the digest, with artifactType and annotations', () => {
    const subject = ociManifest();
    const sig = ociManifest({
      seed: 'sig',
      subject: subject.descriptor,
      config: blobDesc('sigcfg', 'application/vnd.example.signature.config.v1+json', 2),
      annotations: { 'org.example.signed-by': 'alice' },
    });
    const sbom = ociManifest({ seed: 'sbom', subject: subject.descriptor, artifactType: 'application/spdx+json' });
    const unrelated = ociManifest({ seed: 'unrelated', artifactType: 'application/spdx+json' });
    for (const m of [subject, sig, sbom, unrelated]) put('acme/app', m);

    const all = store.referrers('acme/app', subject.digest);
    expect(all).toHaveLength(2);
    expect(all).toContainEqual({
      mediaType: MediaType.OciManifest,
      digest: sig.digest,
      size: sig.size,
      artifactType: 'application/vnd.example.signature.config.v1+json',
      annotations: { 'org.example.signed-by': 'alice' },
    });
    expect(all).toContainEqual({ mediaType: MediaType.OciManifest, digest: sbom.digest, size: sbom.size, artifactType: 'application/spdx+json' });
  });

  it('filters by artifactType exactly', () => {
    const subject = ociManifest();
    const sbom = ociManifest({ seed: 'sbom', subject: subject.descriptor, artifactType: 'application/spdx+json' });
    const sig = ociManifest({ seed: 'sig', subject: subject.descriptor, artifactType: 'application/vnd.example.sig' });
    for (const m of [subject, sbom, sig]) put('acme/app', m);
    expect(store.referrers('acme/app', subject.digest, { artifactType: 'application/spdx+json' }).map((d) => d.digest)).toEqual([sbom.digest]);
    expect(store.referrers('acme/app', subject.digest, { artifactType: 'application/spdx' })).toEqual([]);
  });

  it('lists referrers of a subject that is not present (pushed before it)', () => {
    const subject = absentManifest('later');
    const sig = ociManifest({ seed: 'sig', subject, artifactType: 'application/vnd.example.sig' });
    put('acme/app', sig);
    expect(store.referrers('acme/app', subject.digest).map((d) => d.digest)).toEqual([sig.digest]);
  });

  it('an index can be a referrer', () => {
    const subject = ociManifest();
    const idx = ociIndex([absentManifest('x')], { subject: subject.descriptor, artifactType: 'application/vnd.example.bundle' });
    put('acme/app', subject);
    put('acme/app', idx);
    expect(store.referrers('acme/app', subject.digest)).toEqual([
      { mediaType: MediaType.OciIndex, digest: idx.digest, size: idx.size, artifactType: 'application/vnd.example.bundle' },
    ]);
  });

  it('is [] for an unknown digest and for an unknown repository', () => {
    put('acme/app', ociManifest());
    expect(store.referrers('acme/app', ociManifest({ seed: 'nobody' }).digest)).toEqual([]);
    expect(store.referrers('acme/none', ociManifest().digest)).toEqual([]);
  });

  it('only lists referrers of the same repository', () => {
    const subject = ociManifest();
    put('acme/app', subject);
    put('acme/other', ociManifest({ seed: 'sig', subject: subject.descriptor, artifactType: 'x/y' }));
    expect(store.referrers('acme/app', subject.digest)).toEqual([]);
  });
});
