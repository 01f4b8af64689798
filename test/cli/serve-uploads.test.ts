// Upload sessions that outlive a process: a chunked upload to a real
// `regmeta serve` survives SIGKILL and SIGTERM of its server (SQLite), and,
// with several replicas on one PostgreSQL database and one blob directory,
// spreads over the replicas, survives a replica starting mid-upload, and
// never interleaves the bytes of two PATCHes on one session.

import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PostgresServer } from '../store/postgres/server.js';
import { serve, tempDir, type Served } from './run.js';

const dirs: string[] = [];
const served: Served[] = [];
afterAll(async () => {
  await Promise.all(served.map((s) => s.stop()));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = tempDir('regmeta-uploads-');
  dirs.push(dir);
  return dir;
}

async function start(data: string, args: string[] = []): Promise<Served> {
  const s = await serve(data, args);
  served.push(s);
  return s;
}

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** POST: a new session; its id and its Location. */
async function post(url: string, repo: string): Promise<{ id: string; location: string }> {
  const res = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  expect(res.status).toBe(202);
  return { id: res.headers.get('docker-upload-uuid')!, location: res.headers.get('location')! };
}

/** PATCH one chunk at `start` with Content-Range; the response's status and Range. */
async function patch(url: string, location: string, chunk: Buffer, start: number): Promise<{ status: number; range: string | null }> {
  const res = await fetch(`${url}${location}`, {
    method: 'PATCH',
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${start}-${start + chunk.length - 1}` },
    body: chunk,
  });
  await res.arrayBuffer();
  return { status: res.status, range: res.headers.get('range') };
}

async function put(url: string, location: string, digest: string): Promise<number> {
  const res = await fetch(`${url}${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, { method: 'PUT' });
  await res.arrayBuffer();
  return res.status;
}

async function pull(url: string, repo: string, digest: string): Promise<Buffer> {
  const res = await fetch(`${url}/v2/${repo}/blobs/${digest}`);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

/** A streamed PATCH (no Content-Range) whose body trickles in `pieces` over about `ms`. */
function slowPatch(url: string, location: string, body: Buffer, pieces: number, ms: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${location}`, { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    const size = Math.ceil(body.length / pieces);
    let i = 0;
    const next = () => {
      if (i * size >= body.length) return void req.end();
      req.write(body.subarray(i * size, ++i * size));
      setTimeout(next, ms / pieces);
    };
    next();
  });
}

describe('a chunked upload to regmeta serve on SQLite', () => {
  it.each(['SIGKILL', 'SIGTERM'] as const)('survives %s and a restart on the same data; a file longer than its committed size is cut back', async (signal) => {
    const data = dataDir();
    const blob = randomBytes(3 * 64 * 1024);
    const chunks = [blob.subarray(0, 65536), blob.subarray(65536, 131072), blob.subarray(131072)];
    const first = await start(data);
    const { id, location } = await post(first.url, 'acme/app');
    expect(await patch(first.url, location, chunks[0], 0)).toEqual({ status: 202, range: '0-65535' });
    first.child.kill(signal);
    await first.stop();

    // What a crash mid-chunk leaves: bytes beyond the committed size.
    appendFileSync(join(data, 'uploads', id), randomBytes(1000));
    const second = await start(data);
    const status = await fetch(`${second.url}${location}`);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-65535');
    expect(await patch(second.url, location, chunks[1], 65536)).toEqual({ status: 202, range: '0-131071' });
    expect(statSync(join(data, 'uploads', id)).size).toBe(131072);
    expect(await patch(second.url, location, chunks[2], 131072)).toMatchObject({ status: 202 });
    expect(await put(second.url, location, sha256(blob))).toBe(201);
    expect((await pull(second.url, 'acme/app', sha256(blob))).equals(blob)).toBe(true);
  });
});

describe('a chunked upload to regmeta serve on SQLite, the server killed mid-PATCH', () => {
  it("takes the resumed PATCH on the restarted server at once: the dead process's claim is not waited out", async () => {
    const data = dataDir();
    const blob = randomBytes(4 << 20);
    const first = await start(data);
    const { id, location } = await post(first.url, 'acme/app');
    // A PATCH body that stops half way and never ends: the server holds the session's claim while it waits.
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent < blob.length / 2) {
          controller.enqueue(blob.subarray(sent, sent + 65536));
          sent += 65536;
        } else await new Promise(() => {});
      },
    });
    const init = { method: 'PATCH', body, duplex: 'half', headers: { 'Content-Type': 'application/octet-stream' } };
    const stalled = fetch(`${first.url}${location}`, init as RequestInit).then((res) => res.status, (error: Error) => error);
    // Killed once its bytes reach the session's file: the claim is taken before the first byte is written.
    for (let waited = 0; (statSync(join(data, 'uploads', id), { throwIfNoEntry: false })?.size ?? 0) === 0 && waited < 30_000; waited += 10) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    first.child.kill('SIGKILL');
    expect(await stalled).toBeInstanceOf(Error);
    await first.stop();

    const second = await start(data);
    const status = await fetch(`${second.url}${location}`);
    expect(status.status).toBe(204);
    const started = Date.now();
    expect(await patch(second.url, location, blob, 0)).toMatchObject({ status: 202 });
    const waited = (Date.now() - started) / 1000;
    // The lease is a minute long; the claim's process is gone.
    expect(waited).toBeLessThan(15);
    expect(await put(second.url, location, sha256(blob))).toBe(201);
    expect((await pull(second.url, 'acme/app', sha256(blob))).equals(blob)).toBe(true);
    console.info(`the PATCH resumed after the server's death waited ${waited.toFixed(1)} s for the claim`);
  }, 120_000);
});

describe('a chunked upload to replicas on one PostgreSQL database and one blob directory', () => {
  let pg: PostgresServer;
  beforeAll(async () => {
    pg = await startPostgres();
  });
  afterAll(async () => {
    await Promise.all(served.splice(0).map((s) => s.stop()));
    await pg?.stop();
  });

  async function replicas(n: number): Promise<{ url: string; data: string; started: Served[] }> {
    const url = await pg.createDatabase();
    const data = dataDir();
    const started: Served[] = [];
    for (let i = 0; i < n; i++) started.push(await start(data, ['--database', url]));
    return { url, data, started };
  }

  it('completes with its POST, PATCHes and PUT spread over the replicas, one started mid-upload, and pulls byte-identical from each', async () => {
    const { url, data, started } = await replicas(2);
    const [a, b] = started;
    const blob = randomBytes(5 * 40_000);
    const { location } = await post(a.url, 'spread/app');
    expect((await patch(b.url, location, blob.subarray(0, 40_000), 0)).status).toBe(202);
    expect((await patch(a.url, location, blob.subarray(40_000, 80_000), 40_000)).status).toBe(202);
    // A replica that starts now must leave the upload in flight alone.
    const c = await start(data, ['--database', url]);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect((await patch(c.url, location, blob.subarray(80_000, 120_000), 80_000)).status).toBe(202);
    expect((await patch(b.url, location, blob.subarray(120_000, 160_000), 120_000)).status).toBe(202);
    // A chunk that does not continue the upload, sent to a replica that has
    // not seen it: 416 with the committed Range.
    expect(await patch(a.url, location, blob.subarray(0, 10), 0)).toEqual({ status: 416, range: '0-159999' });
    expect((await patch(c.url, location, blob.subarray(160_000), 160_000)).status).toBe(202);
    expect(await put(a.url, location, sha256(blob))).toBe(201);
    for (const replica of [a, b, c]) expect((await pull(replica.url, 'spread/app', sha256(blob))).equals(blob)).toBe(true);
  });

  it('never interleaves the bytes of two PATCHes on one session sent to two replicas at once', async () => {
    const { data, started } = await replicas(2);
    const [a, b] = started;
    const { id, location } = await post(a.url, 'race/app');
    const one = Buffer.alloc(300_000, 'a');
    const two = Buffer.alloc(300_000, 'b');
    const statuses = await Promise.all([slowPatch(a.url, location, one, 20, 600), slowPatch(b.url, location, two, 20, 600)]);
    expect(statuses).toEqual([202, 202]);
    const bytes = readFileSync(join(data, 'uploads', id));
    const whole = [Buffer.concat([one, two]), Buffer.concat([two, one])].find((order) => order.equals(bytes));
    expect(whole).toBeDefined();
    expect(await put(b.url, location, sha256(whole!))).toBe(201);
    expect((await pull(a.url, 'race/app', sha256(whole!))).equals(whole!)).toBe(true);
  });
});
