// The test upstreams themselves: skopeo pushes into each kind, and each lets
// in exactly whom it should, so that the mirror's tests stand on them.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OCI, OciLayout, type BuiltImage } from '../oci-layout.js';
import { startDistribution, type Peer } from '../../../bench/peers.js';
import { pushImage, startUpstream, UPSTREAM_USER, type TestUpstream } from './upstreams.js';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
let layout: OciLayout;
let image: BuiltImage;

beforeAll(() => {
  layout = new OciLayout(join(mkdtempSync(join(tmpdir(), 'regmeta-upstreams-')), 'layout'));
  image = layout.addImage();
  layout.tag(image.descriptor, 'a');
});

async function getManifest(upstream: Pick<TestUpstream, 'url'>, authorization?: string): Promise<Response> {
  return fetch(`${upstream.url}/v2/acme/app/manifests/v1`, {
    headers: { Accept: OCI.manifest, ...(authorization ? { Authorization: authorization } : {}) },
  });
}

describe('an anonymous upstream', () => {
  let upstream: TestUpstream;
  beforeAll(async () => (upstream = await startUpstream()));
  afterAll(() => upstream?.stop());

  it('takes a push and serves it to anyone', async () => {
    await pushImage(upstream, layout, 'a', 'acme/app', 'v1');
    const res = await getManifest(upstream);
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(image.descriptor.digest);
  });
});

describe('an upstream behind basic auth', () => {
  let upstream: TestUpstream;
  beforeAll(async () => (upstream = await startUpstream('basic')));
  afterAll(() => upstream?.stop());

  it('takes a push with its user and serves only that user', async () => {
    await pushImage(upstream, layout, 'a', 'acme/app', 'v1');
    const anonymous = await getManifest(upstream);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic /);
    expect((await getManifest(upstream, basic(UPSTREAM_USER.username, 'wrong'))).status).toBe(401);
    expect((await getManifest(upstream, basic(UPSTREAM_USER.username, UPSTREAM_USER.password))).status).toBe(200);
  });
});

describe('an upstream behind a token service', () => {
  let upstream: TestUpstream;
  beforeAll(async () => (upstream = await startUpstream('token')));
  afterAll(() => upstream?.stop());

  it('takes a push with its user, challenges with Bearer and accepts the tokens of its service', async () => {
    await pushImage(upstream, layout, 'a', 'acme/app', 'v1');
    const tokens = upstream.tokens!;
    const challenge = (await getManifest(upstream)).headers.get('www-authenticate') ?? '';
    expect(challenge).toContain(`Bearer realm="${tokens.realm}"`);
    expect(challenge).toContain(`service="${tokens.service}"`);
    const scope = 'repository:acme/app:pull';
    const query = `?service=${encodeURIComponent(tokens.service)}&scope=${encodeURIComponent(scope)}`;
    const anonymous = (await (await fetch(`${tokens.realm}${query}`)).json()) as { token: string };
    expect((await getManifest(upstream, `Bearer ${anonymous.token}`)).status).toBe(200);
    const user = await fetch(`${tokens.realm}${query}`, { headers: { Authorization: basic(UPSTREAM_USER.username, UPSTREAM_USER.password) } });
    expect(user.status).toBe(200);
    const body = (await user.json()) as { token: string; access_token: string; issued_at: string };
    expect(body.access_token).toBe(body.token);
    expect((await getManifest(upstream, `Bearer ${body.token}`)).status).toBe(200);
    // A token for another repository, a mangled one, and a wrong password are refused.
    const other = (await (await fetch(`${tokens.realm}?service=${tokens.service}&scope=repository:other:pull`)).json()) as { token: string };
    expect((await getManifest(upstream, `Bearer ${other.token}`)).status).toBe(401);
    expect((await getManifest(upstream, `Bearer ${body.token.slice(0, -4)}AAAA`)).status).toBe(401);
    const wrong = await fetch(`${tokens.realm}${query}`, { headers: { Authorization: basic(UPSTREAM_USER.username, 'wrong') } });
    expect(wrong.status).toBe(401);
    expect(tokens.issued(scope)).toBeGreaterThanOrEqual(2);
  });
});

describe('distribution as a pull-through cache', () => {
  let upstream: TestUpstream;
  let cache: Peer;
  beforeAll(async () => {
    upstream = await startUpstream('token', { anonymous: false });
    await pushImage(upstream, layout, 'a', 'acme/app', 'v1');
    cache = await startDistribution({ proxy: { remoteurl: upstream.url, username: UPSTREAM_USER.username, password: UPSTREAM_USER.password } });
  });
  afterAll(async () => {
    await cache?.stop();
    await upstream?.stop();
  });

  it('serves what its upstream holds, logged in with the credentials it is given', async () => {
    const res = await getManifest(cache);
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(image.descriptor.digest);
    expect(upstream.tokens!.requests.some((r) => r.account === UPSTREAM_USER.username && r.status === 200)).toBe(true);
  });
});
