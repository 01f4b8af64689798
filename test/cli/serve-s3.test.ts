// `regmeta serve --storage s3://…` as a real process on a real S3 server
// (s3rver): pushes and pulls whole, chunked and by Range; --storage-redirect's
// 307 to a pre-signed URL, followed to the bytes, with the signature in no
// log line or metric; and the S3 server stopped and started again: HEAD still
// answers from the metadata, GET and /readyz answer 503 with Retry-After, and
// the registry recovers by itself.

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3Server, type S3Server } from '../blobstore/s3/server.js';
import { pushBlob, sha256 } from '../server/helpers.js';
import { serve, tempDir, type Served } from './run.js';

let s3: S3Server;
beforeAll(async () => {
  s3 = await startS3Server();
});
afterAll(async () => {
  await s3.cleanup();
});

/** --storage for the test server, under a prefix of its own. */
function storageUrl(prefix: string): string {
  const { bucket, endpoint, region } = s3.options;
  return `s3://${bucket}/${prefix}?${new URLSearchParams({ endpoint, region, forcePathStyle: 'true' })}`;
}

/** A registry on its own data directory and bucket prefix, with `args`. */
function serveOnS3(args: string[] = []): Promise<Served> {
  return serve(tempDir('regmeta-serve-s3-'), ['--storage', storageUrl(`serve/${randomUUID()}`), ...args], { env: s3.env });
}

/** Pushes `bytes` in a POST, two PATCHes and a PUT; returns the digest. */
async function pushChunked(url: string, repo: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const start = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  expect(start.status).toBe(202);
  let location = new URL(start.headers.get('location')!, url).href;
  const half = Math.floor(bytes.length / 2);
  for (const [from, to] of [
    [0, half],
    [half, bytes.length],
  ]) {
    const patch = await fetch(location, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${from}-${to - 1}` },
      body: bytes.subarray(from, to),
    });
    expect(patch.status).toBe(202);
    location = new URL(patch.headers.get('location')!, url).href;
  }
  const put = await fetch(`${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, { method: 'PUT' });
  expect(put.status).toBe(201);
  return digest;
}

describe('regmeta serve --storage s3://…', () => {
  it('keeps pushed blobs in the bucket and serves them whole, by Range and by HEAD', async () => {
    const served = await serveOnS3();
    try {
      expect(served.listening).toMatchObject({ storage: expect.stringMatching(/^s3:\/\/test-bucket\/serve\/[-\w]+\?endpoint=http:\/\/127\.0\.0\.1:/), redirect: false });
      const small = await pushBlob(served.url, 'acme/app', 'a small layer');
      const bytes = Buffer.alloc(3 * 1024 * 1024 + 17, 'regmeta ');
      const large = await pushChunked(served.url, 'acme/app', bytes);
      expect(await (await fetch(`${served.url}/v2/acme/app/blobs/${small}`)).text()).toBe('a small layer');
      const whole = await fetch(`${served.url}/v2/acme/app/blobs/${large}`);
      expect([whole.status, whole.headers.get('docker-content-digest')]).toEqual([200, large]);
      expect(sha256(Buffer.from(await whole.arrayBuffer()))).toBe(large);
      const part = await fetch(`${served.url}/v2/acme/app/blobs/${large}`, { headers: { Range: 'bytes=8-15' } });
      expect([part.status, part.headers.get('content-range'), await part.text()]).toEqual([206, `bytes 8-15/${bytes.length}`, 'regmeta ']);
      const head = await fetch(`${served.url}/v2/acme/app/blobs/${large}`, { method: 'HEAD' });
      expect([head.status, head.headers.get('content-length')]).toEqual([200, String(bytes.length)]);
      const ready = await fetch(`${served.url}/readyz`);
      expect([ready.status, await ready.json()]).toEqual([
        200,
        { status: 'ok', checks: { database: { status: 'ok' }, blobs: { status: 'ok' }, disk: { status: 'ok' } } },
      ]);
    } finally {
      expect(await served.stop()).toBe(0);
    }
    // Nothing of the credentials in what the server printed, and no SDK warning in its log.
    expect(served.stdout() + served.stderr()).not.toMatch(/S3RVER|X-Amz-/);
    expect(served.stderr()).not.toContain('NodeVersionSupportWarning');
  });
});

describe('regmeta serve --storage s3://… --storage-redirect', () => {
  it('answers a blob GET with a 307 to a pre-signed URL, which gives the bytes, whole and by Range', async () => {
    const served = await serveOnS3(['--storage-redirect']);
    let metrics = '';
    let digest = '';
    try {
      digest = await pushBlob(served.url, 'acme/app', 'redirected bytes');
      const res = await fetch(`${served.url}/v2/acme/app/blobs/${digest}`, { redirect: 'manual' });
      expect([res.status, res.headers.get('docker-content-digest'), res.headers.get('content-length'), await res.text()]).toEqual([307, digest, '0', '']);
      const location = new URL(res.headers.get('location')!);
      expect(location.origin).toBe(s3.endpoint);
      expect(location.searchParams.get('X-Amz-Expires')).toBe('1200');
      expect(await (await fetch(location)).text()).toBe('redirected bytes');
      expect(await (await fetch(location, { headers: { Range: 'bytes=11-15' } })).text()).toBe('bytes');
      // A client that follows the redirect, sending its Range on to the storage.
      const followed = await fetch(`${served.url}/v2/acme/app/blobs/${digest}`, { headers: { Range: 'bytes=0-9' } });
      expect([followed.status, await followed.text()]).toEqual([206, 'redirected']);
      // HEAD stays with the registry.
      const head = await fetch(`${served.url}/v2/acme/app/blobs/${digest}`, { method: 'HEAD', redirect: 'manual' });
      expect([head.status, head.headers.get('content-length'), head.headers.get('location')]).toEqual([200, '16', null]);
      metrics = await (await fetch(`${served.url}/metrics`)).text();
      expect(metrics).toMatch(/status="307"/);
    } finally {
      expect(await served.stop()).toBe(0);
    }
    // Read once the process is gone, so that every line is in.
    for (const text of [served.stdout(), served.stderr(), metrics]) expect(text).not.toMatch(/X-Amz-|Signature|Credential|S3RVER/);
    // The 307s are in the request log, by path alone.
    const lines = served.stdout().split('\n').filter((line) => line.includes('"status":307'));
    expect(lines.map((line) => JSON.parse(line) as unknown)).toEqual([
      expect.objectContaining({ method: 'GET', route: 'blob', path: `/v2/acme/app/blobs/${digest}` }),
      expect.objectContaining({ method: 'GET', route: 'blob', path: `/v2/acme/app/blobs/${digest}` }),
    ]);
  });
});

describe('the S3 server stopped under a running registry', () => {
  it('HEADs from the metadata, answers GET and /readyz 503 with Retry-After, and recovers once it is back', async () => {
    const served = await serveOnS3();
    try {
      const digest = await pushBlob(served.url, 'acme/app', 'kept through an outage');
      await s3.stop();
      try {
        const head = await fetch(`${served.url}/v2/acme/app/blobs/${digest}`, { method: 'HEAD' });
        expect(head.status).toBe(200);
        const get = await fetch(`${served.url}/v2/acme/app/blobs/${digest}`);
        expect([get.status, get.headers.get('retry-after'), (await get.json()) as unknown]).toEqual([
          503,
          '1',
          { errors: [{ code: 'UNAVAILABLE', message: 'the registry cannot serve this request now' }] },
        ]);
        const push = await fetch(`${served.url}/v2/acme/app/blobs/uploads/?digest=${sha256('during')}`, { method: 'POST', body: 'during' });
        expect([push.status, push.headers.get('retry-after')]).toEqual([503, '1']);
        const ready = await fetch(`${served.url}/readyz`);
        expect([ready.status, ready.headers.get('retry-after')]).toEqual([503, '1']);
        expect(((await ready.json()) as { checks: unknown }).checks).toMatchObject({ blobs: { status: 'failed', error: 'STORAGE_UNAVAILABLE' }, disk: { status: 'ok' } });
      } finally {
        await s3.start();
      }
      expect(await (await fetch(`${served.url}/v2/acme/app/blobs/${digest}`)).text()).toBe('kept through an outage');
      expect(await pushBlob(served.url, 'acme/app', 'after')).toBe(sha256('after'));
      expect((await fetch(`${served.url}/readyz`)).status).toBe(200);
    } finally {
      expect(await served.stop()).toBe(0);
    }
    // The outage's faults are logged, without a credential or a signature.
    expect(served.stderr()).toContain('STORAGE_UNAVAILABLE');
    expect(served.stderr()).not.toMatch(/S3RVER|X-Amz-Signature|X-Amz-Credential/);
  });
});
