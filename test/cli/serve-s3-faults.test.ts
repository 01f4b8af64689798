// The S3 service going away under a real `regmeta serve --storage s3://…`
// (SQLite metadata) and coming back: the test S3 server is stopped and
// started again on the same port and directory, between the requests of an
// upload, during a PATCH's body, in the middle of a blob being pulled, and
// under gc; and S3 slow (a proxy holding its answers). A request that needs
// S3 while it is away gets 503 with Retry-After (never 500, never a hang
// past the bound); what needs only the metadata (tags, manifests, blob HEAD)
// keeps answering; the registry serves again once S3 is back, without a
// restart; and everything it acknowledged (201) pulls byte-identical
// afterwards.

import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OCI_MANIFEST, sha256 } from '../server/helpers.js';
import { startS3Server, type S3Server } from '../blobstore/s3/server.js';
import { acknowledged, answerOf, makeImage, pullProblem, pushTo, serverErrors, type Answer, type Image } from './replicas.js';
import { regmeta, serve, tempDir, type Served } from './run.js';
import { stallProxy } from './stall-proxy.js';
import type { GcResult } from '../../src/cli/commands/gc.js';

const MiB = 1 << 20;
/** No answer may take longer: generous for a loaded machine, far below a client's patience. */
const BOUND_MS = 60_000;

let s3: S3Server;
let server: Served;
let data: string;
let storage: string[];
/** Every image the registry acknowledged, by repo:tag: all must pull whole at the end. */
const acked = new Map<string, Image>();
/** Every blob the registry acknowledged outside an image, by digest: its repository and bytes. */
const ackedBlobs = new Map<string, { repo: string; bytes: Buffer }>();

beforeAll(async () => {
  s3 = await startS3Server();
  data = tempDir('regmeta-s3-faults-');
  storage = ['--storage', `s3://${s3.bucket}/faults?endpoint=${s3.endpoint}&forcePathStyle=true`];
  server = await serve(data, storage);
});

afterAll(async () => {
  await server?.stop();
  await s3?.cleanup();
});

/** A request within the bound: its status, Retry-After and body; status 0 with the error when none came. */
async function send(path: string, init: RequestInit = {}): Promise<{ status: number; retryAfter: string | null; body: Buffer; headers: Headers; error?: string }> {
  try {
    const res = await fetch(new URL(path, server.url), { ...init, signal: AbortSignal.timeout(BOUND_MS) });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: Buffer.from(await res.arrayBuffer()), headers: res.headers };
  } catch (error) {
    return { status: 0, retryAfter: null, body: Buffer.alloc(0), headers: new Headers(), error: String(error) };
  }
}

/** Expects a 503 with Retry-After: what a request that needs S3 gets while it is away. */
function expectUnavailable(answer: Awaited<ReturnType<typeof send>>, what: string): void {
  expect({ what, status: answer.status, error: answer.error }).toEqual({ what, status: 503, error: undefined });
  expect(answer.retryAfter, `${what}: Retry-After`).toMatch(/^\d+$/);
}

/** Pushes `image` as repo:tag and records it when acknowledged. */
async function pushImage(repo: string, tag: string, image: Image): Promise<void> {
  const pushed = await pushTo(server.url, repo, tag, image);
  expect(acknowledged(pushed), JSON.stringify(pushed)).toBe(true);
  acked.set(`${repo}:${tag}`, image);
}

/** Pushes a blob in one POST; records it when acknowledged. */
async function postBlob(repo: string, bytes: Buffer): Promise<Answer> {
  const res = await fetch(`${server.url}/v2/${repo}/blobs/uploads/?digest=${sha256(bytes)}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: bytes,
    signal: AbortSignal.timeout(BOUND_MS),
  });
  const answer = await answerOf(res);
  if (answer.status === 201) ackedBlobs.set(sha256(bytes), { repo, bytes });
  return answer;
}

/** The metadata requests that must answer while S3 is away, on an image pushed before. */
async function metadataAnswers(repo: string, tag: string, image: Image): Promise<void> {
  const tags = await send(`/v2/${repo}/tags/list`);
  expect(tags.status).toBe(200);
  expect((JSON.parse(tags.body.toString()) as { tags: string[] }).tags).toContain(tag);
  const head = await send(`/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { Accept: OCI_MANIFEST } });
  expect(head.status).toBe(200);
  expect(head.headers.get('docker-content-digest')).toBe(image.digest);
  const manifest = await send(`/v2/${repo}/manifests/${image.digest}`, { headers: { Accept: OCI_MANIFEST } });
  expect(manifest.status).toBe(200);
  expect(manifest.body.toString()).toBe(image.manifest);
  const blobHead = await send(`/v2/${repo}/blobs/${sha256(Buffer.from(image.blobs[1]))}`, { method: 'HEAD' });
  expect(blobHead.status).toBe(200);
}

/** The upload's Location with ?digest= of `bytes`, for the closing PUT. */
const withDigest = (location: string, bytes: Buffer) => `${location}${location.includes('?') ? '&' : '?'}digest=${sha256(bytes)}`;

/** The server's answers of 500 and above other than 503: none may be logged. */
const faults = (served: Served) => serverErrors(served).filter((a) => a.status !== 503);

/**
 * gc's own error line. Under Node 20 the AWS SDK also prints a warning of
 * its own on stderr (its releases after January 2027 need Node 22).
 */
const gcError = (stderr: string) => stderr.split('\n').find((line) => line.startsWith('regmeta gc:')) ?? stderr;

/** A chunked upload: POST; @returns the Location to PATCH. */
async function startUpload(repo: string): Promise<string> {
  const started = await send(`/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  expect(started.status).toBe(202);
  return started.headers.get('location')!;
}

async function patch(location: string, bytes: Buffer, offset: number) {
  return send(location, {
    method: 'PATCH',
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${offset}-${offset + bytes.length - 1}` },
    body: bytes,
  });
}

/**
 * The committed size of an upload, as GET on its Location reports it (Range
 * 0-<last>). An empty session also reports 0-0, the spec's form: no chunk
 * here is one byte long, so 0-0 means empty.
 */
async function uploaded(location: string): Promise<number> {
  const status = await send(location);
  expect(status.status).toBe(204);
  const range = status.headers.get('range');
  return range === null || range === '0-0' ? 0 : Number(range.split('-')[1]) + 1;
}

describe('regmeta serve on S3 while S3 goes away and comes back', () => {
  it('between the requests of a chunked upload: PATCH and POST get 503, metadata answers, then the upload finishes where it was', async () => {
    const repo = 'faults/upload';
    const image = makeImage('before the upload fault');
    await pushImage(repo, 'v1', image);
    const bytes = randomBytes(14 * MiB + 5);
    let location = await startUpload(repo);
    const first = await patch(location, bytes.subarray(0, 6 * MiB), 0);
    expect(first.status).toBe(202);
    location = first.headers.get('location')!;

    await s3.stop();
    expectUnavailable(await patch(location, bytes.subarray(6 * MiB, 12 * MiB), 6 * MiB), 'PATCH');
    const last = { 'Content-Type': 'application/octet-stream', 'Content-Range': `${6 * MiB}-${bytes.length - 1}` };
    expectUnavailable(await send(withDigest(location, bytes), { method: 'PUT', headers: last, body: bytes.subarray(6 * MiB) }), 'PUT with the last chunk');
    const other = randomBytes(64 * 1024);
    const posted = await postBlob(repo, other);
    expect(posted.status).toBe(503);
    expectUnavailable(await send(`/v2/${repo}/blobs/${sha256(Buffer.from(image.blobs[1]))}`), 'blob GET');
    await metadataAnswers(repo, 'v1', image);

    await s3.start();
    // Where the session stands decides where the client resumes: the failed PATCH left nothing half-counted.
    const at = await uploaded(location);
    expect(at).toBe(6 * MiB);
    for (const [start, end] of [[at, 12 * MiB], [12 * MiB, bytes.length]]) {
      const next = await patch(location, bytes.subarray(start, end), start);
      expect(next.status, next.body.toString()).toBe(202);
      location = next.headers.get('location')!;
    }
    const put = await send(withDigest(location, bytes), { method: 'PUT' });
    expect(put.status, put.body.toString()).toBe(201);
    ackedBlobs.set(sha256(bytes), { repo, bytes });
    expect((await postBlob(repo, other)).status).toBe(201);
    expect(faults(server)).toEqual([]);
  });

  it('during a PATCH body: the answer is 202 or 503, never 500, and the client resumes from the size the session reports', async () => {
    const repo = 'faults/patch';
    const bytes = randomBytes(12 * MiB + 7);
    let location = await startUpload(repo);
    // The body goes in two halves: S3 stops after the first half has been sent.
    const url = new URL(location, server.url);
    const answered = new Promise<{ status: number; location?: string }>((resolve, reject) => {
      const req = request(url, { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': bytes.length, 'Content-Range': `0-${bytes.length - 1}` } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location }));
      });
      req.setTimeout(BOUND_MS, () => req.destroy(new Error('no answer within the bound')));
      req.on('error', reject);
      req.write(bytes.subarray(0, 6 * MiB), () => {
        void s3.stop().then(() => req.end(bytes.subarray(6 * MiB)));
      });
    });
    const outcome = await answered.catch((error: Error) => ({ status: 0, error: error.message, location: undefined }));
    expect([202, 503], JSON.stringify(outcome)).toContain(outcome.status);
    await s3.start();
    if (outcome.location) location = outcome.location;
    // A client resumes from what the session reports, whatever the answer was.
    const at = await uploaded(location);
    expect(at).toBeLessThanOrEqual(bytes.length);
    if (outcome.status === 202) expect(at).toBe(bytes.length);
    if (at < bytes.length) {
      const again = await patch(location, bytes.subarray(at), at);
      expect(again.status, again.body.toString()).toBe(202);
      location = again.headers.get('location')!;
    }
    const put = await send(withDigest(location, bytes), { method: 'PUT' });
    expect(put.status, put.body.toString()).toBe(201);
    ackedBlobs.set(sha256(bytes), { repo, bytes });
    expect(faults(server)).toEqual([]);
  });

  it('in the middle of a pull: the pull ends (whole or cut short, never wrong bytes, never a hang), GETs get 503, HEADs answer, then it pulls whole', async () => {
    const repo = 'faults/pull';
    const bytes = randomBytes(64 * MiB);
    expect((await postBlob(repo, bytes)).status).toBe(201);
    const digest = sha256(bytes);
    const res = await fetch(`${server.url}/v2/${repo}/blobs/${digest}`, { signal: AbortSignal.timeout(BOUND_MS) });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const chunks: Buffer[] = [Buffer.from((await reader.read()).value!)];
    await s3.stop();
    let cut = '';
    try {
      for (let next = await reader.read(); !next.done; next = await reader.read()) chunks.push(Buffer.from(next.value));
    } catch (error) {
      cut = String(error);
    }
    const received = Buffer.concat(chunks);
    if (cut === '') expect(received.equals(bytes), 'a pull that ended without an error has every byte').toBe(true);
    else expect(received.length).toBeLessThan(bytes.length);
    expect(cut).not.toMatch(/timeout|aborted due to timeout/i);

    expectUnavailable(await send(`/v2/${repo}/blobs/${digest}`), 'blob GET');
    expectUnavailable(await send(`/v2/${repo}/blobs/${digest}`, { headers: { Range: 'bytes=0-99' } }), 'blob GET with Range');
    const head = await send(`/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(bytes.length));

    await s3.start();
    const again = await send(`/v2/${repo}/blobs/${digest}`);
    expect(again.status).toBe(200);
    expect(again.body.equals(bytes)).toBe(true);
    expect(faults(server)).toEqual([]);
  });

  it('a slow S3 stalls no metadata request: while a blob GET waits on S3, tags, manifests and blob HEADs answer; the GET then gets 503', async () => {
    const repo = 'faults/slow';
    const image = makeImage('behind a slow S3');
    await pushImage(repo, 'v1', image);
    const layer = Buffer.from(image.blobs[1]);
    // A second process on the same data and bucket, reaching S3 through a proxy that holds every request about the layer.
    const proxy = await stallProxy(s3.endpoint, sha256(layer).slice('sha256:'.length));
    const slow = await serve(data, ['--storage', `s3://${s3.bucket}/faults?endpoint=${proxy.url}&forcePathStyle=true`]);
    try {
      const get = fetch(`${slow.url}/v2/${repo}/blobs/${sha256(layer)}`, { signal: AbortSignal.timeout(BOUND_MS) }).then(async (res) => ({
        status: res.status,
        retryAfter: res.headers.get('retry-after'),
        body: Buffer.from(await res.arrayBuffer()),
      }));
      await proxy.stalled;
      const at = (path: string, init: RequestInit = {}) => fetch(`${slow.url}${path}`, { ...init, signal: AbortSignal.timeout(BOUND_MS) });
      expect((await at(`/v2/${repo}/tags/list`)).status).toBe(200);
      expect((await at(`/v2/${repo}/manifests/v1`, { method: 'HEAD', headers: { Accept: OCI_MANIFEST } })).status).toBe(200);
      const manifest = await at(`/v2/${repo}/manifests/v1`, { headers: { Accept: OCI_MANIFEST } });
      expect(await manifest.text()).toBe(image.manifest);
      expect((await at(`/v2/${repo}/blobs/${sha256(layer)}`, { method: 'HEAD' })).status).toBe(200);
      // The other blobs come from S3 past the proxy, unheld.
      const config = await at(`/v2/${repo}/blobs/${sha256(Buffer.from(image.blobs[0]))}`);
      expect(await config.text()).toBe(image.blobs[0]);
      await proxy.close();
      const held = await get;
      expect(held.status, held.body.toString()).toBe(503);
      expect(held.retryAfter).toMatch(/^\d+$/);
    } finally {
      await proxy.close();
      await slow.stop();
    }
    expect(faults(slow)).toEqual([]);
  });

  it('under gc: gc held at a request to S3 when S3 stops ends with an error, as does gc with S3 away; metadata answers; once S3 is back gc collects the garbage and every acknowledged blob and image pulls byte-identical', async () => {
    const repo = 'faults/gc';
    const kept = makeImage('kept through gc');
    await pushImage(repo, 'kept', kept);
    // Every blob acknowledged so far pulls byte-identical, before gc may take those no manifest references.
    for (const [digest, { repo: where, bytes }] of ackedBlobs) {
      const pulled = await send(`/v2/${where}/blobs/${digest}`);
      expect(pulled.status, digest).toBe(200);
      expect(pulled.body.equals(bytes), digest).toBe(true);
    }
    // Garbage: a blob no manifest references.
    const garbage = randomBytes(1024);
    expect((await postBlob(repo, garbage)).status).toBe(201);
    const gc = (endpoint: string) =>
      regmeta(['gc', '--data', data, '--storage', `s3://${s3.bucket}/faults?endpoint=${endpoint}&forcePathStyle=true`, '--grace', '0', '--json']);

    // gc reaches S3 through a proxy that holds its first request about the garbage blob; S3 stops while it waits.
    const proxy = await stallProxy(s3.endpoint, sha256(garbage).slice('sha256:'.length));
    const held = gc(proxy.url);
    await proxy.stalled;
    await s3.stop();
    await proxy.close();
    for (const run of [await held, await gc(s3.endpoint)]) {
      expect(run.status, run.stdout).not.toBe(0);
      expect(run.stderr).not.toMatch(/\n\s+at /);
      expect(gcError(run.stderr)).toMatch(/^regmeta gc: .*object storage cannot serve now/);
    }
    await metadataAnswers(repo, 'kept', kept);
    await s3.start();

    const swept = await gc(s3.endpoint);
    expect(swept.status, swept.stderr).toBe(0);
    // The held run may have dropped the garbage's record before S3 went; its object then stayed, and goes now as a stray.
    const result = JSON.parse(swept.stdout) as GcResult;
    expect(result.blobsDeleted.some((b) => b.digest === sha256(garbage)) || result.filesRemoved > 0, swept.stdout).toBe(true);
    expect((await send(`/v2/${repo}/blobs/${sha256(garbage)}`, { method: 'HEAD' })).status).toBe(404);
    const again = JSON.parse((await gc(s3.endpoint)).stdout) as GcResult;
    expect([again.blobsDeleted, again.filesRemoved, again.problems]).toEqual([[], 0, []]);
    for (const [reference, image] of acked) {
      const [name, tag] = reference.split(':');
      expect(await pullProblem(server.url, name, tag, image)).toBe('');
    }
    expect(faults(server)).toEqual([]);
  });
});
