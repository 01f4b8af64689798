// The Content Discovery and Content Management workflows of the v1.1.1
// conformance suite (03_discovery_test.go, 04_management_test.go); see
// conformance-v111.test.ts for the versions and settings.

import { describe, expect, it } from 'vitest';
import { MT, type Reply } from './conformance-client.js';
import * as d from './conformance-v111-data.js';
import type { Harness } from './conformance-v111-harness.js';

type Index = { mediaType: string; schemaVersion: number; manifests: { digest: string; annotations?: Record<string, string> }[] };

/** 03_discovery_test.go */
export function discoveryWorkflow(h: Harness): void {
  const referrers = async (digest: string, query: Record<string, string> = {}): Promise<{ reply: Reply; index: Index }> => {
    const reply = await h.send('GET', `/v2/${h.name}/referrers/${digest}`, { query });
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toBe(MT.index);
    return { reply, index: JSON.parse(reply.body.toString()) as Index };
  };
  const expectAnnotated = (index: Index) => {
    for (const m of index.manifests) {
      expect(Object.keys(m.annotations ?? {})).toHaveLength(1);
      expect(m.annotations![d.annotationKey]).toBe(d.annotationValues[m.digest]);
    }
  };
  /** Pushes a referrer by digest: 2xx, and OCI-Subject names its subject. */
  const pushReferrer = async (b: d.Blob, subject: d.Blob, type: string = MT.image) => {
    const reply = await h.putManifest(b.digest, b, type);
    h.expect2xx(reply);
    expect(reply.headers.get('oci-subject')).toBe(subject.digest);
  };
  let numTags = 4;
  let tagList: string[] = [];

  describe('03_discovery_test.go: Content Discovery', () => {
    describe('Setup', () => {
      it('Populate registry with test blob', () => h.populate(d.configs[2]));
      it('Populate registry with test layer', () => h.populate(d.layer));
      it('Populate registry with test tags', async () => {
        for (let i = 0; i < numTags; i++) h.expect2xx(await h.putManifest(`test${i}`, d.manifests[2]));
        tagList = (await h.tagList()).tags;
      });
      it('References setup', async () => {
        expect(d.emptyJSON.digest).toBe('sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
        await h.populate(d.emptyJSON);
        // Referrers pushed before their subject…
        await h.populate(d.refBlobA);
        await pushReferrer(d.refs.aConfig, d.manifests[4]);
        await pushReferrer(d.refs.aLayer, d.manifests[4]);
        await pushReferrer(d.refsIndex, d.manifests[4], MT.index);
        await h.populate(d.configs[4]);
        await h.populate(d.layer);
        h.expect2xx(await h.putManifest('tagtest0', d.manifests[4]));
        // …and after it, and one whose subject is not there.
        await h.populate(d.refBlobB);
        await pushReferrer(d.refs.bConfig, d.manifests[4]);
        await pushReferrer(d.refs.bLayer, d.manifests[4]);
        await pushReferrer(d.refs.cLayer, d.manifests[3]);
      });
    });

    describe('Test content discovery endpoints (listing tags)', () => {
      it('GET request to list tags should yield 200 response', async () => {
        const { reply, tags } = await h.tagList();
        expect(reply.status).toBe(200);
        tagList = tags;
        numTags = tags.length;
        expect(tags).toEqual(['tagtest0', 'test0', 'test1', 'test2', 'test3']);
      });
      it('GET number of tags should be limitable by `n` query parameter', async () => {
        const n = Math.floor(numTags / 2);
        const { reply, tags } = await h.tagList({ n: String(n) });
        expect(reply.status).toBe(200);
        expect(tags).toHaveLength(n);
        tagList = tags;
      });
      it('GET start of tag is set by `last` query parameter', async () => {
        const n = Math.floor(numTags / 2);
        const first = (await h.tagList({ n: String(n) })).tags;
        const { reply, tags } = await h.tagList({ n: String(n), last: first[n - 1] });
        expect(reply.status).toBe(200);
        expect(tags.length).toBeLessThanOrEqual(n);
        // The suite checks its earlier page here; the page after `last` must leave `last` out.
        expect(first).toContain(first[n - 1]);
        expect(tags).not.toContain(first[n - 1]);
      });
    });

    describe('Test content discovery endpoints (listing references)', () => {
      it('GET request to nonexistent blob should result in empty 200 response', async () => {
        expect((await referrers(d.dummyDigest)).index.manifests).toHaveLength(0);
      });
      it('GET request to existing blob should yield 200', async () => {
        const { index } = await referrers(d.manifests[4].digest);
        expect(index.manifests).toHaveLength(5);
        expect(index.manifests[0].digest).not.toBe(index.manifests[1].digest);
        expectAnnotated(index);
      });
      it('GET request to existing blob with filter should yield 200', async () => {
        const { reply, index } = await referrers(d.manifests[4].digest, { artifactType: d.artifactTypeA });
        // The suite accepts an unfiltered answer with a warning; regmeta filters.
        expect(reply.headers.get('oci-filters-applied')).toBe('artifactType');
        expect(index.manifests).toHaveLength(2);
        expectAnnotated(index);
      });
      it('GET request to missing manifest should yield 200', async () => {
        const { index } = await referrers(d.manifests[3].digest);
        expect(index.manifests.map((m) => m.digest)).toEqual([d.refs.cLayer.digest]);
      });
    });

    describe('Teardown', () => {
      const manifests = [d.refsIndex, d.manifests[2], d.manifests[4], d.refs.aConfig, d.refs.aLayer, 'tagtest0', d.refs.bConfig, d.refs.bLayer, d.refs.cLayer];
      it('Delete created manifest & associated tags', async () => {
        for (const m of manifests) h.expectOneOf(await h.del('manifests', typeof m === 'string' ? m : m.digest), [405, 404]);
      });
      it('Delete config blob created in tests', async () => h.expectOneOf(await h.del('blobs', d.configs[2].digest), [405]));
      it('Delete layer blob created in setup', async () => h.expectOneOf(await h.del('blobs', d.layer.digest), [405]));
      it('References teardown', async () => {
        for (const m of [d.refsIndex, d.refs.aConfig, d.refs.aLayer, d.manifests[4], d.refs.bConfig, d.refs.bLayer]) {
          h.expectOneOf(await h.del('manifests', m.digest), [405, 404]);
        }
        for (const b of [d.configs[4], d.refBlobA, d.refBlobB, d.emptyJSON]) h.expectOneOf(await h.del('blobs', b.digest), [405, 404]);
      });
    });
  });
}

/** 04_management_test.go */
export function managementWorkflow(h: Harness): void {
  const tagToDelete = 'tagtest0';
  let numTags = 0;
  let blobDeleteAllowed = true;

  describe('04_management_test.go: Content Management', () => {
    describe('Setup', () => {
      it('Populate registry with test config blob', () => h.populate(d.configs[3]));
      it('Populate registry with test layer', () => h.populate(d.layer));
      it('Populate registry with test tag', async () => h.expect2xx(await h.putManifest(tagToDelete, d.manifests[3])));
      it('Check how many tags there are before anything gets deleted', async () => {
        const { reply, tags } = await h.tagList();
        expect(reply.status).toBe(200);
        numTags = tags.length;
      });
    });

    describe('Manifest delete', () => {
      it('DELETE request to manifest tag should return 202, unless tag deletion is disallowed (400/405)', async () => {
        const reply = await h.del('manifests', tagToDelete);
        expect([400, 202, 405]).toContain(reply.status);
        if (reply.status === 400) expect((JSON.parse(reply.body.toString()) as { errors: { code: string }[] }).errors[0].code).toBe('UNSUPPORTED');
      });
      it('DELETE request to manifest (digest) should yield 202 response unless already deleted', async () => {
        expect([202, 404]).toContain((await h.del('manifests', d.manifests[3].digest)).status);
      });
      it('GET request to deleted manifest URL should yield 404 response, unless delete is disallowed', async () => {
        expect([404, 200]).toContain((await h.getManifest('GET', d.manifests[3].digest)).status);
      });
      it('GET request to tags list should reflect manifest deletion', async () => {
        const { reply, tags } = await h.tagList();
        expect(reply.status).toBe(200);
        expect(tags.length).toBeLessThan(numTags);
      });
    });

    describe('Blob delete', () => {
      it('DELETE request to blob URL should yield 202 response', async () => {
        expect([202, 404, 405]).toContain((await h.del('blobs', d.configs[3].digest)).status);
        const layer = await h.del('blobs', d.layer.digest);
        expect([202, 404, 405]).toContain(layer.status);
        blobDeleteAllowed = layer.status !== 405;
      });
      it('GET request to deleted blob URL should yield 404 response', async (ctx) => {
        if (!blobDeleteAllowed) return ctx.skip();
        expect((await h.send('GET', `/v2/${h.name}/blobs/${d.configs[3].digest}`)).status).toBe(404);
      });
    });
  });
}
