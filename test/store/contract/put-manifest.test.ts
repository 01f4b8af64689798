// putManifest, case by case: digests, what it returns, media types, the bytes
// as stored, limits, and a push by tag. On every backend.

import { describe, expect, it } from 'vitest';
import { MediaType, blobDesc, built, digestOf, dockerList, dockerManifest } from '../fixtures.js';
import { eventsOf, ociIndex, ociManifest, putBuiltAsync, rejection, type Built } from '../fixtures.js';
import { backends, storePerTest } from './backends.js';

describe.each(backends)('$name', (backend) => {
  const store = storePerTest(backend);

  const put = (repo: string, m: Built, actor?: string) => putBuiltAsync(store, repo, m, actor);

  describe('putManifest: digest verification', () => {
    it('accepts a manifest whose sha256 digest matches', async () => {
      const m = ociManifest();
      await put('acme/app', m);
      expect((await store.getManifest('acme/app', m.digest)).digest).toBe(m.digest);
    });

    it('accepts a manifest whose sha512 digest matches', async () => {
      const m = built(MediaType.OciManifest, ociManifest().payload, 'sha512');
      expect(m.digest).toMatch(/^sha512:[0-9a-f]{128}$/);
      await put('acme/app', m);
      expect((await store.getManifest('acme/app', m.digest)).payload.equals(m.payload)).toBe(true);
    });

    it('refuses a digest that is not the hash of the payload with DIGEST_INVALID', async () => {
      const m = ociManifest();
      const other = ociManifest({ seed: 'other' });
      expect((await rejection(store.putManifest('acme/app', other.digest, m))).code).toBe('DIGEST_INVALID');
      expect(await store.catalog()).toEqual([]);
    });

    it('refuses a sha512 digest of other bytes with DIGEST_INVALID', async () => {
      const m = ociManifest();
      const wrong = digestOf('something else', 'sha512');
      expect((await rejection(store.putManifest('acme/app', wrong, m))).code).toBe('DIGEST_INVALID');
    });

    it('refuses the sha256 hex of the payload labelled sha512', async () => {
      const m = ociManifest();
      expect((await rejection(store.putManifest('acme/app', m.digest.replace('sha256', 'sha512'), m))).code).toBe('DIGEST_INVALID');
    });

    it('takes the sha256 of the payload when no digest is given (a push by tag)', async () => {
      const m = ociManifest();
      expect(await store.putManifest('acme/app', undefined, m, undefined, { tag: 'v1' })).toEqual({ digest: m.digest });
      expect((await store.getTag('acme/app', 'v1')).digest).toBe(m.digest);
    });
  });

  describe('putManifest: what it returns', () => {
    it('the digest, and the subject when the manifest has one: what a registry answers a push with', async () => {
      const subject = ociManifest({ seed: 'subject' });
      const referrer = ociManifest({ seed: 'sig', subject: subject.descriptor });
      expect(await store.putManifest('acme/app', subject.digest, subject)).toEqual({ digest: subject.digest });
      expect(await store.putManifest('acme/app', referrer.digest, referrer)).toEqual({ digest: referrer.digest, subject: subject.digest });
      // Again, as stored already: the same answer.
      expect(await store.putManifest('acme/app', undefined, referrer)).toEqual({ digest: referrer.digest, subject: subject.digest });
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
    ])('accepts a %s and reports its mediaType', async (_name, make) => {
      const m = make();
      await put('acme/app', m);
      const stored = await store.getManifest('acme/app', m.digest);
      expect(stored.mediaType).toBe(m.mediaType);
    });

    it('refuses a payload whose mediaType disagrees with the declared one with MANIFEST_INVALID', async () => {
      const m = ociManifest({ payloadMediaType: MediaType.DockerManifest });
      expect((await rejection(put('acme/app', m))).code).toBe('MANIFEST_INVALID');
    });

    it('refuses a Docker manifest declared as an OCI index with MANIFEST_INVALID', async () => {
      const m = dockerManifest();
      const pending = store.putManifest('acme/app', m.digest, { mediaType: MediaType.OciIndex, payload: m.payload });
      expect((await rejection(pending)).code).toBe('MANIFEST_INVALID');
    });

    it('refuses a Docker manifest whose payload leaves out its mediaType with MANIFEST_INVALID', async () => {
      const m = dockerManifest({ omitMediaType: true });
      expect((await rejection(put('acme/app', m))).code).toBe('MANIFEST_INVALID');
    });

    it('refuses an unsupported manifest media type with MANIFEST_INVALID', async () => {
      const m = built('application/vnd.docker.distribution.manifest.v1+json', '{"schemaVersion":1}');
      expect((await rejection(put('acme/app', m))).code).toBe('MANIFEST_INVALID');
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
    ])('refuses a payload that is %s with MANIFEST_INVALID', async (_name, text) => {
      const m = built(MediaType.OciManifest, text);
      expect((await rejection(put('acme/app', m))).code).toBe('MANIFEST_INVALID');
      expect(await store.catalog()).toEqual([]);
    });

    // A valid manifest with an extra field `value`.
    const withField = (value: string) => built(MediaType.OciManifest, `${ociManifest().payload.toString().slice(0, -1)},"x":${value}}`);

    it('takes nesting up to limits.maxManifestDepth levels and refuses one more with MANIFEST_INVALID', async () => {
      const depth = store.limits.maxManifestDepth;
      // The manifest object itself is the first level.
      const arrays = depth - 1;
      await put('acme/app', withField(`${'['.repeat(arrays)}${']'.repeat(arrays)}`));
      const objects = depth;
      const error = await rejection(put('acme/app', withField(`${'{"a":'.repeat(objects)}1${'}'.repeat(objects)}`)));
      expect(error.code).toBe('MANIFEST_INVALID');
      expect(error.message).toMatch(/deeper than/);
    });

    it('does not count brackets inside strings, escaped quotes included', async () => {
      // The JSON string \"[[[…{ : an escaped backslash, an escaped quote, then brackets.
      const text = `"\\\\\\"${'['.repeat(10_000)}{"`;
      expect(JSON.parse(text)).toMatch(/^\\"\[+\{$/);
      const m = await put('acme/app', withField(text));
      expect((await store.statManifest('acme/app', m.digest)).size).toBe(m.size);
    });

    it('refuses a valid manifest behind a UTF-8 BOM with MANIFEST_INVALID, naming the BOM', async () => {
      const m = built(MediaType.OciManifest, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), ociManifest().payload]));
      const error = await rejection(put('acme/app', m));
      expect(error.code).toBe('MANIFEST_INVALID');
      expect(error.message).toMatch(/byte order mark/);
      expect(await store.catalog()).toEqual([]);
    });

    it('refuses bytes that are not UTF-8 with MANIFEST_INVALID', async () => {
      const m = built(MediaType.OciManifest, Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
      expect((await rejection(put('acme/app', m))).code).toBe('MANIFEST_INVALID');
    });
  });

  describe('putManifest: storage', () => {
    it('stores the bytes exactly, whitespace and key order included', async () => {
      const text = `{\n  "schemaVersion": 2,\n\t"mediaType": "${MediaType.OciManifest}",\n  "layers": [],\n  "config": ${JSON.stringify(blobDesc('c'))}   \n}\n\n`;
      const m = built(MediaType.OciManifest, text);
      await put('acme/app', m);
      const stored = await store.getManifest('acme/app', m.digest);
      expect(stored.payload.toString()).toBe(text);
      expect(stored.size).toBe(Buffer.byteLength(text));
      expect(digestOf(stored.payload)).toBe(m.digest);
    });

    it('stores a payload given as a view into a larger buffer, and only its bytes', async () => {
      const m = ociManifest();
      const big = Buffer.concat([Buffer.from('garbage before'), m.payload, Buffer.from('garbage after')]);
      const view = new Uint8Array(big.buffer, big.byteOffset + 'garbage before'.length, m.size);
      await store.putManifest('acme/app', m.digest, { mediaType: m.mediaType, payload: view });
      expect((await store.getManifest('acme/app', m.digest)).payload.equals(m.payload)).toBe(true);
    });

    it('creates the repository on first use, in the catalog and with a CREATE REPOSITORY event', async () => {
      const m = ociManifest();
      await put('acme/app', m, 'alice');
      expect(await store.catalog()).toEqual(['acme/app']);
      const events = await eventsOf(store);
      expect(events.map((e) => [e.type, e.object.type, e.object.id, e.actor])).toEqual([
        ['CREATE', 'REPOSITORY', 'acme/app', 'alice'],
        ['CREATE', 'MANIFEST', `acme/app@${m.digest}`, 'alice'],
      ]);
      expect(events[1]).toMatchObject({ repository: 'acme/app', digest: m.digest });
    });

    it('creates the repository only once: a second manifest writes no CREATE REPOSITORY', async () => {
      await put('acme/app', ociManifest({ seed: 'a' }));
      await put('acme/app', ociManifest({ seed: 'b' }));
      const repoEvents = (await eventsOf(store)).filter((e) => e.object.type === 'REPOSITORY');
      expect(repoEvents).toHaveLength(1);
    });

    it('treats putting the same manifest again as a no-op: no event, createdAt unchanged', async () => {
      const m = ociManifest();
      await put('acme/app', m);
      const first = await store.statManifest('acme/app', m.digest);
      const before = (await eventsOf(store)).length;
      await put('acme/app', m);
      expect(await eventsOf(store)).toHaveLength(before);
      expect(await store.statManifest('acme/app', m.digest)).toEqual(first);
    });

    it('records an anonymous actor as the empty string', async () => {
      await put('acme/app', ociManifest());
      expect((await eventsOf(store)).every((e) => e.actor === '')).toBe(true);
    });

    it('refuses a payload above maxManifestSize with SIZE_INVALID and stores nothing', async () => {
      const fits = ociManifest();
      const limit = fits.size + 10;
      const small = await backend.open({ maxManifestSize: limit });
      try {
        const m = ociManifest({ annotations: { padding: 'x'.repeat(20) } });
        expect(m.size).toBeGreaterThan(limit);
        expect((await rejection(small.store.putManifest('acme/app', m.digest, m))).code).toBe('SIZE_INVALID');
        expect(await small.store.catalog()).toEqual([]);
        await small.store.putManifest('acme/app', fits.digest, fits);
        expect((await small.store.statManifest('acme/app', fits.digest)).size).toBe(fits.size);
      } finally {
        await small.cleanup();
      }
    });

    it('accepts a payload of exactly maxManifestSize bytes', async () => {
      const m = ociManifest();
      const exact = await backend.open({ maxManifestSize: m.size });
      try {
        await exact.store.putManifest('acme/app', m.digest, m);
        expect((await exact.store.statManifest('acme/app', m.digest)).size).toBe(m.size);
      } finally {
        await exact.cleanup();
      }
    });
  });

  describe('putManifest with a tag (a push by tag)', () => {
    it('stores and tags in one change: CREATE MANIFEST then CREATE TAG', async () => {
      const m = ociManifest();
      await store.putManifest('acme/app', m.digest, m, { actor: 'alice' }, { tag: 'latest' });
      expect(await store.getTag('acme/app', 'latest')).toEqual({ mediaType: m.mediaType, digest: m.digest, size: m.size });
      expect((await eventsOf(store)).map((e) => `${e.type} ${e.object.type} ${e.actor}`)).toEqual([
        'CREATE REPOSITORY alice',
        'CREATE MANIFEST alice',
        'CREATE TAG alice',
      ]);
    });

    it('pushing the same manifest by the same tag again changes nothing', async () => {
      const m = ociManifest();
      await store.putManifest('acme/app', m.digest, m, undefined, { tag: 'latest' });
      const before = (await eventsOf(store)).length;
      await store.putManifest('acme/app', m.digest, m, undefined, { tag: 'latest' });
      expect(await eventsOf(store)).toHaveLength(before);
    });

    it('pushing a present manifest by a new tag only tags it; by a taken tag moves it', async () => {
      const a = ociManifest({ seed: 'a' });
      const b = ociManifest({ seed: 'b' });
      await store.putManifest('acme/app', a.digest, a, undefined, { tag: 'latest' });
      await store.putManifest('acme/app', b.digest, b);
      const before = (await eventsOf(store)).length;
      await store.putManifest('acme/app', a.digest, a, undefined, { tag: 'v1' });
      await store.putManifest('acme/app', b.digest, b, undefined, { tag: 'latest' });
      expect((await eventsOf(store)).slice(before).map((e) => [e.type, e.object.id, e.previousDigest])).toEqual([
        ['CREATE', 'acme/app:v1', undefined],
        ['UPDATE', 'acme/app:latest', a.digest],
      ]);
      expect((await store.tagHistory('acme/app', 'latest')).map((h) => h.digest)).toEqual([b.digest, a.digest]);
    });

    it('a bad tag refuses the whole push with TAG_INVALID', async () => {
      const m = ociManifest();
      expect((await rejection(store.putManifest('acme/app', m.digest, m, undefined, { tag: '.bad' }))).code).toBe('TAG_INVALID');
      expect(await store.catalog()).toEqual([]);
    });
  });
});
