// getManifest, statManifest, getManifestByReference, deleteManifest and
// referrers, case by case, on every backend.

import { describe, expect, it } from 'vitest';
import { NotFoundError } from 'regmeta';
import { MediaType, absentManifest, blobDesc, codeOf, dockerList, dockerManifest } from '../fixtures.js';
import { eventsOf, ociIndex, ociManifest, putBuiltAsync, rejection, type Built } from '../fixtures.js';
import { backends, storePerTest } from './backends.js';

describe.each(backends)('$name', (backend) => {
  const store = storePerTest(backend);

  const put = (repo: string, m: Built) => putBuiltAsync(store, repo, m);

  describe('manifests are per repository', () => {
    it('another repository cannot get, stat, tag, list or delete it', async () => {
      const m = ociManifest();
      await put('acme/app', m);
      await put('acme/other', ociManifest({ seed: 'other' }));
      expect(await codeOf(store.getManifest('acme/other', m.digest))).toBe('MANIFEST_UNKNOWN');
      expect(await codeOf(store.statManifest('acme/other', m.digest))).toBe('MANIFEST_UNKNOWN');
      expect(await codeOf(store.putTag('acme/other', 'latest', { digest: m.digest }))).toBe('MANIFEST_UNKNOWN');
      expect(await store.lookupTags('acme/other', m.digest)).toEqual([]);
      expect(await codeOf(store.deleteManifest('acme/other', m.digest))).toBe('MANIFEST_UNKNOWN');
      expect((await store.getManifest('acme/app', m.digest)).payload.equals(m.payload)).toBe(true);
    });

    it('the same digest in two repositories is two manifests: deleting one leaves the other', async () => {
      const m = ociManifest();
      await put('acme/app', m);
      await put('acme/copy', m);
      await store.deleteManifest('acme/app', m.digest);
      expect(await codeOf(store.getManifest('acme/app', m.digest))).toBe('MANIFEST_UNKNOWN');
      expect((await store.getManifest('acme/copy', m.digest)).digest).toBe(m.digest);
    });

    it('a repository name that is a prefix of another shares nothing with it', async () => {
      const m = ociManifest();
      await put('acme/xy', m);
      expect(await codeOf(store.getManifest('acme/x', m.digest))).toBe('NAME_UNKNOWN');
    });
  });

  describe('getManifest and statManifest', () => {
    it('getManifest returns repo, digest, mediaType, payload, size and createdAt', async () => {
      const m = dockerManifest();
      const t0 = Date.now();
      await put('acme/app', m);
      const got = await store.getManifest('acme/app', m.digest);
      expect(Object.keys(got).sort()).toEqual(['createdAt', 'digest', 'mediaType', 'payload', 'repo', 'size']);
      expect(got).toMatchObject({ repo: 'acme/app', digest: m.digest, mediaType: MediaType.DockerManifest, size: m.size });
      expect(Buffer.isBuffer(got.payload)).toBe(true);
      expect(got.payload.equals(m.payload)).toBe(true);
      expect(got.createdAt).toBeInstanceOf(Date);
      expect(got.createdAt.getTime()).toBeGreaterThanOrEqual(t0);
      expect(got.createdAt.getTime()).toBeLessThanOrEqual(Date.now());
    });

    it('statManifest returns the same without the payload', async () => {
      const m = ociManifest();
      await put('acme/app', m);
      const { payload: _payload, ...info } = await store.getManifest('acme/app', m.digest);
      expect(await store.statManifest('acme/app', m.digest)).toEqual(info);
      expect('payload' in (await store.statManifest('acme/app', m.digest))).toBe(false);
    });

    it('a missing repository is NotFoundError NAME_UNKNOWN', async () => {
      const m = ociManifest();
      for (const read of [() => store.getManifest('acme/none', m.digest), () => store.statManifest('acme/none', m.digest)]) {
        const error = await rejection(read());
        expect(error).toBeInstanceOf(NotFoundError);
        expect(error.code).toBe('NAME_UNKNOWN');
      }
    });

    it('a missing manifest in an existing repository is NotFoundError MANIFEST_UNKNOWN', async () => {
      await put('acme/app', ociManifest());
      const missing = ociManifest({ seed: 'missing' });
      for (const read of [() => store.getManifest('acme/app', missing.digest), () => store.statManifest('acme/app', missing.digest)]) {
        const error = await rejection(read());
        expect(error).toBeInstanceOf(NotFoundError);
        expect(error.code).toBe('MANIFEST_UNKNOWN');
      }
    });
  });

  describe('getManifestByReference', () => {
    it('reads by tag or by digest, parsed from a string or given split, with or without the bytes', async () => {
      const m = ociManifest();
      await put('acme/app', m);
      await store.putTag('acme/app', 'v1', { digest: m.digest });
      const full = await store.getManifest('acme/app', m.digest);
      const { payload: _payload, ...info } = full;
      for (const reference of ['v1', m.digest, { tag: 'v1' }, { digest: m.digest }]) {
        expect(await store.getManifestByReference('acme/app', reference)).toEqual(full);
        expect(await store.getManifestByReference('acme/app', reference, { head: true })).toEqual(info);
      }
    });

    it('follows a tag that moved, and never serves the manifest it left', async () => {
      const [a, b] = [ociManifest({ seed: 'a' }), ociManifest({ seed: 'b' })];
      await put('acme/app', a);
      await put('acme/app', b);
      await store.putTag('acme/app', 'latest', { digest: a.digest });
      await store.putTag('acme/app', 'latest', { digest: b.digest });
      await store.deleteManifest('acme/app', a.digest);
      expect((await store.getManifestByReference('acme/app', 'latest')).digest).toBe(b.digest);
    });

    it('answers NAME_UNKNOWN, MANIFEST_UNKNOWN, TAG_INVALID or DIGEST_INVALID as getTag and getManifest do', async () => {
      await put('acme/app', ociManifest());
      const missing = ociManifest({ seed: 'missing' }).digest;
      const cases: [() => Promise<unknown>, string][] = [
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
      for (const [read, expected] of cases) expect(await codeOf(read())).toBe(expected);
    });
  });

  describe('deleteManifest', () => {
    it('removes the manifest and its tags, one DELETE TAG event each, then DELETE MANIFEST', async () => {
      const m = ociManifest();
      const keep = ociManifest({ seed: 'keep' });
      await put('acme/app', m);
      await put('acme/app', keep);
      await store.putTag('acme/app', 'v1', { digest: m.digest });
      await store.putTag('acme/app', 'latest', { digest: m.digest });
      await store.putTag('acme/app', 'stable', { digest: keep.digest });
      const before = (await eventsOf(store)).length;

      await store.deleteManifest('acme/app', m.digest, { actor: 'bob' });

      const added = (await eventsOf(store)).slice(before);
      expect(added.map((e) => [e.type, e.object.type, e.object.id, e.actor])).toEqual([
        ['DELETE', 'TAG', 'acme/app:latest', 'bob'],
        ['DELETE', 'TAG', 'acme/app:v1', 'bob'],
        ['DELETE', 'MANIFEST', `acme/app@${m.digest}`, 'bob'],
      ]);
      expect(added[0]).toMatchObject({ repository: 'acme/app', tag: 'latest', digest: m.digest });
      expect(await codeOf(store.getManifest('acme/app', m.digest))).toBe('MANIFEST_UNKNOWN');
      expect(await codeOf(store.getTag('acme/app', 'v1'))).toBe('MANIFEST_UNKNOWN');
      expect(await store.allTags('acme/app')).toEqual(['stable']);
      expect((await store.getTag('acme/app', 'stable')).digest).toBe(keep.digest);
    });

    it('a manifest without tags writes only the DELETE MANIFEST event', async () => {
      const m = ociManifest();
      await put('acme/app', m);
      const before = (await eventsOf(store)).length;
      await store.deleteManifest('acme/app', m.digest);
      expect((await eventsOf(store)).slice(before).map((e) => `${e.type} ${e.object.type}`)).toEqual(['DELETE MANIFEST']);
    });

    it('a missing manifest is NotFoundError MANIFEST_UNKNOWN and writes no event', async () => {
      await put('acme/app', ociManifest());
      const before = (await eventsOf(store)).length;
      const error = await rejection(store.deleteManifest('acme/app', ociManifest({ seed: 'gone' }).digest));
      expect(error).toBeInstanceOf(NotFoundError);
      expect(error.code).toBe('MANIFEST_UNKNOWN');
      expect(await eventsOf(store)).toHaveLength(before);
    });

    it('deleting twice fails the second time', async () => {
      const m = ociManifest();
      await put('acme/app', m);
      await store.deleteManifest('acme/app', m.digest);
      expect(await codeOf(store.deleteManifest('acme/app', m.digest))).toBe('MANIFEST_UNKNOWN');
    });

    it('a missing repository is NotFoundError NAME_UNKNOWN', async () => {
      const error = await rejection(store.deleteManifest('acme/none', ociManifest().digest));
      expect(error).toBeInstanceOf(NotFoundError);
      expect(error.code).toBe('NAME_UNKNOWN');
    });

    it('refuses with MANIFEST_REFERENCED while an index in the same repository lists it, and allows it after', async () => {
      const child = ociManifest();
      const parent = ociIndex([child.descriptor]);
      await put('acme/app', child);
      await put('acme/app', parent);
      const before = (await eventsOf(store)).length;
      const error = await rejection(store.deleteManifest('acme/app', child.digest));
      expect(error.code).toBe('MANIFEST_REFERENCED');
      expect(error.detail).toEqual({ parent: parent.digest });
      expect(error).not.toBeInstanceOf(NotFoundError);
      expect((await store.statManifest('acme/app', child.digest)).digest).toBe(child.digest);
      expect(await eventsOf(store)).toHaveLength(before);

      await store.deleteManifest('acme/app', parent.digest);
      await store.deleteManifest('acme/app', child.digest);
      expect(await codeOf(store.statManifest('acme/app', child.digest))).toBe('MANIFEST_UNKNOWN');
    });

    it('a Docker manifest list protects its children too', async () => {
      const child = dockerManifest();
      await put('acme/app', child);
      await put('acme/app', dockerList([child.descriptor]));
      expect(await codeOf(store.deleteManifest('acme/app', child.digest))).toBe('MANIFEST_REFERENCED');
    });

    it('an index in another repository does not protect the manifest', async () => {
      const child = ociManifest();
      await put('acme/app', child);
      await put('acme/other', child);
      await put('acme/other', ociIndex([child.descriptor]));
      await store.deleteManifest('acme/app', child.digest);
      expect(await codeOf(store.statManifest('acme/app', child.digest))).toBe('MANIFEST_UNKNOWN');
      expect(await codeOf(store.deleteManifest('acme/other', child.digest))).toBe('MANIFEST_REFERENCED');
    });

    it('records references even when the targets are absent: a child pushed after its index is protected', async () => {
      const child = ociManifest();
      const parent = ociIndex([child.descriptor, absentManifest('never')]);
      await put('acme/app', parent);
      await put('acme/app', child);
      expect(await codeOf(store.deleteManifest('acme/app', child.digest))).toBe('MANIFEST_REFERENCED');
    });

    it('an index whose children are absent can itself be deleted', async () => {
      const parent = ociIndex([absentManifest('a'), absentManifest('b')]);
      await put('acme/app', parent);
      await store.deleteManifest('acme/app', parent.digest);
      expect(await codeOf(store.statManifest('acme/app', parent.digest))).toBe('MANIFEST_UNKNOWN');
    });

    it('the repository stays after its last manifest is deleted', async () => {
      const m = ociManifest();
      await put('acme/app', m);
      await store.deleteManifest('acme/app', m.digest);
      expect(await store.catalog()).toEqual(['acme/app']);
      expect(await store.allTags('acme/app')).toEqual([]);
    });
  });

  describe('referrers', () => {
    it('lists the manifests whose subject is the digest, with artifactType and annotations', async () => {
      const subject = ociManifest();
      const sig = ociManifest({
        seed: 'sig',
        subject: subject.descriptor,
        config: blobDesc('sigcfg', 'application/vnd.example.signature.config.v1+json', 2),
        annotations: { 'org.example.signed-by': 'alice' },
      });
      const sbom = ociManifest({ seed: 'sbom', subject: subject.descriptor, artifactType: 'application/spdx+json' });
      const unrelated = ociManifest({ seed: 'unrelated', artifactType: 'application/spdx+json' });
      for (const m of [subject, sig, sbom, unrelated]) await put('acme/app', m);

      const all = await store.referrers('acme/app', subject.digest);
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

    it('filters by artifactType exactly', async () => {
      const subject = ociManifest();
      const sbom = ociManifest({ seed: 'sbom', subject: subject.descriptor, artifactType: 'application/spdx+json' });
      const sig = ociManifest({ seed: 'sig', subject: subject.descriptor, artifactType: 'application/vnd.example.sig' });
      for (const m of [subject, sbom, sig]) await put('acme/app', m);
      const filtered = await store.referrers('acme/app', subject.digest, { artifactType: 'application/spdx+json' });
      expect(filtered.map((d) => d.digest)).toEqual([sbom.digest]);
      expect(await store.referrers('acme/app', subject.digest, { artifactType: 'application/spdx' })).toEqual([]);
    });

    it('lists referrers of a subject that is not present (pushed before it)', async () => {
      const subject = absentManifest('later');
      const sig = ociManifest({ seed: 'sig', subject, artifactType: 'application/vnd.example.sig' });
      await put('acme/app', sig);
      expect((await store.referrers('acme/app', subject.digest)).map((d) => d.digest)).toEqual([sig.digest]);
    });

    it('an index can be a referrer', async () => {
      const subject = ociManifest();
      const idx = ociIndex([absentManifest('x')], { subject: subject.descriptor, artifactType: 'application/vnd.example.bundle' });
      await put('acme/app', subject);
      await put('acme/app', idx);
      expect(await store.referrers('acme/app', subject.digest)).toEqual([
        { mediaType: MediaType.OciIndex, digest: idx.digest, size: idx.size, artifactType: 'application/vnd.example.bundle' },
      ]);
    });

    it('is [] for an unknown digest and for an unknown repository', async () => {
      await put('acme/app', ociManifest());
      expect(await store.referrers('acme/app', ociManifest({ seed: 'nobody' }).digest)).toEqual([]);
      expect(await store.referrers('acme/none', ociManifest().digest)).toEqual([]);
    });

    it('only lists referrers of the same repository', async () => {
      const subject = ociManifest();
      await put('acme/app', subject);
      await put('acme/other', ociManifest({ seed: 'sig', subject: subject.descriptor, artifactType: 'x/y' }));
      expect(await store.referrers('acme/app', subject.digest)).toEqual([]);
    });
  });
});
