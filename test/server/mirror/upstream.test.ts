// The upstream client's limits against a real docker-registry behind a
// real proxy: an upstream that cannot be reached or stalls is
// UPSTREAM_UNAVAILABLE within the timeout; no more requests than the
// concurrency reach it at once; a request holds its slot until its body is
// read or given up, and gives it back then.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../bench/peers.js';
import { HttpError } from '../../../src/server/errors.js';
import { resolveMirrors, type MirrorOptions } from '../../../src/server/mirror/options.js';
import { Upstream } from '../../../src/server/mirror/upstream.js';
import { OCI, OciLayout, type BuiltImage } from '../oci-layout.js';
import { gateProxy, type GateProxy } from './gate-proxy.js';
import { pushImage, startUpstream, type TestUpstream } from './upstreams.js';

/** Longer than any test: what times out here is what the test makes stall. */
const HOUR = 3_600_000;
let upstream: TestUpstream;
let proxy: GateProxy;
let image: BuiltImage;
const clients: Upstream[] = [];

function client(url: string, options: Partial<MirrorOptions> = {}): Upstream {
  const made = new Upstream(resolveMirrors([{ prefix: 'up', url, ...options }])[0]);
  clients.push(made);
  return made;
}

async function rejection(promise: Promise<unknown>): Promise<HttpError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(HttpError);
  return error as HttpError;
}

const manifest = (mirror: Upstream) => mirror.fetch('GET', 'acme/app', 'manifests/v1', { Accept: OCI.manifest });

beforeAll(async () => {
  const layout = new OciLayout(join(mkdtempSync(join(tmpdir(), 'regmeta-upstream-')), 'layout'));
  // A layer of some MiB: its transfer outlasts the sockets' buffers, so a stalled one stays open.
  image = layout.addImage({ layers: 1, layerKind: 'raw', layerSize: 8 << 20 });
  layout.tag(image.descriptor, 'a');
  upstream = await startUpstream();
  await pushImage(upstream, layout, 'a', 'acme/app', 'v1');
  proxy = await gateProxy(upstream.url);
});

afterEach(() => {
  proxy.hold(undefined);
  proxy.stallBodies(undefined);
  proxy.release();
});

afterAll(async () => {
  for (const made of clients) made.close();
  await proxy?.close();
  await upstream?.stop();
});

describe('an upstream that fails', () => {
  it('is unavailable when it cannot be reached', async () => {
    const port = await freePort();
    const error = await rejection(manifest(client(`http://127.0.0.1:${port}`)));
    expect([error.code, error.options.headers?.['Retry-After']]).toEqual(['UPSTREAM_UNAVAILABLE', '1']);
    expect(error.message).toContain(`http://127.0.0.1:${port}`);
  });

  it('is unavailable when it does not answer within the timeout', async () => {
    proxy.hold('manifests');
    const error = await rejection(manifest(client(proxy.url, { timeout: 200 })));
    expect(error.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(error.message).toContain('no answer within 200 ms');
  });

  it('fails the body that stops coming within the timeout', async () => {
    proxy.stallBodies('blobs');
    const answer = await client(proxy.url, { timeout: 200 }).fetch('GET', 'acme/app', `blobs/${image.layers[0].digest}`);
    expect(answer.status).toBe(200);
    const error = await rejection((async () => {
      for await (const _ of answer.body);
    })());
    expect(error.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(error.message).toContain('no bytes within 200 ms');
  });
});

describe('the concurrency', () => {
  it('keeps the requests beyond it waiting until a slot is free', async () => {
    const mirror = client(proxy.url, { concurrency: 2, timeout: HOUR });
    // A connection to begin with, over before the count below starts.
    for await (const _ of (await manifest(mirror)).body);
    await proxy.until(() => proxy.open === 0);
    const before = { arrived: proxy.arrived };
    proxy.maxOpen = 0;
    proxy.hold('manifests');
    const answers = [1, 2, 3].map(() => manifest(mirror).then(async (answer) => {
      for await (const _ of answer.body);
      return answer.status;
    }));
    await proxy.until(() => proxy.held === 2);
    proxy.release(); // the two held go on; the third comes in, is held, and goes on
    await proxy.until(() => proxy.arrived === before.arrived + 3);
    proxy.hold(undefined);
    proxy.release();
    expect(await Promise.all(answers)).toEqual([200, 200, 200]);
    expect(proxy.arrived).toBe(before.arrived + 3);
    expect(proxy.maxOpen).toBe(2);
  });

  it('gets a slot back from a body given up halfway and from a HEAD answer never read', async () => {
    const mirror = client(proxy.url, { concurrency: 1, timeout: HOUR });
    proxy.stallBodies('blobs');
    const blob = await mirror.fetch('GET', 'acme/app', `blobs/${image.layers[0].digest}`);
    await proxy.until(() => proxy.held === 1);
    // The registry's client went away: its handler destroys what it was relaying.
    blob.body.destroy();
    proxy.stallBodies(undefined);
    const head = await mirror.fetch('HEAD', 'acme/app', `blobs/${image.layers[0].digest}`);
    expect(head.status).toBe(200);
    const next = await manifest(mirror);
    expect(next.status).toBe(200);
    next.body.resume();
  }, 30_000);

  it('lets a request whose client went away leave the line', async () => {
    const mirror = client(proxy.url, { concurrency: 1, timeout: HOUR });
    proxy.hold('manifests');
    const arrived = proxy.arrived;
    const first = manifest(mirror);
    await proxy.until(() => proxy.held === 1);
    const gone = new AbortController();
    const second = mirror.fetch('GET', 'acme/app', 'manifests/v1', { Accept: OCI.manifest }, gone.signal);
    const third = manifest(mirror);
    // One turn of the event loop: both are in the line by then (no I/O before it for an anonymous upstream).
    await new Promise((resolve) => setImmediate(resolve));
    gone.abort();
    // It leaves at once, while the first still holds the only slot.
    await expect(second).rejects.toMatchObject({ name: 'AbortError' });
    proxy.hold(undefined);
    proxy.release();
    for (const answer of [await first, await third]) {
      expect(answer.status).toBe(200);
      answer.body.resume();
    }
    expect(proxy.arrived).toBe(arrived + 2);
  });

  it('holds a slot until its body is over, however long', async () => {
    const mirror = client(proxy.url, { concurrency: 1, timeout: 1000 });
    proxy.stallBodies('blobs');
    const blob = await mirror.fetch('GET', 'acme/app', `blobs/${image.layers[0].digest}`);
    let over = false;
    blob.body.on('error', () => {});
    blob.body.on('close', () => (over = true));
    await proxy.until(() => proxy.held === 1);
    const arrived = proxy.arrived;
    const next = manifest(mirror);
    // The manifest waits for the slot the stalled blob holds until its timeout destroys it.
    await proxy.until(() => proxy.arrived === arrived + 1);
    expect(over).toBe(true);
    expect((await next).status).toBe(200);
    (await next).body.resume();
  });
});
