// Manifest push/pull/delete, tags list, catalog and referrers over HTTP.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  descriptor,
  DOCKER_MANIFEST,
  EMPTY_CONFIG,
  errorCode,
  imageManifest,
  OCI_INDEX,
  OCI_MANIFEST,
  pushBlob,
  pushImage,
  putManifest,
  sha256,
  startRegistry,
  type TestRegistry,
} from './helpers.js';

let r: TestRegistry;
beforeAll(async () => {
  r = await startRegistry();
});
afterAll(async () => {
  await r.close();
});

describe('manifest push and pull', () => {
  it('stores a manifest by tag: 201 with Location and Docker-Content-Digest, then serves the exact bytes', async () => {
    const { manifest, digest } = await pushImage(r.url, 'm/pull', 'v1', 'pull');
    const get = await fetch(`${r.url}/v2/m/pull/manifests/v1`, { headers: { Accept: OCI_MANIFEST } });
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toBe(OCI_MANIFEST);
    expect(get.headers.get('docker-content-digest')).toBe(digest);
    expect(await get.text()).toBe(manifest);
    const head = await fetch(`${r.url}/v2/m/pull/manifests/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(Buffer.byteLength(manifest)));
    expect(head.headers.get('docker-content-digest')).toBe(digest);
  });

  it('keeps the bytes exactly as pushed, whitespace included', async () => {
    const config = 'cfg-ws';
    await pushBlob(r.url, 'm/ws', config);
    const manifest = `{ "schemaVersion" : 2,\n "mediaType": "${OCI_MANIFEST}", "config": ${JSON.stringify(descriptor('application/vnd.oci.image.config.v1+json', config))}, "layers": [] }\n`;
    const res = await putManifest(r.url, 'm/ws', 'spaced', manifest);
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`/v2/m/ws/manifests/${sha256(manifest)}`);
    expect(await (await fetch(`${r.url}/v2/m/ws/manifests/spaced`)).text()).toBe(manifest);
  });

  it('checks the digest of a PUT by digest', async () => {
    const config = 'cfg-digest';
    await pushBlob(r.url, 'm/digest', config);
    const manifest = imageManifest(config, []);
    expect((await putManifest(r.url, 'm/digest', sha256(manifest), manifest)).status).toBe(201);
    const wrong = await putManifest(r.url, 'm/digest', sha256('something else'), manifest);
    expect(wrong.status).toBe(400);
    expect(await errorCode(wrong)).toBe('DIGEST_INVALID');
    const garbage = await putManifest(r.url, 'm/digest', 'sha256:totallywrong', manifest);
    expect(garbage.status).toBe(400);
    expect(await errorCode(garbage)).toBe('DIGEST_INVALID');
  });

  it('refuses a manifest whose blobs are not in the repository, naming the first missing one', async () => {
    await pushBlob(r.url, 'm/blobs', 'config present');
    const manifest = imageManifest('config present', ['layer missing']);
    const res = await putManifest(r.url, 'm/blobs', 'v1', manifest);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: { code: string; detail: { digest: string } }[] };
    expect(body.errors[0].code).toBe('MANIFEST_BLOB_UNKNOWN');
    expect(body.errors[0].detail.digest).toBe(sha256('layer missing'));
    // A blob in another repository does not count.
    await pushBlob(r.url, 'm/elsewhere', 'layer missing');
    expect((await putManifest(r.url, 'm/blobs', 'v1', manifest)).status).toBe(400);
    expect(() => r.store.getTag('m/blobs', 'v1')).toThrow();
  });

  it('refuses an index whose child manifests are not in the repository', async () => {
    const { digest, manifest } = await pushImage(r.url, 'm/index', 'amd64', 'index-child');
    const index = (children: string[]) =>
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: children.map((d) => ({ mediaType: OCI_MANIFEST, digest: d, size: Buffer.byteLength(manifest), platform: { architecture: 'amd64', os: 'linux' } })),
      });
    const missing = await putManifest(r.url, 'm/index', 'multi', index([digest, sha256('no such manifest')]), OCI_INDEX);
    expect(missing.status).toBe(400);
    expect(await errorCode(missing)).toBe('MANIFEST_BLOB_UNKNOWN');
    const ok = await putManifest(r.url, 'm/index', 'multi', index([digest]), OCI_INDEX);
    expect(ok.status).toBe(201);
    expect((await fetch(`${r.url}/v2/m/index/manifests/multi`)).headers.get('content-type')).toBe(OCI_INDEX);
    // A child that an index lists cannot be deleted from under it.
    const del = await fetch(`${r.url}/v2/m/index/manifests/${digest}`, { method: 'DELETE' });
    expect(del.status).toBe(409);
    expect(await errorCode(del)).toBe('MANIFEST_REFERENCED');
  });

  it('accepts a manifest whose subject is missing and answers OCI-Subject', async () => {
    const subject = descriptor(OCI_MANIFEST, 'not pushed yet');
    await pushBlob(r.url, 'm/subject', '{}');
    const manifest = imageManifest('{}', [], { subject, artifactType: 'application/x.sig', configType: EMPTY_CONFIG });
    const res = await putManifest(r.url, 'm/subject', sha256(manifest), manifest);
    expect(res.status).toBe(201);
    expect(res.headers.get('oci-subject')).toBe(subject.digest);
  });

  it('takes the media type from the payload when Content-Type is missing, and refuses a mismatch', async () => {
    await pushBlob(r.url, 'm/ctype', 'cfg-ctype');
    const manifest = imageManifest('cfg-ctype', []);
    const untyped = await fetch(`${r.url}/v2/m/ctype/manifests/t`, { method: 'PUT', body: manifest });
    expect(untyped.status).toBe(201);
    const mismatch = await putManifest(r.url, 'm/ctype', 't2', manifest, DOCKER_MANIFEST);
    expect(mismatch.status).toBe(400);
    expect(await errorCode(mismatch)).toBe('MANIFEST_INVALID');
    const notJson = await putManifest(r.url, 'm/ctype', 't3', 'not json at all');
    expect(notJson.status).toBe(400);
    expect(await errorCode(notJson)).toBe('MANIFEST_INVALID');
  });

  it('refuses with 400 MANIFEST_INVALID what Go clients cannot parse: a UTF-8 BOM, nesting 20,000 levels deep', async () => {
    await pushBlob(r.url, 'm/goparse', 'cfg-goparse');
    const manifest = imageManifest('cfg-goparse', []);
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(manifest)]);
    const deep = `${manifest.slice(0, -1)},"x":${'['.repeat(20_000)}${']'.repeat(20_000)}}`;
    for (const body of [bom, deep]) {
      const res = await putManifest(r.url, 'm/goparse', 'latest', body);
      expect(res.status).toBe(400);
      expect(await errorCode(res)).toBe('MANIFEST_INVALID');
      expect((await fetch(`${r.url}/v2/m/goparse/manifests/${sha256(body)}`)).status).toBe(404);
    }
    const tags = await fetch(`${r.url}/v2/m/goparse/tags/list`);
    expect(((await tags.json()) as { tags: string[] }).tags).toEqual([]);
    expect((await putManifest(r.url, 'm/goparse', 'latest', manifest)).status).toBe(201);
  });

  it('refuses a manifest above 4 MiB with 413', async () => {
    const huge = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    const res = await putManifest(r.url, 'm/huge', 'big', huge);
    expect(res.status).toBe(413);
    expect(await errorCode(res)).toBe('SIZE_INVALID');
  });

  it("reads the body up to the store's own maxManifestSize, as an embedder set it", async () => {
    const small = await startRegistry({}, undefined, { maxManifestSize: 1000 });
    try {
      const config = 'cfg-limit';
      await pushBlob(small.url, 'm/limit', config);
      const fits = imageManifest(config, []);
      expect(Buffer.byteLength(fits)).toBeLessThanOrEqual(1000);
      expect((await putManifest(small.url, 'm/limit', 'fits', fits)).status).toBe(201);
      const padded = `${fits.slice(0, -1)},"annotations":{"pad":"${'x'.repeat(1000)}"}}`;
      const res = await putManifest(small.url, 'm/limit', 'padded', padded);
      expect(res.status).toBe(413);
      expect(await errorCode(res)).toBe('SIZE_INVALID');
    } finally {
      await small.close();
    }
    const large = await startRegistry({}, undefined, { maxManifestSize: 6 * 1024 * 1024 });
    try {
      const config = 'cfg-large';
      await pushBlob(large.url, 'm/limit', config);
      const manifest = imageManifest(config, []);
      const big = `${manifest.slice(0, -1)},"annotations":{"pad":"${'x'.repeat(5 * 1024 * 1024)}"}}`;
      expect((await putManifest(large.url, 'm/limit', 'big', big)).status).toBe(201);
      expect((await fetch(`${large.url}/v2/m/limit/manifests/big`)).headers.get('content-length')).toBe(String(Buffer.byteLength(big)));
    } finally {
      await large.close();
    }
  });

  it('answers 404 for unknown tags, digests and repositories with the matching code', async () => {
    await pushImage(r.url, 'm/known', 'v1', 'known');
    const tag = await fetch(`${r.url}/v2/m/known/manifests/nope`);
    expect(tag.status).toBe(404);
    expect(await errorCode(tag)).toBe('MANIFEST_UNKNOWN');
    const digest = await fetch(`${r.url}/v2/m/known/manifests/${sha256('nope')}`);
    expect(await errorCode(digest)).toBe('MANIFEST_UNKNOWN');
    const repo = await fetch(`${r.url}/v2/m/unknown/manifests/v1`);
    expect(repo.status).toBe(404);
    expect(await errorCode(repo)).toBe('NAME_UNKNOWN');
    const head = await fetch(`${r.url}/v2/m/known/manifests/nope`, { method: 'HEAD' });
    expect(head.status).toBe(404);
  });

  it('does not let one repository read another repository\'s manifest by digest', async () => {
    const { digest } = await pushImage(r.url, 'm/private', 'v1', 'private');
    await pushImage(r.url, 'm/public', 'v1', 'public');
    const res = await fetch(`${r.url}/v2/m/public/manifests/${digest}`);
    expect(res.status).toBe(404);
  });

  it('honours Accept by tag as distribution does, and serves by digest whatever is listed', async () => {
    const { digest } = await pushImage(r.url, 'm/accept', 'v1', 'accept');
    const docker = { Accept: DOCKER_MANIFEST };
    const byTag = await fetch(`${r.url}/v2/m/accept/manifests/v1`, { headers: docker });
    expect(byTag.status).toBe(404);
    expect(await errorCode(byTag)).toBe('MANIFEST_UNKNOWN');
    expect((await fetch(`${r.url}/v2/m/accept/manifests/${digest}`, { headers: docker })).status).toBe(200);
    expect((await fetch(`${r.url}/v2/m/accept/manifests/v1`, { headers: { Accept: `${DOCKER_MANIFEST}, ${OCI_MANIFEST}` } })).status).toBe(200);
    expect((await fetch(`${r.url}/v2/m/accept/manifests/v1`, { headers: { Accept: '*/*' } })).status).toBe(200);
  });
});

describe('manifest delete', () => {
  it('deletes a tag by tag, leaving the manifest', async () => {
    const { digest } = await pushImage(r.url, 'd/tag', 'v1', 'deltag');
    const res = await fetch(`${r.url}/v2/d/tag/manifests/v1`, { method: 'DELETE' });
    expect(res.status).toBe(202);
    expect((await fetch(`${r.url}/v2/d/tag/manifests/v1`)).status).toBe(404);
    expect((await fetch(`${r.url}/v2/d/tag/manifests/${digest}`)).status).toBe(200);
    expect((await fetch(`${r.url}/v2/d/tag/manifests/v1`, { method: 'DELETE' })).status).toBe(404);
  });

  it('deletes a manifest by digest with every tag on it', async () => {
    const { digest } = await pushImage(r.url, 'd/digest', 'v1', 'deldigest');
    await putManifest(r.url, 'd/digest', 'v2', (await (await fetch(`${r.url}/v2/d/digest/manifests/v1`)).text()));
    const res = await fetch(`${r.url}/v2/d/digest/manifests/${digest}`, { method: 'DELETE' });
    expect(res.status).toBe(202);
    expect((await fetch(`${r.url}/v2/d/digest/manifests/${digest}`)).status).toBe(404);
    const tags = (await (await fetch(`${r.url}/v2/d/digest/tags/list`)).json()) as { tags: string[] };
    expect(tags.tags).toEqual([]);
  });
});

describe('tags list and catalog', () => {
  const tags = ['a', 'B', 'c-1', 'c_0', 'z9', '0'];
  beforeAll(async () => {
    const { manifest } = await pushImage(r.url, 't/list', tags[0], 'tags');
    for (const tag of tags.slice(1)) await putManifest(r.url, 't/list', tag, manifest);
  });

  it('lists every tag in byte order', async () => {
    const res = await fetch(`${r.url}/v2/t/list/tags/list`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ name: 't/list', tags: [...tags].sort() });
    expect(res.headers.get('link')).toBeNull();
  });

  it('pages with n and last, with a Link to the next page until the last one', async () => {
    const seen: string[] = [];
    let next: string | null = '/v2/t/list/tags/list?n=4';
    let pages = 0;
    while (next) {
      const res: Response = await fetch(`${r.url}${next}`);
      const body = (await res.json()) as { tags: string[] };
      expect(body.tags.length).toBeLessThanOrEqual(4);
      seen.push(...body.tags);
      next = res.headers.get('link')?.match(/^<([^>]+)>; rel="next"$/)?.[1] ?? null;
      pages++;
    }
    expect(pages).toBe(2);
    expect(seen).toEqual([...tags].sort());
    const after = (await (await fetch(`${r.url}/v2/t/list/tags/list?n=2&last=a`)).json()) as { tags: string[] };
    expect(after.tags).toEqual(['c-1', 'c_0']);
  });

  it('answers NAME_UNKNOWN for an unknown repository and 400 for a bad n', async () => {
    const res = await fetch(`${r.url}/v2/t/none/tags/list`);
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe('NAME_UNKNOWN');
    const bad = await fetch(`${r.url}/v2/t/list/tags/list?n=-1`);
    expect(bad.status).toBe(400);
    expect(await errorCode(bad)).toBe('PAGINATION_NUMBER_INVALID');
  });

  it('lists repositories in the catalog, paginated the same way', async () => {
    const all = (await (await fetch(`${r.url}/v2/_catalog`)).json()) as { repositories: string[] };
    expect(all.repositories).toContain('t/list');
    expect(all.repositories).toEqual([...all.repositories].sort());
    const first = await fetch(`${r.url}/v2/_catalog?n=1`);
    const page = (await first.json()) as { repositories: string[] };
    expect(page.repositories).toEqual(all.repositories.slice(0, 1));
    expect(first.headers.get('link')).toBe(`</v2/_catalog?n=1&last=${encodeURIComponent(all.repositories[0])}>; rel="next"`);
  });
});

describe('referrers', () => {
  it('lists the manifests whose subject is the digest, filters by artifactType, and says so', async () => {
    const { digest, manifest } = await pushImage(r.url, 'ref/repo', 'v1', 'referred');
    const subject = { mediaType: OCI_MANIFEST, digest, size: Buffer.byteLength(manifest) };
    await pushBlob(r.url, 'ref/repo', '{}');
    const sig = imageManifest('{}', [], { subject, artifactType: 'application/x.sig', configType: EMPTY_CONFIG, annotations: { k: 'sig' } });
    const sbom = imageManifest('{}', [], { subject, artifactType: 'application/x.sbom', configType: EMPTY_CONFIG });
    for (const m of [sig, sbom]) expect((await putManifest(r.url, 'ref/repo', sha256(m), m)).headers.get('oci-subject')).toBe(digest);

    const all = await fetch(`${r.url}/v2/ref/repo/referrers/${digest}`);
    expect(all.status).toBe(200);
    expect(all.headers.get('content-type')).toBe(OCI_INDEX);
    expect(all.headers.get('oci-filters-applied')).toBeNull();
    const index = (await all.json()) as { schemaVersion: number; mediaType: string; manifests: { digest: string; artifactType: string; annotations?: Record<string, string> }[] };
    expect(index.schemaVersion).toBe(2);
    expect(index.mediaType).toBe(OCI_INDEX);
    expect(index.manifests.map((m) => m.digest).sort()).toEqual([sha256(sig), sha256(sbom)].sort());
    expect(index.manifests.find((m) => m.digest === sha256(sig))).toMatchObject({ artifactType: 'application/x.sig', annotations: { k: 'sig' } });

    const filtered = await fetch(`${r.url}/v2/ref/repo/referrers/${digest}?artifactType=application/x.sbom`);
    expect(filtered.headers.get('oci-filters-applied')).toBe('artifactType');
    const only = (await filtered.json()) as { manifests: { digest: string }[] };
    expect(only.manifests.map((m) => m.digest)).toEqual([sha256(sbom)]);
  });

  it('answers an empty index, never 404, for an unknown subject or repository', async () => {
    for (const repo of ['ref/repo', 'ref/unknown']) {
      const res = await fetch(`${r.url}/v2/${repo}/referrers/${sha256('nothing')}`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { manifests: unknown[] }).manifests).toEqual([]);
    }
  });

  it('never logged a server fault', () => {
    expect(r.errors).toEqual([]);
    expect(r.logs.filter((entry) => entry.status >= 500)).toEqual([]);
  });
});

// Beyond what the conformance suite asks (conformance-*.test.ts): which
// non-distributable layers go unchecked, and that only pulls turn an impossible
// reference into 404.
describe('non-distributable layers and impossible references', () => {
  const name = 'm/foreign';

  it('accepts a manifest whose non-distributable layers (or layers with urls) were never pushed, and still refuses a missing ordinary layer', async () => {
    const config = '{"architecture":"amd64","os":"windows"}';
    await pushBlob(r.url, name, config);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: descriptor('application/vnd.oci.image.config.v1+json', config),
      layers: [
        descriptor('application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'never pushed: nondistributable'),
        descriptor('application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'never pushed: docker foreign'),
        descriptor('application/vnd.oci.image.layer.v1.tar+gzip', 'never pushed: has urls', { urls: ['https://example.com/layer'] }),
      ],
    });
    expect((await putManifest(r.url, name, 'foreign', manifest)).status).toBe(201);
    const get = await fetch(`${r.url}/v2/${name}/manifests/foreign`, { headers: { Accept: OCI_MANIFEST } });
    expect(await get.text()).toBe(manifest);
    const refused = await putManifest(r.url, name, 'plain', imageManifest(config, ['never pushed: ordinary']));
    expect(refused.status).toBe(400);
    expect(await errorCode(refused)).toBe('MANIFEST_BLOB_UNKNOWN');
  });

  it('answers GET and HEAD by a reference that is neither tag nor digest 404 MANIFEST_UNKNOWN, PUT and DELETE by one 400', async () => {
    for (const reference of ['.INVALID_MANIFEST_NAME', 'sha256:totallywrong', '-dash']) {
      const get = await fetch(`${r.url}/v2/${name}/manifests/${reference}`);
      expect(get.status).toBe(404);
      expect(await errorCode(get)).toBe('MANIFEST_UNKNOWN');
      expect((await fetch(`${r.url}/v2/${name}/manifests/${reference}`, { method: 'HEAD' })).status).toBe(404);
      expect((await fetch(`${r.url}/v2/${name}/manifests/${reference}`, { method: 'DELETE' })).status).toBe(400);
      expect((await putManifest(r.url, name, reference, '{}')).status).toBe(400);
    }
    // An invalid repository name is still NAME_INVALID.
    expect((await fetch(`${r.url}/v2/Bad_Name/manifests/.INVALID_MANIFEST_NAME`)).status).toBe(400);
  });
});

describe('tag parameters of a push by digest (spec end-7b)', () => {
  const name = 'm/tagparam';
  const tagUrl = (reference: string, tags: string[]) => `${reference}?${tags.map((t) => `tag=${t}`).join('&')}`;

  it('tags the manifest with every ?tag= once and names them in OCI-Tag', async () => {
    const config = '{"tagparam":1}';
    await pushBlob(r.url, name, config);
    const manifest = imageManifest(config, []);
    const put = await putManifest(r.url, name, tagUrl(sha256(manifest), ['a', 'b', 'a']), manifest);
    expect(put.status).toBe(201);
    expect(put.headers.get('oci-tag')).toBe('a, b');
    for (const tag of ['a', 'b']) {
      const head = await fetch(`${r.url}/v2/${name}/manifests/${tag}`, { method: 'HEAD' });
      expect(head.headers.get('docker-content-digest')).toBe(sha256(manifest));
    }
  });

  it('refuses a malformed tag parameter with TAG_INVALID before storing anything', async () => {
    const manifest = imageManifest('{"tagparam":1}', [], { annotations: { n: '2' } });
    const put = await putManifest(r.url, name, tagUrl(sha256(manifest), ['good', '-bad']), manifest);
    expect(put.status).toBe(400);
    expect(await errorCode(put)).toBe('TAG_INVALID');
    expect((await fetch(`${r.url}/v2/${name}/manifests/${sha256(manifest)}`, { method: 'HEAD' })).status).toBe(404);
    expect((await fetch(`${r.url}/v2/${name}/manifests/good`, { method: 'HEAD' })).status).toBe(404);
  });

  it('ignores tag parameters on a push by tag', async () => {
    const manifest = imageManifest('{"tagparam":1}', [], { annotations: { n: '3' } });
    const put = await putManifest(r.url, name, tagUrl('bytag', ['other']), manifest);
    expect(put.status).toBe(201);
    expect(put.headers.get('oci-tag')).toBeNull();
    expect((await fetch(`${r.url}/v2/${name}/manifests/other`, { method: 'HEAD' })).status).toBe(404);
  });
});
