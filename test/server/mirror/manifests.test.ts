// Manifest pulls through mirrors of a real distribution registry (images
// pushed by skopeo), a recording proxy in between counting what reaches the
// upstream: a tag and a digest fetched once and then served from the cache,
// byte for byte; one upstream request for many concurrent pulls; a moved tag
// seen after the TTL and not before; a tag gone upstream; an index's child
// on demand; writes refused; containerd's ns= and the default mirror; a
// corrupt upstream; and, the upstream stopped, stale tags with a Warning.

import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, putManifest, startRegistry, type TestRegistry } from '../helpers.js';
import { OciLayout, type BuiltImage, type BuiltIndex } from '../oci-layout.js';
import { parseExposition, value } from '../prometheus.js';
import { gateProxy, type GateProxy } from './gate-proxy.js';
import { recordingProxy, type RecordingProxy } from './recording-proxy.js';
import { pull } from './manifest-pull.js';
import { pushImage as copyImage, startUpstream, type TestUpstream } from './upstreams.js';

const SECRET = 'mirror-password-never-shown';
const STALE = '110 - "Response is Stale"';

describe('manifests through a mirror of a real registry', () => {
  let dir: string;
  let upstream: TestUpstream;
  let proxy: RecordingProxy;
  let r: TestRegistry;
  const warnings: string[] = [];
  let a: BuiltImage;
  let b: BuiltImage;
  let c: BuiltImage;
  let multi: BuiltIndex;
  let layout: OciLayout;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'regmeta-mirror-manifests-'));
    upstream = await startUpstream();
    layout = new OciLayout(join(dir, 'layout'));
    [a, b, c] = [0, 1, 2].map(() => layout.addImage({ layerSize: 512 }));
    multi = layout.addIndex([{ architecture: 'amd64', os: 'linux' }, { architecture: 'arm64', os: 'linux' }], { layerSize: 512 });
    layout.tag(a.descriptor, 'a');
    layout.tag(b.descriptor, 'b');
    layout.tag(c.descriptor, 'c');
    layout.tag(multi.descriptor, 'multi');
    for (const [ref, repo, tag] of [
      ['a', 'library/app', 'v1'],
      ['a', 'library/app', 'moving'],
      ['c', 'library/app', 'gone'],
      ['b', 'library/other', '1'],
      ['a', 'library/crowd', '1'],
      ['a', 'library/nsonly', '1'],
      ['a', 'library/default', '1'],
      ['c', 'library/corrupt', '1'],
    ]) {
      await copyImage(upstream, layout, ref, repo, tag);
    }
    await copyImage(upstream, layout, 'multi', 'library/multi', 'latest', { all: true });
    proxy = await recordingProxy(upstream.url);
    r = await startRegistry({
      mirrors: [
        { prefix: 'hub', url: proxy.url, ttl: 3_600_000, username: 'someone', password: SECRET },
        { prefix: 'fresh', url: proxy.url, ttl: 1 },
        { prefix: 'always', url: proxy.url, ttl: 0 },
      ],
      mirrorDefault: 'hub',
      metrics: true,
      onWarning: (line) => warnings.push(line),
    });
  });

  afterAll(async () => {
    await r?.close();
    await proxy?.close();
    await upstream?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const direct = (path: string) => pull(`${upstream.url}/v2/${path}`);
  const mirrored = (path: string, method: 'GET' | 'HEAD' = 'GET') => pull(`${r.url}/v2/${path}`, method);

  it('fetches a tag once, then serves it from the cache, byte for byte', async () => {
    const original = await direct('library/app/manifests/v1');
    expect(original.digest).toBe(a.descriptor.digest);
    const from = proxy.requests.length;
    const first = await mirrored('hub/library/app/manifests/v1');
    expect(first.status).toBe(200);
    expect(first.body.equals(original.body)).toBe(true);
    expect(first.digest).toBe(a.descriptor.digest);
    expect(first.headers.get('content-type')).toBe(original.headers.get('content-type'));
    expect(first.headers.get('warning')).toBeNull();
    expect(proxy.count('HEAD', '/v2/library/app/manifests/v1', from)).toBe(1);
    expect(proxy.count('GET', `/v2/library/app/manifests/${a.descriptor.digest}`, from)).toBe(1);
    const cached = proxy.requests.length;
    const second = await mirrored('hub/library/app/manifests/v1');
    expect(second.body.equals(original.body)).toBe(true);
    const head = await mirrored('hub/library/app/manifests/v1', 'HEAD');
    expect([head.status, head.digest, head.headers.get('content-length')]).toEqual([200, a.descriptor.digest, String(original.body.length)]);
    expect(proxy.requests.length).toBe(cached);
    // Its digest came with it: pulled by digest, the cache answers.
    expect((await mirrored(`hub/library/app/manifests/${a.descriptor.digest}`)).body.equals(original.body)).toBe(true);
    expect(proxy.requests.length).toBe(cached);
    // A client's Accept counts as on the registry's own repositories: by tag, a type it does not list is unknown.
    const docker = await pull(`${r.url}/v2/hub/library/app/manifests/v1`, 'GET', 'application/vnd.docker.distribution.manifest.v2+json');
    expect(docker.status).toBe(404);
    expect((await pull(`${r.url}/v2/hub/library/app/manifests/v1`, 'GET', '*/*')).digest).toBe(a.descriptor.digest);
  });

  it('fetches a digest once, verified, and never asks again', async () => {
    const digest = b.descriptor.digest;
    const from = proxy.requests.length;
    const first = await mirrored(`hub/library/other/manifests/${digest}`);
    expect([first.status, first.digest]).toEqual([200, digest]);
    expect(first.body.equals(b.bytes)).toBe(true);
    expect(proxy.requests.slice(from)).toEqual([`GET /v2/library/other/manifests/${digest}`]);
    const second = await mirrored(`hub/library/other/manifests/${digest}`);
    expect(second.body.equals(b.bytes)).toBe(true);
    expect((await mirrored(`always/library/other/manifests/${digest}`)).body.equals(b.bytes)).toBe(true);
    // The ttl-0 mirror fetched it for its own namespace once; after that, a digest is never checked.
    expect((await mirrored(`always/library/other/manifests/${digest}`, 'HEAD')).status).toBe(200);
    expect(proxy.requests.length - from).toBe(2);
  });

  it('makes one upstream request for many concurrent pulls of one tag or digest', async () => {
    const from = proxy.requests.length;
    const byTag = await Promise.all(Array.from({ length: 8 }, () => mirrored('hub/library/crowd/manifests/1')));
    for (const answer of byTag) expect([answer.status, answer.digest]).toEqual([200, a.descriptor.digest]);
    expect(proxy.count('HEAD', '/v2/library/crowd/manifests/1', from)).toBe(1);
    expect(proxy.count('GET', '/v2/library/crowd/manifests/', from)).toBe(1);
    const child = multi.images[1].descriptor.digest;
    const byDigest = await Promise.all(Array.from({ length: 8 }, () => mirrored(`fresh/library/multi/manifests/${child}`)));
    for (const answer of byDigest) expect(answer.body.equals(multi.images[1].bytes)).toBe(true);
    expect(proxy.count('GET', `/v2/library/multi/manifests/${child}`, from)).toBe(1);
  });

  it('sees a tag moved upstream after its TTL and not before; ttl 0 checks every pull', async () => {
    for (const prefix of ['hub', 'fresh', 'always']) {
      expect((await mirrored(`${prefix}/library/app/manifests/moving`)).digest).toBe(a.descriptor.digest);
    }
    await copyImage(upstream, layout, 'b', 'library/app', 'moving');
    const from = proxy.requests.length;
    // An hour's TTL: the cache answers, the upstream is not asked.
    expect((await mirrored('hub/library/app/manifests/moving')).digest).toBe(a.descriptor.digest);
    expect(proxy.requests.length).toBe(from);
    // A millisecond's TTL, long over (a skopeo push took longer): checked, moved.
    const moved = await mirrored('fresh/library/app/manifests/moving');
    expect([moved.digest, moved.body.equals(b.bytes)]).toEqual([b.descriptor.digest, true]);
    expect(proxy.count('HEAD', '/v2/library/app/manifests/moving', from)).toBe(1);
    expect((await mirrored('hub/library/app/manifests/moving')).digest).toBe(a.descriptor.digest);
    const checks = proxy.requests.length;
    for (let i = 0; i < 3; i++) expect((await mirrored('always/library/app/manifests/moving')).digest).toBe(b.descriptor.digest);
    expect(proxy.count('HEAD', '/v2/library/app/manifests/moving', checks)).toBe(3);
    expect(proxy.count('GET', '/v2/library/app/manifests/', checks)).toBe(1);
    expect(r.store.tagHistory('always/library/app', 'moving').map((h) => h.digest)).toEqual([b.descriptor.digest, a.descriptor.digest]);
  });

  it('drops a tag the upstream no longer has, and answers MANIFEST_UNKNOWN for what it never had', async () => {
    expect((await mirrored('always/library/app/manifests/gone')).digest).toBe(c.descriptor.digest);
    expect(r.store.getTag('always/library/app', 'gone').digest).toBe(c.descriptor.digest);
    expect((await fetch(`${upstream.url}/v2/library/app/manifests/${c.descriptor.digest}`, { method: 'DELETE' })).status).toBe(202);
    const gone = await fetch(`${r.url}/v2/always/library/app/manifests/gone`);
    expect([gone.status, await errorCode(gone)]).toEqual([404, 'MANIFEST_UNKNOWN']);
    expect(() => r.store.getTag('always/library/app', 'gone')).toThrow(expect.objectContaining({ code: 'MANIFEST_UNKNOWN' }));
    const never = await fetch(`${r.url}/v2/hub/library/nothing/manifests/1`);
    expect([never.status, await errorCode(never)]).toEqual([404, 'MANIFEST_UNKNOWN']);
    const noDigest = await fetch(`${r.url}/v2/hub/library/app/manifests/sha256:${'0'.repeat(64)}`);
    expect([noDigest.status, await errorCode(noDigest)]).toEqual([404, 'MANIFEST_UNKNOWN']);
  });

  it('serves an index, and its children when clients ask for them by digest', async () => {
    const from = proxy.requests.length;
    const index = await mirrored('hub/library/multi/manifests/latest');
    expect([index.status, index.digest, index.headers.get('content-type')]).toEqual([200, multi.descriptor.digest, 'application/vnd.oci.image.index.v1+json']);
    expect(proxy.count('GET', '/v2/library/multi/manifests/', from)).toBe(1);
    for (const image of multi.images) {
      const child = await mirrored(`hub/library/multi/manifests/${image.descriptor.digest}`);
      expect([child.status, child.body.equals(image.bytes)]).toEqual([200, true]);
    }
    expect(proxy.count('GET', '/v2/library/multi/manifests/', from)).toBe(3);
  });

  it('writes what it caches as the actor mirror', () => {
    const { events } = r.store.getEvents({ actor: 'mirror', repository: 'hub/library/app', perPage: 1000 });
    expect(events.some((e) => e.type === 'CREATE' && e.object.type === 'MANIFEST' && e.digest === a.descriptor.digest)).toBe(true);
    expect(events.some((e) => e.object.type === 'TAG' && e.tag === 'v1')).toBe(true);
    const dropped = r.store.getEvents({ actor: 'mirror', repository: 'always/library/app', type: 'DELETE', perPage: 1000 }).events;
    expect(dropped.map((e) => e.tag)).toContain('gone');
  });

  it('refuses pushes into a mirror\'s namespace with a clear message, and takes them elsewhere', async () => {
    const refused = await putManifest(r.url, 'hub/library/app', 'mine', b.bytes);
    expect(refused.status).toBe(405);
    const body = (await refused.json()) as { errors: { code: string; message: string }[] };
    expect(body.errors[0].code).toBe('UNSUPPORTED');
    expect(body.errors[0].message).toContain('hub/ is a mirror of');
    expect((await fetch(`${r.url}/v2/hub/library/app/blobs/uploads/`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(`${r.url}/v2/hub/library/app/manifests/v1`, { method: 'DELETE' })).status).toBe(405);
  });

  it('answers containerd\'s ns= and, through the default mirror, names without a prefix', async () => {
    const ns = await pull(`${r.url}/v2/library/nsonly/manifests/1?ns=hub`);
    expect([ns.status, ns.digest]).toEqual([200, a.descriptor.digest]);
    expect(r.store.getTag('hub/library/nsonly', '1').digest).toBe(a.descriptor.digest);
    const unprefixed = await mirrored('library/default/manifests/1');
    expect([unprefixed.status, unprefixed.digest]).toEqual([200, a.descriptor.digest]);
    expect(r.store.getTag('hub/library/default', '1').digest).toBe(a.descriptor.digest);
    const nowhere = await fetch(`${r.url}/v2/library/nowhere/manifests/1`);
    expect([nowhere.status, await errorCode(nowhere)]).toEqual([404, 'MANIFEST_UNKNOWN']);
  });

  it('keeps nothing of a manifest whose bytes do not match its digest, and answers 503', async () => {
    const errors = async () => value(parseExposition(await (await fetch(`${r.url}/metrics`)).text()), 'regmeta_mirror_upstream_errors_total', { mirror: 'always' });
    const before = await errors();
    proxy.corrupt = true;
    try {
      const corrupt = await fetch(`${r.url}/v2/always/library/corrupt/manifests/1`);
      expect([corrupt.status, await errorCode(corrupt)]).toEqual([503, 'UPSTREAM_UNAVAILABLE']);
      expect(corrupt.headers.get('retry-after')).not.toBeNull();
    } finally {
      proxy.corrupt = false;
    }
    expect(() => r.store.getTag('always/library/corrupt', '1')).toThrow(expect.objectContaining({ code: 'NAME_UNKNOWN' }));
    expect(await errors()).toBe(before + 1);
    expect((await mirrored('always/library/corrupt/manifests/1')).digest).toBe(c.descriptor.digest);
  });

  it('counts hits, misses, revalidations and upstream bytes per mirror, without credentials', async () => {
    const text = await (await fetch(`${r.url}/metrics`)).text();
    const e = parseExposition(text);
    const pulls = (mirror: string, result: string) => value(e, 'regmeta_mirror_pulls_total', { mirror, kind: 'manifest', result });
    expect(e.types.get('regmeta_mirror_pulls_total')).toBe('counter');
    expect(pulls('hub', 'hit')).toBeGreaterThanOrEqual(6);
    expect(pulls('hub', 'miss')).toBeGreaterThanOrEqual(9);
    expect(pulls('fresh', 'miss')).toBeGreaterThanOrEqual(2);
    expect(pulls('always', 'revalidated')).toBeGreaterThanOrEqual(2);
    expect(value(e, 'regmeta_mirror_upstream_bytes_total', { mirror: 'hub' })).toBeGreaterThan(b.bytes.length);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(proxy.url.slice('http://'.length));
  });

  it('lets skopeo copy an index with its images through the prefix, the second time from the cache alone', async () => {
    const copy = (to: string) =>
      new Promise<void>((resolve, reject) => {
        const args = ['copy', '--all', '--insecure-policy', '--src-tls-verify=false', '--quiet', `docker://${new URL(r.url).host}/hub/library/multi:latest`, `oci:${to}:copied`];
        execFile('skopeo', args, { timeout: 60_000 }, (error, _out, stderr) => (error ? reject(new Error(`skopeo copy failed: ${stderr}`)) : resolve()));
      });
    await copy(join(dir, 'first'));
    const from = proxy.requests.length;
    await copy(join(dir, 'second'));
    expect(proxy.requests.slice(from)).toEqual([]);
    for (const copied of ['first', 'second']) {
      const blob = (digest: string) => readFileSync(join(dir, copied, 'blobs', 'sha256', digest.slice('sha256:'.length)));
      expect(blob(multi.descriptor.digest).equals(multi.bytes)).toBe(true);
      for (const image of multi.images) {
        expect(blob(image.descriptor.digest).equals(image.bytes)).toBe(true);
        for (const layer of image.layers) expect(blob(layer.digest).length).toBe(layer.size);
      }
    }
  });

  // Last: the upstream is stopped for good.
  it('serves cached tags with a Warning while the upstream is down, digests plainly, and 503 for the rest', async () => {
    expect((await mirrored('always/library/app/manifests/v1')).digest).toBe(a.descriptor.digest);
    await upstream.stop();
    warnings.length = 0;
    const stale = await mirrored('always/library/app/manifests/v1');
    expect([stale.status, stale.digest, stale.headers.get('warning')]).toEqual([200, a.descriptor.digest, STALE]);
    expect((await mirrored('always/library/app/manifests/v1', 'HEAD')).headers.get('warning')).toBe(STALE);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain('always/library/app:v1');
    expect(warnings[0]).toContain(proxy.url);
    expect(warnings.join('\n')).not.toContain(SECRET);
    // Within its TTL the cache answers without asking; a digest is never asked about.
    const fresh = await mirrored('hub/library/app/manifests/v1');
    expect([fresh.status, fresh.headers.get('warning')]).toEqual([200, null]);
    const digest = await mirrored(`always/library/app/manifests/${a.descriptor.digest}`);
    expect([digest.status, digest.headers.get('warning')]).toEqual([200, null]);
    for (const path of ['always/library/never/manifests/1', `hub/library/never/manifests/${a.descriptor.digest}`]) {
      const down = await fetch(`${r.url}/v2/${path}`);
      expect([down.status, await errorCode(down), down.headers.get('warning')]).toEqual([503, 'UPSTREAM_UNAVAILABLE', null]);
      expect(down.headers.get('retry-after')).not.toBeNull();
    }
    const e = parseExposition(await (await fetch(`${r.url}/metrics`)).text());
    expect(value(e, 'regmeta_mirror_pulls_total', { mirror: 'always', kind: 'manifest', result: 'stale' })).toBe(2);
    // The upstream's failures reach onError as faults (503s), and nothing else.
    for (const error of r.errors) expect(error).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    expect(r.errors.map(String).join('\n')).not.toContain(SECRET);
  });
});

describe('manifests through a mirror whose upstream does not answer', () => {
  let dir: string;
  let upstream: TestUpstream;
  let gate: GateProxy;
  let r: TestRegistry;
  const warnings: string[] = [];
  let image: BuiltImage;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'regmeta-mirror-silent-'));
    upstream = await startUpstream();
    const layout = new OciLayout(join(dir, 'layout'));
    image = layout.addImage({ layerSize: 256 });
    layout.tag(image.descriptor, 'a');
    await copyImage(upstream, layout, 'a', 'library/app', 'v1');
    gate = await gateProxy(upstream.url);
    r = await startRegistry({ mirrors: [{ prefix: 'slow', url: gate.url, ttl: 0, timeout: 500 }], onWarning: (line) => warnings.push(line) });
  });

  afterAll(async () => {
    await r?.close();
    gate?.release();
    await gate?.close();
    await upstream?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves a cached tag stale when the upstream is silent past the timeout, and passes on its refusal', async () => {
    expect((await pull(`${r.url}/v2/slow/library/app/manifests/v1`)).digest).toBe(image.descriptor.digest);
    gate.hold('/manifests/');
    const silent = await pull(`${r.url}/v2/slow/library/app/manifests/v1`);
    expect([silent.status, silent.digest, silent.headers.get('warning')]).toEqual([200, image.descriptor.digest, STALE]);
    const uncached = await fetch(`${r.url}/v2/slow/library/other/manifests/v1`);
    expect([uncached.status, await errorCode(uncached)]).toEqual([503, 'UPSTREAM_UNAVAILABLE']);
    gate.hold(undefined);
    gate.release();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('slow/library/app:v1');
    expect(warnings[0]).toContain(`${gate.url} cannot serve now: no answer within 500 ms`);
    // A refusal is an answer, not an outage: the client hears it.
    gate.refuse(2, 'Basic realm="upstream"');
    const refused = await fetch(`${r.url}/v2/slow/library/app/manifests/v1`);
    expect([refused.status, await errorCode(refused), refused.headers.get('warning')]).toEqual([403, 'DENIED', null]);
    expect(warnings).toHaveLength(1);
    gate.refuse(0, '');
    const again = await pull(`${r.url}/v2/slow/library/app/manifests/v1`);
    expect([again.status, again.headers.get('warning')]).toEqual([200, null]);
  });

  it('keeps nothing of a manifest larger than the store takes, and answers 503', async () => {
    const small = await startRegistry({ mirrors: [{ prefix: 'small', url: upstream.url }] }, undefined, { maxManifestSize: 64 });
    try {
      const big = await fetch(`${small.url}/v2/small/library/app/manifests/${image.descriptor.digest}`);
      expect([big.status, await errorCode(big)]).toEqual([503, 'UPSTREAM_UNAVAILABLE']);
      expect(() => small.store.statManifest('small/library/app', image.descriptor.digest)).toThrow(expect.objectContaining({ code: 'NAME_UNKNOWN' }));
    } finally {
      await small.close();
    }
  });
});
