// Tag lists and referrers in a mirror's namespace: the upstream's, passed
// through (named by the local name, pages linked locally), or, when the
// upstream cannot answer, what is cached, with a Warning. Upstreams: a real
// distribution registry (no referrers API) and a second regmeta (with one).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { descriptor, errorCode, OCI_MANIFEST, pushImage, startRegistry, type TestRegistry } from '../helpers.js';
import { OciLayout, type BuiltImage } from '../oci-layout.js';
import { parseExposition, value } from '../prometheus.js';
import { recordingProxy, type RecordingProxy } from './recording-proxy.js';
import { pull } from './manifest-pull.js';
import { pushImage as copyImage, startUpstream, type TestUpstream } from './upstreams.js';

const STALE = '110 - "Response is Stale"';

describe('tag lists and referrers through a mirror', () => {
  let dir: string;
  let upstream: TestUpstream;
  let proxy: RecordingProxy;
  let other: TestRegistry;
  let r: TestRegistry;
  const warnings: string[] = [];
  let image: BuiltImage;
  let subject: string;
  let artifact: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'regmeta-mirror-tags-'));
    upstream = await startUpstream();
    const layout = new OciLayout(join(dir, 'layout'));
    image = layout.addImage({ layerSize: 512 });
    layout.tag(image.descriptor, 'a');
    for (const tag of ['v1', 'v2', 'v3']) await copyImage(upstream, layout, 'a', 'library/app', tag);
    proxy = await recordingProxy(upstream.url);
    // A registry with the referrers API: an image and an artifact about it.
    other = await startRegistry();
    const pushed = await pushImage(other.url, 'art/app', 'v1', 'subject');
    subject = pushed.digest;
    const subjectDescriptor = descriptor(OCI_MANIFEST, pushed.manifest);
    artifact = (await pushImage(other.url, 'art/app', 'sig', 'signature', { subject: subjectDescriptor, artifactType: 'application/example.sig' })).digest;
    r = await startRegistry({
      mirrors: [
        { prefix: 'hub', url: proxy.url, ttl: 3_600_000 },
        { prefix: 'reg', url: other.url },
      ],
      metrics: true,
      onWarning: (line) => warnings.push(line),
    });
  });

  afterAll(async () => {
    await r?.close();
    await other?.close();
    await proxy?.close();
    await upstream?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const get = (path: string) => fetch(`${r.url}${path}`);

  it('passes the upstream\'s tag list through under the local name, pages linked locally', async () => {
    const from = proxy.requests.length;
    const all = await get('/v2/hub/library/app/tags/list');
    expect(all.status).toBe(200);
    expect(await all.json()).toEqual({ name: 'hub/library/app', tags: ['v1', 'v2', 'v3'] });
    expect(proxy.requests.slice(from)).toEqual(['GET /v2/library/app/tags/list']);
    const page = await get('/v2/hub/library/app/tags/list?n=1');
    expect(await page.json()).toEqual({ name: 'hub/library/app', tags: ['v1'] });
    expect(page.headers.get('link')).toBe('</v2/hub/library/app/tags/list?n=1&last=v1>; rel="next"');
    const next = await get('/v2/hub/library/app/tags/list?n=1&last=v1');
    expect(await next.json()).toEqual({ name: 'hub/library/app', tags: ['v2'] });
    // containerd's ns= stays on the path it asked for.
    const ns = await get('/v2/library/app/tags/list?ns=hub&n=2');
    expect(await ns.json()).toEqual({ name: 'hub/library/app', tags: ['v1', 'v2'] });
    expect(ns.headers.get('link')).toBe('</v2/library/app/tags/list?n=2&last=v2&ns=hub>; rel="next"');
    // An upstream that pages itself: its Link, made local.
    const paged = await get('/v2/reg/art/app/tags/list?n=1');
    expect(await paged.json()).toEqual({ name: 'reg/art/app', tags: ['sig'] });
    expect(paged.headers.get('link')).toBe('</v2/reg/art/app/tags/list?n=1&last=sig>; rel="next"');
    const unknown = await get('/v2/hub/library/nothing/tags/list');
    expect([unknown.status, await errorCode(unknown)]).toEqual([404, 'NAME_UNKNOWN']);
  });

  it('passes the upstream\'s referrers through when it has the API', async () => {
    const all = await get(`/v2/reg/art/app/referrers/${subject}`);
    expect([all.status, all.headers.get('content-type')]).toEqual([200, 'application/vnd.oci.image.index.v1+json']);
    const index = (await all.json()) as { manifests: { digest: string; artifactType: string }[] };
    expect(index.manifests.map((m) => [m.digest, m.artifactType])).toEqual([[artifact, 'application/example.sig']]);
    const filtered = await get(`/v2/reg/art/app/referrers/${subject}?artifactType=application/other`);
    expect(filtered.headers.get('oci-filters-applied')).toBe('artifactType');
    expect(((await filtered.json()) as { manifests: unknown[] }).manifests).toEqual([]);
    // Nothing of it is cached: the answer was the upstream's.
    expect(() => r.store.statManifest('reg/art/app', artifact)).toThrow(expect.objectContaining({ code: 'NAME_UNKNOWN' }));
  });

  it('answers the cached referrers where the upstream has no such API', async () => {
    const local = await get(`/v2/hub/library/app/referrers/${image.descriptor.digest}`);
    expect([local.status, local.headers.get('warning')]).toEqual([200, null]);
    expect(((await local.json()) as { manifests: unknown[] }).manifests).toEqual([]);
  });

  it('answers the cached tags and referrers, with a Warning, while the upstream is down', async () => {
    expect((await pull(`${r.url}/v2/hub/library/app/manifests/v2`)).status).toBe(200);
    await upstream.stop();
    warnings.length = 0;
    const tags = await get('/v2/hub/library/app/tags/list');
    expect([tags.status, tags.headers.get('warning')]).toEqual([200, STALE]);
    expect(await tags.json()).toEqual({ name: 'hub/library/app', tags: ['v2'] });
    const refs = await get(`/v2/hub/library/app/referrers/${image.descriptor.digest}`);
    expect([refs.status, refs.headers.get('warning')]).toEqual([200, STALE]);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain('hub/library/app');
    expect(warnings[0]).toContain(proxy.url);
    const nothing = await get('/v2/hub/library/nothing/tags/list');
    expect([nothing.status, await errorCode(nothing), nothing.headers.get('warning')]).toEqual([503, 'UPSTREAM_UNAVAILABLE', null]);
    const e = parseExposition(await (await get('/metrics')).text());
    const pulls = (kind: string, result: string) => value(e, 'regmeta_mirror_pulls_total', { mirror: 'hub', kind, result });
    expect([pulls('tags', 'miss'), pulls('tags', 'stale'), pulls('referrers', 'hit'), pulls('referrers', 'stale')]).toEqual([4, 1, 1, 1]);
    expect(value(e, 'regmeta_mirror_pulls_total', { mirror: 'reg', kind: 'referrers', result: 'miss' })).toBe(2);
    expect(value(e, 'regmeta_mirror_upstream_errors_total', { mirror: 'hub' })).toBe(3);
  });
});
