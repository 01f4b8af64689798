// The upstream client's logins against real docker-registry processes:
// anonymous, basic (htpasswd) and bearer tokens from a token service, as
// Docker Hub asks; what is refused is DENIED and names no secret.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../bench/peers.js';
import { HttpError } from '../../../src/server/errors.js';
import { resolveMirrors, type MirrorOptions } from '../../../src/server/mirror/options.js';
import { Upstream } from '../../../src/server/mirror/upstream.js';
import { OCI, OciLayout, type BuiltImage } from '../oci-layout.js';
import { gateProxy, type GateProxy } from './gate-proxy.js';
import { pushImage, startUpstream, UPSTREAM_USER, type TestUpstream } from './upstreams.js';

const SCOPE = 'repository:acme/app:pull';
let layout: OciLayout;
let image: BuiltImage;
const upstreams: Upstream[] = [];
/** Every error message the tests saw, checked for secrets at the end. */
const messages: string[] = [];

function client(url: string, options: Partial<MirrorOptions> = {}): Upstream {
  const upstream = new Upstream(resolveMirrors([{ prefix: 'up', url, ...options }])[0]);
  upstreams.push(upstream);
  return upstream;
}

/** GET of acme/app:v1's manifest; the answer's status and digest, the body read. */
async function pull(upstream: Upstream, repo = 'acme/app'): Promise<{ status: number; digest: unknown }> {
  const answer = await upstream.fetch('GET', repo, 'manifests/v1', { Accept: OCI.manifest });
  for await (const _ of answer.body);
  return { status: answer.status, digest: answer.headers['docker-content-digest'] };
}

/** The HttpError a promise rejects with (its message kept for the secrets check). */
async function failure(promise: Promise<unknown>): Promise<HttpError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(HttpError);
  messages.push((error as HttpError).message);
  return error as HttpError;
}

beforeAll(() => {
  layout = new OciLayout(join(mkdtempSync(join(tmpdir(), 'regmeta-upstream-auth-')), 'layout'));
  image = layout.addImage();
  layout.tag(image.descriptor, 'a');
});

afterAll(() => {
  for (const upstream of upstreams) upstream.close();
});

describe('an anonymous upstream', () => {
  let upstream: TestUpstream;
  beforeAll(async () => {
    upstream = await startUpstream();
    await pushImage(upstream, layout, 'a', 'acme/app', 'v1');
  });
  afterAll(() => upstream?.stop());

  it('is pulled from without credentials; what it lacks is its answer, not an error', async () => {
    const mirror = client(upstream.url);
    expect(await pull(mirror)).toEqual({ status: 200, digest: image.descriptor.digest });
    const head = await mirror.fetch('HEAD', 'acme/app', `blobs/${image.config.digest}`);
    expect([head.status, head.headers['content-length']]).toEqual([200, String(image.config.size)]);
    expect((await pull(mirror, 'acme/none')).status).toBe(404);
  });
});

describe('an upstream behind basic auth', () => {
  let upstream: TestUpstream;
  beforeAll(async () => {
    upstream = await startUpstream('basic');
    await pushImage(upstream, layout, 'a', 'acme/app', 'v1');
  });
  afterAll(() => upstream?.stop());

  it('is pulled from with the right password, once it has asked for it', async () => {
    const mirror = client(upstream.url, { username: UPSTREAM_USER.username, password: UPSTREAM_USER.password });
    expect(await pull(mirror)).toEqual({ status: 200, digest: image.descriptor.digest });
    expect(await pull(mirror)).toEqual({ status: 200, digest: image.descriptor.digest });
  });

  it('denies a wrong password and no credentials, naming the upstream and the repository', async () => {
    const wrong = await failure(pull(client(upstream.url, { username: UPSTREAM_USER.username, password: 'wrong-Pa55' })));
    expect(wrong.code).toBe('DENIED');
    expect(wrong.message).toContain(upstream.url);
    expect(wrong.message).toContain('acme/app');
    expect(wrong.message).not.toContain('wrong-Pa55');
    const none = await failure(pull(client(upstream.url)));
    expect(none.code).toBe('DENIED');
    expect(none.message).toContain('none are configured');
  });
});

describe('an upstream behind a token service', () => {
  let upstream: TestUpstream;
  let proxy: GateProxy;
  const credentials = { username: UPSTREAM_USER.username, password: UPSTREAM_USER.password };
  beforeAll(async () => {
    upstream = await startUpstream('token');
    await pushImage(upstream, layout, 'a', 'acme/app', 'v1');
    await pushImage(upstream, layout, 'a', 'acme/other', 'v1');
    proxy = await gateProxy(upstream.url);
  });
  afterAll(async () => {
    await proxy?.close();
    await upstream?.stop();
  });

  it('fetches one token per scope, with basic credentials, and reuses it', async () => {
    const tokens = upstream.tokens!;
    const before = tokens.requests.length;
    const mirror = client(upstream.url, credentials);
    // Requests at once wait on the one token request of their scope.
    const first = await Promise.all([1, 2, 3, 4].map(() => pull(mirror)));
    expect(first.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(await pull(mirror)).toEqual({ status: 200, digest: image.descriptor.digest });
    await pull(mirror, 'acme/other');
    const asked = tokens.requests.slice(before);
    expect(asked.map((r) => [r.scope, r.account, r.service])).toEqual([
      [SCOPE, UPSTREAM_USER.username, tokens.service],
      ['repository:acme/other:pull', UPSTREAM_USER.username, tokens.service],
    ]);
  });

  it('fetches tokens anonymously without credentials, as from Docker Hub, and reads access_token alone', async () => {
    const tokens = upstream.tokens!;
    const before = tokens.requests.length;
    tokens.settings.fields = 'access_token';
    try {
      expect(await pull(client(upstream.url))).toEqual({ status: 200, digest: image.descriptor.digest });
    } finally {
      tokens.settings.fields = 'both';
    }
    expect(tokens.requests.slice(before).map((r) => [r.scheme, r.account, r.status])).toEqual([[undefined, undefined, 200]]);
  });

  it('fetches a token again once it has expired, and for one the upstream refuses', async () => {
    const tokens = upstream.tokens!;
    const mirror = client(proxy.url, credentials);
    const issued = tokens.issued(SCOPE);
    // issued_at an hour ago with expires_in 60: each token is stale on arrival.
    Object.assign(tokens.settings, { issuedAgo: 3600, expiresIn: 60 });
    try {
      expect(await pull(mirror)).toEqual({ status: 200, digest: image.descriptor.digest });
      expect(await pull(mirror)).toEqual({ status: 200, digest: image.descriptor.digest });
    } finally {
      Object.assign(tokens.settings, { issuedAgo: 0, expiresIn: undefined });
    }
    expect(tokens.issued(SCOPE)).toBe(issued + 2);
    await pull(mirror); // a fresh one, kept
    await pull(mirror);
    expect(tokens.issued(SCOPE)).toBe(issued + 3);
    // The upstream refuses the kept token once: it is dropped, a new one fetched, the request sent again.
    proxy.refuse(1, `Bearer realm="${tokens.realm}",service="${tokens.service}",scope="${SCOPE}"`);
    expect(await pull(mirror)).toEqual({ status: 200, digest: image.descriptor.digest });
    expect(tokens.issued(SCOPE)).toBe(issued + 4);
  });

  it('denies a wrong password, and a token the upstream refuses even fresh', async () => {
    const tokens = upstream.tokens!;
    // A repository the upstream lacks is its answer, logged in or not.
    expect((await pull(client(upstream.url, credentials), 'acme/none')).status).toBe(404);
    const wrong = await failure(pull(client(upstream.url, { ...credentials, password: 'wrong-Pa55' })));
    expect(wrong.code).toBe('DENIED');
    expect(wrong.message).toContain(upstream.url);
    expect(wrong.message).toContain('acme/app');
    expect(tokens.requests.at(-1)?.status).toBe(401);
    // Tokens the registry will not take (the service asks for acme/app, the proxy keeps refusing).
    proxy.refuse(2, `Bearer realm="${tokens.realm}",service="${tokens.service}",scope="${SCOPE}"`);
    const refused = await failure(pull(client(proxy.url, credentials)));
    expect(refused.code).toBe('DENIED');
    expect(refused.message).toContain(proxy.url);
    // A 403 of the upstream, and a 401 without a challenge or with one of another scheme.
    proxy.refuse(1, '', 403);
    expect(await failure(pull(client(proxy.url, credentials)))).toMatchObject({ code: 'DENIED' });
    proxy.refuse(1, 'Negotiate');
    expect((await failure(pull(client(proxy.url, credentials)))).message).toContain('negotiate authentication, which a mirror does not speak');
    proxy.refuse(1, '', 401);
    expect(await failure(pull(client(proxy.url)))).toMatchObject({ code: 'DENIED' });
    tokens.settings.anonymous = false;
    try {
      const anonymous = await failure(pull(client(upstream.url)));
      expect(anonymous.code).toBe('DENIED');
    } finally {
      tokens.settings.anonymous = true;
    }
  });

  it('is unavailable when its token service fails, cannot be reached, stalls, or is not http(s)', async () => {
    const tokens = upstream.tokens!;
    tokens.settings.failWith = 503;
    try {
      const failing = await failure(pull(client(upstream.url, credentials)));
      expect(failing.code).toBe('UPSTREAM_UNAVAILABLE');
      expect(failing.message).toContain(new URL(tokens.realm).origin);
    } finally {
      tokens.settings.failWith = undefined;
    }
    const port = await freePort();
    proxy.refuse(1, `Bearer realm="http://127.0.0.1:${port}/token",service="${tokens.service}"`);
    const unreachable = await failure(pull(client(proxy.url, credentials)));
    expect(unreachable.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(unreachable.message).toContain(`token service http://127.0.0.1:${port} cannot be reached`);
    const tokenGate = await gateProxy(new URL(tokens.realm).origin);
    try {
      tokenGate.hold('/token');
      proxy.refuse(1, `Bearer realm="${tokenGate.url}/token",service="${tokens.service}"`);
      const stalled = await failure(pull(client(proxy.url, { ...credentials, timeout: 200 })));
      expect(stalled.code).toBe('UPSTREAM_UNAVAILABLE');
      expect(stalled.message).toContain(`token service ${tokenGate.url} did not answer within 200 ms`);
    } finally {
      await tokenGate.close();
    }
    proxy.refuse(1, `Bearer realm="file:///etc/passwd",service="${tokens.service}"`);
    const notHttp = await failure(pull(client(proxy.url, credentials)));
    expect(notHttp.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(notHttp.message).toContain('not http(s)');
  });
});

describe('secrets', () => {
  it('appear in no error message', () => {
    expect(messages.length).toBeGreaterThanOrEqual(6);
    const basic = Buffer.from(`${UPSTREAM_USER.username}:${UPSTREAM_USER.password}`).toString('base64');
    for (const message of messages) {
      for (const secret of [UPSTREAM_USER.password, 'wrong-Pa55', basic, 'Basic ', 'Bearer ', 'eyJ', 'Authorization']) {
        expect(message).not.toContain(secret);
      }
    }
  });
});
