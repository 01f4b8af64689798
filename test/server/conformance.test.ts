// The workflows of the OCI distribution-spec conformance suite
// (opencontainers/distribution-spec, conformance/): pull, push, content
// discovery, content management and referrers, in the suite's order and with
// its expectations, against this server over HTTP. Each describe block
// shares state from one step to the next, as the suite does.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMPTY_CONFIG, OCI_INDEX, OCI_MANIFEST, sha256, startRegistry, type TestRegistry } from './helpers.js';

const SPEC_CODES = [
  'BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID', 'MANIFEST_UNKNOWN', 'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID', 'UNAUTHORIZED',
  'DENIED', 'UNSUPPORTED', 'TOOMANYREQUESTS',
];
const DUMMY = sha256('this blob does not exist');
const ANNOTATION = 'org.opencontainers.conformance.test';

let r: TestRegistry;
beforeAll(async () => {
  r = await startRegistry();
});
afterAll(async () => {
  await r.close();
});

const req = (path: string, init: RequestInit = {}) => fetch(`${r.url}${path}`, init);

/** The suite's "populate": POST for a session, PUT the whole blob to its Location. */
async function populateBlob(name: string, content: string | Buffer): Promise<string> {
  const post = await req(`/v2/${name}/blobs/uploads/`, { method: 'POST' });
  const put = await req(`${post.headers.get('location')}?digest=${sha256(content)}`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: content,
  });
  expect(put.status).toBeGreaterThanOrEqual(200);
  expect(put.status).toBeLessThan(300);
  return sha256(content);
}

function manifestOf(config: string, layers: string[], extra: Record<string, unknown> = {}, configType = 'application/vnd.oci.image.config.v1+json') {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: configType, digest: sha256(config), size: Buffer.byteLength(config) },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(l), size: Buffer.byteLength(l) })),
    ...extra,
  });
}

function putManifest(name: string, reference: string, body: string, type = OCI_MANIFEST) {
  return req(`/v2/${name}/manifests/${reference}`, { method: 'PUT', headers: { 'Content-Type': type }, body });
}

describe('pull', () => {
  const name = 'conformance/pull';
  const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
  const layer = 'pull layer bytes';
  const manifest = manifestOf(config, [layer]);
  let tag = '';

  it('setup: populates a config, a layer and a tagged manifest', async () => {
    await populateBlob(name, config);
    await populateBlob(name, layer);
    const res = await putManifest(name, 'tagtest0', manifest);
    expect(res.status).toBe(201);
    tag = ((await (await req(`/v2/${name}/tags/list`)).json()) as { tags: string[] }).tags[0];
    expect(tag).toBe('tagtest0');
  });

  it('pull blobs: HEAD/GET of a missing blob 404, of an existing one 200 with its digest', async () => {
    expect((await req(`/v2/${name}/blobs/${DUMMY}`, { method: 'HEAD' })).status).toBe(404);
    const head = await req(`/v2/${name}/blobs/${sha256(config)}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('docker-content-digest')).toBe(sha256(config));
    expect((await req(`/v2/${name}/blobs/${DUMMY}`)).status).toBe(404);
    const get = await req(`/v2/${name}/blobs/${sha256(config)}`);
    expect(get.status).toBe(200);
    expect(await get.text()).toBe(config);
  });

  it('pull manifests: HEAD/GET by digest and tag 200, a missing manifest 404', async () => {
    const accept = { Accept: OCI_MANIFEST };
    expect((await req(`/v2/${name}/manifests/nonexistent`, { method: 'HEAD' })).status).toBe(404);
    const byDigest = await req(`/v2/${name}/manifests/${sha256(manifest)}`, { method: 'HEAD', headers: accept });
    expect(byDigest.status).toBe(200);
    expect(byDigest.headers.get('docker-content-digest')).toBe(sha256(manifest));
    const byTag = await req(`/v2/${name}/manifests/${tag}`, { headers: accept });
    expect(byTag.status).toBe(200);
    expect(byTag.headers.get('docker-content-digest')).toBe(sha256(manifest));
    expect((await req(`/v2/${name}/manifests/nonexistent`)).status).toBe(404);
    expect((await req(`/v2/${name}/manifests/${sha256(manifest)}`, { headers: accept })).status).toBe(200);
  });

  it('error codes: a 400 carries OCI-conforming JSON', async () => {
    const res = await putManifest(name, 'sha256:totallywrong', '{"invalid": "manifest"}');
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: { code: string; message: string }[] };
    expect(body.errors.length).toBeGreaterThan(0);
    expect(SPEC_CODES).toContain(body.errors[0].code);
  });

  it('teardown: deletes the manifest, then the blobs', async () => {
    for (const path of [`manifests/${sha256(manifest)}`, `blobs/${sha256(config)}`, `blobs/${sha256(layer)}`]) {
      const res = await req(`/v2/${name}/${path}`, { method: 'DELETE' });
      expect(res.status).toBe(202);
    }
  });
});

describe('push', () => {
  const name = 'conformance/push';
  const blobA = Buffer.from('streamed blob A');
  const config = JSON.stringify({ architecture: 'arm64', os: 'linux' });
  const blobB = Buffer.from('chunked blob B: two chunks of it');
  const chunk1 = blobB.subarray(0, 16);
  const chunk2 = blobB.subarray(16);
  let last: Response;

  it('blob upload streamed: PATCH with the blob 202, PUT with the digest 201', async () => {
    const post = await req(`/v2/${name}/blobs/uploads/`, { method: 'POST' });
    expect(post.headers.get('location')).toBeTruthy();
    last = await req(post.headers.get('location')!, { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream' }, body: blobA });
    expect(last.status).toBe(202);
    const put = await req(`${last.headers.get('location')}?digest=${sha256(blobA)}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/octet-stream' },
    });
    expect(put.status).toBe(201);
    expect(put.headers.get('location')).toBeTruthy();
  });

  it('blob upload monolithic: POST with digest 201, POST then PUT 201, both readable', async () => {
    expect((await req(`/v2/${name}/blobs/${DUMMY}`)).status).toBe(404);
    const post = await req(`/v2/${name}/blobs/uploads/?digest=${sha256(config)}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: config,
    });
    expect(post.status).toBe(201);
    expect(post.headers.get('location')).toBeTruthy();
    expect((await req(`/v2/${name}/blobs/${sha256(config)}`)).status).toBe(200);
    const session = await req(`/v2/${name}/blobs/uploads/`, { method: 'POST' });
    expect(session.status).toBe(202);
    const put = await req(`${session.headers.get('location')}?digest=${sha256(config)}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: config,
    });
    expect(put.status).toBe(201);
    expect((await req(`/v2/${name}/blobs/${sha256(config)}`)).status).toBe(200);
  });

  it('blob upload chunked: an out-of-order chunk 416, first chunk 202, final chunk on PUT 201', async () => {
    const range = (from: number, chunk: Buffer) => `${from}-${from + chunk.length - 1}`;
    const a = await req(`/v2/${name}/blobs/uploads/`, { method: 'POST', headers: { 'Content-Length': '0' } });
    const outOfOrder = await req(a.headers.get('location')!, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': range(chunk1.length, chunk2) },
      body: chunk2,
    });
    expect(outOfOrder.status).toBe(416);
    const b = await req(`/v2/${name}/blobs/uploads/`, { method: 'POST', headers: { 'Content-Length': '0' } });
    last = await req(b.headers.get('location')!, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': range(0, chunk1) },
      body: chunk1,
    });
    expect(last.status).toBe(202);
    const status = await req(last.headers.get('location')!);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe(`0-${chunk1.length - 1}`);
    const put = await req(`${last.headers.get('location')}?digest=${sha256(blobB)}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': range(chunk1.length, chunk2) },
      body: chunk2,
    });
    expect(put.status).toBe(201);
    expect(Buffer.from(await (await req(`/v2/${name}/blobs/${sha256(blobB)}`)).arrayBuffer())).toEqual(blobB);
  });

  it('cross-repository mount: 201 from a repository that has the blob; without from, a session', async () => {
    const mounted = await req(`/v2/${name}/mounted/blobs/uploads/?mount=${sha256(blobA)}&from=${name}`, { method: 'POST' });
    expect(mounted.status).toBe(201);
    expect((await req(`/v2/${name}/mounted/blobs/${sha256(blobA)}`)).status).toBe(200);
    const discovery = await req(`/v2/${name}/other/blobs/uploads/?mount=${sha256(blobA)}`, { method: 'POST' });
    expect([201, 202]).toContain(discovery.status);
    expect(discovery.headers.get('location')).toBeTruthy();
  });

  it('manifest upload: a missing manifest 404, four tags 201 with Location, GET by digest 200', async () => {
    const manifest = manifestOf(config, [blobB.toString()]);
    expect((await req(`/v2/${name}/manifests/nonexistent`)).status).toBe(404);
    for (let i = 0; i < 4; i++) {
      const res = await putManifest(name, `test${i}`, manifest);
      expect(res.status).toBe(201);
      expect(res.headers.get('location')).toBeTruthy();
    }
    expect((await req(`/v2/${name}/manifests/${sha256(manifest)}`, { headers: { Accept: OCI_MANIFEST } })).status).toBe(200);
    // teardown, manifest first: the suite's order under OCI_DELETE_MANIFEST_BEFORE_BLOBS=1,
    // for registries that refuse (409) to unlink a blob a manifest still references.
    expect((await req(`/v2/${name}/manifests/${sha256(manifest)}`, { method: 'DELETE' })).status).toBe(202);
    expect((await req(`/v2/${name}/blobs/${sha256(config)}`, { method: 'DELETE' })).status).toBe(202);
  });
});

describe('content discovery and referrers', () => {
  const name = 'conformance/discovery';
  const emptyJSON = '{}';
  const config = JSON.stringify({ architecture: 'amd64', os: 'linux', n: 4 });
  const layer = 'discovery layer';
  const subject = manifestOf(config, [layer]);
  const missingSubject = manifestOf(config, ['a layer never pushed as a manifest subject']);
  const subjectDescriptor = { mediaType: OCI_MANIFEST, digest: sha256(subject), size: Buffer.byteLength(subject) };
  const refBlobA = 'referrer blob A';
  const refBlobB = 'referrer blob B';
  const typeA = 'application/vnd.conformance.a';
  const typeB = 'application/vnd.conformance.b';
  const refs: Record<string, { body: string; type: string }> = {};
  const note = (label: string) => ({ annotations: { [ANNOTATION]: label } });

  it('setup: tags, then referrers pushed before and after their subject, one to a subject that never comes', async () => {
    await populateBlob(name, config);
    await populateBlob(name, layer);
    for (let i = 0; i < 4; i++) expect((await putManifest(name, `test${i}`, subject)).status).toBe(201);
    expect(await populateBlob(name, emptyJSON)).toBe('sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
    await populateBlob(name, refBlobA);
    refs.aConfig = { body: manifestOf(refBlobA, [refBlobA], { subject: subjectDescriptor, ...note('a-config') }, typeA), type: OCI_MANIFEST };
    refs.aLayer = { body: manifestOf(emptyJSON, [refBlobA], { artifactType: typeA, subject: subjectDescriptor, ...note('a-layer') }, EMPTY_CONFIG), type: OCI_MANIFEST };
    for (const key of ['aConfig', 'aLayer']) {
      const res = await putManifest(name, sha256(refs[key].body), refs[key].body);
      expect(res.status).toBe(201);
      expect(res.headers.get('oci-subject')).toBe(sha256(subject));
    }
    refs.index = {
      body: JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        artifactType: 'application/vnd.conformance.index',
        manifests: ['aConfig', 'aLayer'].map((k) => ({ mediaType: OCI_MANIFEST, digest: sha256(refs[k].body), size: Buffer.byteLength(refs[k].body) })),
        subject: subjectDescriptor,
        ...note('index'),
      }),
      type: OCI_INDEX,
    };
    const index = await putManifest(name, sha256(refs.index.body), refs.index.body, OCI_INDEX);
    expect(index.status).toBe(201);
    expect(index.headers.get('oci-subject')).toBe(sha256(subject));
    await populateBlob(name, refBlobB);
    refs.bConfig = { body: manifestOf(refBlobB, [refBlobB], { subject: subjectDescriptor, ...note('b-config') }, typeB), type: OCI_MANIFEST };
    refs.bLayer = { body: manifestOf(emptyJSON, [refBlobB], { artifactType: typeB, subject: subjectDescriptor, ...note('b-layer') }, EMPTY_CONFIG), type: OCI_MANIFEST };
    const missing = { mediaType: OCI_MANIFEST, digest: sha256(missingSubject), size: Buffer.byteLength(missingSubject) };
    refs.cLayer = { body: manifestOf(emptyJSON, [refBlobB], { artifactType: typeB, subject: missing, ...note('c-layer') }, EMPTY_CONFIG), type: OCI_MANIFEST };
    for (const key of ['bConfig', 'bLayer', 'cLayer']) {
      const res = await putManifest(name, sha256(refs[key].body), refs[key].body);
      expect(res.status).toBe(201);
      expect(res.headers.get('oci-subject')).toBe(key === 'cLayer' ? sha256(missingSubject) : sha256(subject));
    }
  });

  it('listing tags: 200, limited by n, continued after last', async () => {
    const all = (await (await req(`/v2/${name}/tags/list`)).json()) as { tags: string[] };
    expect(all.tags).toEqual(['test0', 'test1', 'test2', 'test3']);
    const half = (await (await req(`/v2/${name}/tags/list?n=2`)).json()) as { tags: string[] };
    expect(half.tags).toHaveLength(2);
    const rest = (await (await req(`/v2/${name}/tags/list?n=2&last=${half.tags[1]}`)).json()) as { tags: string[] };
    expect(rest.tags.length).toBeLessThanOrEqual(2);
    expect(rest.tags).not.toContain(half.tags[1]);
    expect([...half.tags, ...rest.tags]).toEqual(all.tags);
  });

  type Index = { mediaType: string; manifests: { digest: string; annotations?: Record<string, string> }[] };
  const labels = () => Object.fromEntries(Object.entries(refs).map(([, v]) => [sha256(v.body), JSON.parse(v.body).annotations[ANNOTATION]]));

  it('listing referrers: an empty index for a digest with none', async () => {
    const res = await req(`/v2/${name}/referrers/${DUMMY}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(OCI_INDEX);
    expect(((await res.json()) as Index).manifests).toHaveLength(0);
  });

  it('listing referrers: all five of the subject, each with its annotation', async () => {
    const res = await req(`/v2/${name}/referrers/${sha256(subject)}`);
    expect(res.status).toBe(200);
    const index = (await res.json()) as Index;
    expect(index.manifests).toHaveLength(5);
    expect(new Set(index.manifests.map((m) => m.digest)).size).toBe(5);
    for (const m of index.manifests) expect(m.annotations).toEqual({ [ANNOTATION]: labels()[m.digest] });
  });

  it('listing referrers: filtered by artifactType, with OCI-Filters-Applied', async () => {
    const res = await req(`/v2/${name}/referrers/${sha256(subject)}?artifactType=${encodeURIComponent(typeA)}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('oci-filters-applied')).toBe('artifactType');
    const index = (await res.json()) as Index;
    expect(index.manifests.map((m) => m.digest).sort()).toEqual([sha256(refs.aConfig.body), sha256(refs.aLayer.body)].sort());
  });

  it('listing referrers: the one referrer of a subject that was never pushed', async () => {
    const res = await req(`/v2/${name}/referrers/${sha256(missingSubject)}`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as Index).manifests.map((m) => m.digest)).toEqual([sha256(refs.cLayer.body)]);
  });

  it('teardown: referrers, index first, then the subject and its blobs', async () => {
    for (const key of ['index', 'aConfig', 'aLayer', 'bConfig', 'bLayer', 'cLayer']) {
      expect((await req(`/v2/${name}/manifests/${sha256(refs[key].body)}`, { method: 'DELETE' })).status).toBe(202);
    }
    expect((await req(`/v2/${name}/manifests/${sha256(subject)}`, { method: 'DELETE' })).status).toBe(202);
    for (const blob of [config, layer, emptyJSON, refBlobA, refBlobB]) {
      expect((await req(`/v2/${name}/blobs/${sha256(blob)}`, { method: 'DELETE' })).status).toBe(202);
    }
    expect(((await (await req(`/v2/${name}/referrers/${sha256(subject)}`)).json()) as Index).manifests).toEqual([]);
  });
});

describe('content management', () => {
  const name = 'conformance/management';
  const config = JSON.stringify({ architecture: 'amd64', os: 'linux', management: true });
  const manifest = manifestOf(config, []);
  let numTags = 0;

  it('setup: a blob and a tag, then counts the tags', async () => {
    await populateBlob(name, config);
    expect((await putManifest(name, 'tagtest0', manifest)).status).toBe(201);
    expect((await putManifest(name, 'tagtest1', manifest)).status).toBe(201);
    numTags = ((await (await req(`/v2/${name}/tags/list`)).json()) as { tags: string[] }).tags.length;
    expect(numTags).toBe(2);
  });

  it('manifest delete: by tag 202, by digest 202, then the manifest is 404 and the tags list shrank', async () => {
    expect((await req(`/v2/${name}/manifests/tagtest0`, { method: 'DELETE' })).status).toBe(202);
    expect((await req(`/v2/${name}/manifests/${sha256(manifest)}`, { method: 'DELETE' })).status).toBe(202);
    expect((await req(`/v2/${name}/manifests/${sha256(manifest)}`)).status).toBe(404);
    const tags = ((await (await req(`/v2/${name}/tags/list`)).json()) as { tags: string[] }).tags;
    expect(tags.length).toBeLessThan(numTags);
    expect(tags).toEqual([]);
  });

  it('blob delete: 202, then the blob is 404', async () => {
    expect((await req(`/v2/${name}/blobs/${sha256(config)}`, { method: 'DELETE' })).status).toBe(202);
    expect((await req(`/v2/${name}/blobs/${sha256(config)}`)).status).toBe(404);
  });

  it('answered no request with a server fault', () => {
    expect(r.errors).toEqual([]);
    expect(r.logs.filter((entry) => entry.status >= 500)).toEqual([]);
  });
});

describe('the two gaps the v1.1.1 suite found', () => {
  const name = 'conformance/gaps';

  it('a manifest with non-distributable layers is accepted without those blobs, and pulls', async () => {
    const config = '{"architecture":"amd64","os":"windows"}';
    await populateBlob(name, config);
    const foreign = (mediaType: string, content: string, urls?: string[]) => ({
      mediaType,
      digest: sha256(content),
      size: Buffer.byteLength(content),
      ...(urls === undefined ? {} : { urls }),
    });
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: Buffer.byteLength(config) },
      layers: [
        foreign('application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'never pushed: nondistributable'),
        foreign('application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'never pushed: docker foreign'),
        foreign('application/vnd.oci.image.layer.v1.tar+gzip', 'never pushed: has urls', ['https://example.com/layer']),
      ],
    });
    const put = await putManifest(name, 'foreign', manifest);
    expect(put.status).toBe(201);
    const get = await req(`/v2/${name}/manifests/foreign`, { headers: { Accept: OCI_MANIFEST } });
    expect(get.status).toBe(200);
    expect(await get.text()).toBe(manifest);
    // An ordinary layer that was never pushed is still refused.
    const plain = manifestOf(config, ['never pushed: ordinary']);
    const refused = await putManifest(name, 'plain', plain);
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { errors: { code: string }[] }).errors[0].code).toBe('MANIFEST_BLOB_UNKNOWN');
  });

  it('GET and HEAD by a reference that is neither tag nor digest are 404 MANIFEST_UNKNOWN; PUT and DELETE stay 400', async () => {
    for (const reference of ['.INVALID_MANIFEST_NAME', 'sha256:totallywrong', '-dash']) {
      const get = await req(`/v2/${name}/manifests/${reference}`);
      expect(get.status).toBe(404);
      expect(((await get.json()) as { errors: { code: string }[] }).errors[0].code).toBe('MANIFEST_UNKNOWN');
      expect((await req(`/v2/${name}/manifests/${reference}`, { method: 'HEAD' })).status).toBe(404);
      expect((await req(`/v2/${name}/manifests/${reference}`, { method: 'DELETE' })).status).toBe(400);
      expect((await putManifest(name, reference, '{}')).status).toBe(400);
    }
    // An invalid repository name is still NAME_INVALID.
    expect((await req('/v2/Bad_Name/manifests/.INVALID_MANIFEST_NAME')).status).toBe(400);
  });
});
