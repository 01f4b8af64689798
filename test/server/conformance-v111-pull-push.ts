// The Pull and Push workflows of the v1.1.1 conformance suite (01_pull_test.go,
// 02_push_test.go); see conformance-v111.test.ts for the versions and settings.

import { describe, expect, it } from 'vitest';
import { SPEC_CODES, MT, type Reply } from './conformance-client.js';
import * as d from './conformance-v111-data.js';
import type { Harness } from './conformance-v111-harness.js';

/** 01_pull_test.go */
export function pullWorkflow(h: Harness): void {
  const { send, del } = h;
  describe('01_pull_test.go: Pull', () => {
    let tag = '';
    describe('Setup', () => {
      it('Populate registry with test blob', () => h.populate(d.configs[0]));
      it('Populate registry with test blob', () => h.populate(d.configs[1]));
      it('Populate registry with test layer', () => h.populate(d.layer));
      it('Populate registry with test manifest', async () => {
        tag = 'tagtest0';
        h.expect2xx(await h.putManifest(tag, d.manifests[0]));
      });
      it('Populate registry with test manifest', async () => h.expect2xx(await h.putManifest(d.manifests[1].digest, d.manifests[1])));
    });

    describe('Pull blobs', () => {
      it('HEAD request to nonexistent blob should result in 404 response', async () => {
        expect((await send('HEAD', `/v2/${h.name}/blobs/${d.dummyDigest}`)).status).toBe(404);
      });
      it('HEAD request to existing blob should yield 200', async () => {
        const head = await send('HEAD', `/v2/${h.name}/blobs/${d.configs[0].digest}`);
        expect(head.status).toBe(200);
        h.client.verifyDigest(head, d.configs[0].digest);
      });
      it('GET nonexistent blob should result in 404 response', async () => {
        expect((await send('GET', `/v2/${h.name}/blobs/${d.dummyDigest}`)).status).toBe(404);
      });
      it('GET request to existing blob URL should yield 200', async () => {
        expect((await send('GET', `/v2/${h.name}/blobs/${d.configs[0].digest}`)).status).toBe(200);
      });
    });

    describe('Pull manifests', () => {
      const pulled = async (method: string, reference: string, digest: string) => {
        const reply = await h.getManifest(method, reference);
        expect(reply.status).toBe(200);
        h.client.verifyDigest(reply, digest);
      };
      it('HEAD request to nonexistent manifest should return 404', async () => {
        expect((await h.getManifest('HEAD', d.nonexistentManifest)).status).toBe(404);
      });
      it('HEAD request to manifest[0] path (digest) should yield 200 response', () => pulled('HEAD', d.manifests[0].digest, d.manifests[0].digest));
      it('HEAD request to manifest[1] path (digest) should yield 200 response', () => pulled('HEAD', d.manifests[1].digest, d.manifests[1].digest));
      it('HEAD request to manifest path (tag) should yield 200 response', () => pulled('HEAD', tag, d.manifests[0].digest));
      it('GET nonexistent manifest should return 404', async () => {
        expect((await h.getManifest('GET', d.nonexistentManifest)).status).toBe(404);
      });
      it('GET request to manifest[0] path (digest) should yield 200 response', () => pulled('GET', d.manifests[0].digest, d.manifests[0].digest));
      it('GET request to manifest[1] path (digest) should yield 200 response', () => pulled('GET', d.manifests[1].digest, d.manifests[1].digest));
      it('GET request to manifest path (tag) should yield 200 response', () => pulled('GET', tag, d.manifests[0].digest));
    });

    describe('Error codes', () => {
      const conforming = async (method: string) => {
        const reply = await send(method, `/v2/${h.name}/manifests/sha256:totallywrong`, {
          headers: { 'Content-Type': MT.image },
          body: d.invalidManifestContent,
        });
        expect([400, 404]).toContain(reply.status);
        if (reply.status === 400) {
          const { errors } = JSON.parse(reply.body.toString()) as { errors: { code: string }[] };
          expect(errors.length).toBeGreaterThan(0);
          expect(SPEC_CODES).toContain(errors[0].code);
        }
      };
      it('400 response body should contain OCI-conforming JSON message', () => conforming('GET'));
      // Releases before v1.1 sent the same request as a PUT.
      it('400 response body should contain OCI-conforming JSON message (PUT, as earlier releases send it)', () => conforming('PUT'));
    });

    describe('Teardown', () => {
      it('Delete manifest[0] created in setup', async () => h.expectOneOf(await del('manifests', d.manifests[0].digest), [405]));
      it('Delete manifest[1] created in setup', async () => h.expectOneOf(await del('manifests', d.manifests[1].digest), [405]));
      it('Delete config[0] blob created in setup', async () => h.expectOneOf(await del('blobs', d.configs[0].digest), [404, 405]));
      it('Delete config[1] blob created in setup', async () => h.expectOneOf(await del('blobs', d.configs[1].digest), [404, 405]));
      it('Delete layer blob created in setup', async () => h.expectOneOf(await del('blobs', d.layer.digest), [404, 405]));
    });
  });
}

/** 02_push_test.go */
export function pushWorkflow(h: Harness): void {
  const { send, del } = h;
  describe('02_push_test.go: Push', () => {
    let last: Reply;
    let prev: Reply;
    let emptyLayerRef = '';
    const octet = { 'Content-Type': MT.octet };

    describe('Blob Upload Streamed', () => {
      it('PATCH request with blob in body should yield 202 response', async () => {
        const post = await send('POST', `/v2/${h.name}/blobs/uploads/`);
        last = await send('PATCH', h.client.location(post), { headers: octet, body: d.testBlobA.content });
        expect(last.status).toBe(202);
      });
      it('PUT request to session URL with digest should yield 201 response', async () => {
        const put = await send('PUT', h.client.location(last), { query: { digest: d.testBlobA.digest }, headers: octet });
        expect(put.status).toBe(201);
        h.client.location(put);
      });
    });

    describe('Blob Upload Monolithic', () => {
      const config = d.configs[1];
      it('GET nonexistent blob should result in 404 response', async () => {
        expect((await send('GET', `/v2/${h.name}/blobs/${d.dummyDigest}`)).status).toBe(404);
      });
      it('POST request with digest and blob should yield a 201 or 202', async () => {
        last = await send('POST', `/v2/${h.name}/blobs/uploads/`, { query: { digest: config.digest }, headers: octet, body: config.content });
        h.client.location(last);
        expect([201, 202]).toContain(last.status);
      });
      it('GET request to blob URL from prior request should yield 200 or 404 based on response code', async () => {
        const get = await send('GET', `/v2/${h.name}/blobs/${config.digest}`);
        expect(get.status).toBe(last.status === 202 ? 404 : 200);
      });
      it('POST request should yield a session ID', async () => {
        last = await send('POST', `/v2/${h.name}/blobs/uploads/`);
        expect(last.status).toBe(202);
      });
      it('PUT upload of a blob should yield a 201 Response', async () => {
        const put = await send('PUT', h.client.location(last), { query: { digest: config.digest }, headers: octet, body: config.content });
        h.client.location(put);
        expect(put.status).toBe(201);
      });
      it('GET request to existing blob should yield 200 response', async () => {
        expect((await send('GET', `/v2/${h.name}/blobs/${config.digest}`)).status).toBe(200);
      });
      it('PUT upload of a layer blob should yield a 201 Response', async () => {
        const post = await send('POST', `/v2/${h.name}/blobs/uploads/`);
        const put = await send('PUT', h.client.location(post), { query: { digest: d.layer.digest }, headers: octet, body: d.layer.content });
        h.client.location(put);
        expect(put.status).toBe(201);
      });
      it('GET request to existing layer should yield 200 response', async () => {
        expect((await send('GET', `/v2/${h.name}/blobs/${d.layer.digest}`)).status).toBe(200);
      });
    });

    describe('Blob Upload Chunked', () => {
      const chunk = (location: string, range: string, body: Buffer) =>
        send('PATCH', location, { headers: { ...octet, 'Content-Range': range }, body });
      it('Out-of-order blob upload should return 416', async () => {
        const post = await send('POST', `/v2/${h.name}/blobs/uploads/`, { headers: { 'Content-Length': '0' } });
        // regmeta announces no OCI-Chunk-Min-Length, so the suite keeps its 42-byte blob.
        expect(post.headers.get('oci-chunk-min-length')).toBeNull();
        expect((await chunk(h.client.location(post), d.chunk2Range, d.chunk2)).status).toBe(416);
      });
      it('PATCH request with first chunk should return 202', async () => {
        prev = await send('POST', `/v2/${h.name}/blobs/uploads/`, { headers: { 'Content-Length': '0' } });
        last = await chunk(h.client.location(prev), d.chunk1Range, d.chunk1);
        expect(last.status).toBe(202);
        expect(last.headers.get('range')).toBe(d.chunk1Range);
      });
      it('Retry previous blob chunk should return 416', async () => {
        expect((await chunk(h.client.location(prev), d.chunk1Range, d.chunk1)).status).toBe(416);
      });
      it('Get on stale blob upload should return 204 with a range and location', async () => {
        last = await send('GET', h.client.location(prev));
        expect(last.status).toBe(204);
        h.client.location(last);
        expect(last.headers.get('range')).toBe(d.chunk1Range);
      });
      it('PATCH request with second chunk should return 202', async () => {
        last = await chunk(h.client.location(last), d.chunk2Range, d.chunk2);
        expect(last.status).toBe(202);
        h.client.location(last);
      });
      it('PUT request with digest should return 201', async () => {
        const put = await send('PUT', h.client.location(last), { query: { digest: d.testBlobB.digest }, headers: { ...octet, 'Content-Length': '0' } });
        expect(put.status).toBe(201);
        h.client.location(put);
      });
    });

    describe('Cross-Repository Blob Mount', () => {
      const mount = (query: Record<string, string>) => send('POST', `/v2/${h.crossmount}/blobs/uploads/`, { query });
      it('Cross-mounting of a blob without the from argument should yield session id', async () => {
        const reply = await mount({ mount: d.dummyDigest });
        expect(reply.status).toBe(202);
        h.client.location(reply);
      });
      it('POST request to mount another repository\'s blob should return 201 or 202', async () => {
        last = await mount({ mount: d.testBlobA.digest, from: h.name });
        expect([201, 202]).toContain(last.status);
      });
      it('GET request to test digest within cross-mount namespace should return 200', async (ctx) => {
        if (last.status !== 201) return ctx.skip();
        expect(h.client.location(last)).toBe(`/v2/${h.crossmount}/blobs/${d.testBlobA.digest}`);
        expect((await send('GET', h.client.location(last))).status).toBe(200);
      });
      it('Cross-mounting of nonexistent blob should yield session id', (ctx) => {
        if (last.status !== 202) return ctx.skip();
        expect(h.client.location(last).startsWith(`/v2/${h.crossmount}/blobs/uploads/`)).toBe(true);
      });
      // OCI_AUTOMATIC_CROSSMOUNT=1 would expect 201 here; regmeta mounts only from a named repository.
      it('Cross-mounting without from, and automatic content discovery disabled should return a 202', async () => {
        expect(last.status).toBe(201);
        expect((await mount({ mount: d.testBlobA.digest })).status).toBe(202);
      });
    });

    describe('Manifest Upload', () => {
      it('GET nonexistent manifest should return 404', async () => {
        expect((await send('GET', `/v2/${h.name}/manifests/${d.nonexistentManifest}`)).status).toBe(404);
      });
      it('PUT should accept a manifest upload', async () => {
        for (let i = 0; i < 4; i++) {
          const reply = await h.putManifest(`test${i}`, d.manifests[1]);
          h.client.location(reply);
          expect(reply.status).toBe(201);
        }
      });
      it('Registry should accept a manifest upload with no layers', async () => {
        // The suite only warns when this is refused; regmeta accepts it.
        const reply = await h.putManifest('emptylayer', d.emptyLayerManifest);
        expect(reply.status).toBe(201);
        emptyLayerRef = h.client.location(reply);
      });
      it('GET request to manifest URL (digest) should yield 200 response', async () => {
        expect((await h.getManifest('GET', d.manifests[1].digest)).status).toBe(200);
      });
    });

    describe('Teardown', () => {
      it('Delete manifest created in tests', async () => {
        h.expectOneOf(await del('manifests', d.manifests[1].digest), [405]);
        if (emptyLayerRef !== '') h.expectOneOf(await del('manifests', d.emptyLayerManifest.digest), [405]);
      });
      it('Delete config blob created in tests', async () => h.expectOneOf(await del('blobs', d.configs[1].digest), [404, 405]));
      it('Delete layer blob created in setup', async () => h.expectOneOf(await del('blobs', d.layer.digest), [404, 405]));
    });
  });
}
