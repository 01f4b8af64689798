// A namespace's quota over real HTTP: an upload whose size is known
// (Content-Length, Content-Range) and would take the namespace over is
// refused with the spec's DENIED before its body is read (a body that
// never arrives is still answered), and nothing changes; one of unknown
// length is refused by the store at the link; a blob the namespace has (in
// any of its repositories) costs nothing.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBlob, sha256, startRegistry, type TestRegistry } from './helpers.js';

const QUOTA = 10_000;
let r: TestRegistry;
/** The blob team/web holds once the chunked upload is done. */
let webBlob: Buffer;
/** The first blob team/app holds. */
const appBlob = randomBytes(6000);
beforeAll(async () => {
  r = await startRegistry({}, undefined, { policy: { quotas: [{ namespace: 'team', maxSize: QUOTA }] } });
});
afterAll(async () => {
  await r.close();
});

/**
 * Sends a request's head only (its body never comes) on a raw connection,
 * and reads the answer: what a refusal before the body looks like.
 */
function headOnly(method: string, pathname: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(r.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let received = '';
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      const end = received.indexOf('\r\n\r\n');
      if (end === -1) return;
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(received.slice(0, end))?.[1] ?? 0);
      if (received.length < end + 4 + length) return;
      socket.destroy();
      resolve({ status: Number(received.split(' ')[1]), body: received.slice(end + 4, end + 4 + length) });
    });
    socket.on('error', reject);
    const lines = Object.entries({ Host: `${hostname}:${port}`, ...headers }).map(([k, v]) => `${k}: ${v}\r\n`);
    socket.write(`${method} ${pathname} HTTP/1.1\r\n${lines.join('')}\r\n`);
  });
}

const uploads = () => readdirSync(path.join(r.dataDir, 'uploads')).length;
const teamBytes = () => r.store.usage({ namespace: 'team' }).namespaces[0].bytes;

async function startSession(repo: string): Promise<string> {
  const res = await fetch(`${r.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  expect(res.status).toBe(202);
  return res.headers.get('location')!;
}

describe('a namespace over its quota', () => {
  it('takes what fits', async () => {
    await pushBlob(r.url, 'team/app', appBlob);
    expect(teamBytes()).toBe(6000);
  });

  it('refuses a monolithic POST whose Content-Length does not fit, before its body, opening no session', async () => {
    const before = uploads();
    const bytes = randomBytes(5000);
    const answer = await headOnly('POST', `/v2/team/app/blobs/uploads/?digest=${sha256(bytes)}`, { 'Content-Length': '5000' });
    expect(answer.status).toBe(403);
    const { errors } = JSON.parse(answer.body);
    expect(errors[0].code).toBe('DENIED');
    expect(errors[0].message).toBe('quota exceeded: namespace team uses 5.9 KiB of its 9.8 KiB quota, and 4.9 KiB more were asked');
    expect(errors[0].detail).toEqual({ namespace: 'team', usage: 6000, limit: QUOTA, size: 5000 });
    expect(uploads()).toBe(before);
    expect(teamBytes()).toBe(6000);
  });

  it('refuses a PATCH whose Content-Range goes past the room left, before its body, the session unchanged', async () => {
    const location = await startSession('team/web');
    const first = randomBytes(3000);
    const patched = await fetch(`${r.url}${location}`, { method: 'PATCH', body: first, headers: { 'Content-Range': '0-2999' } });
    expect(patched.status).toBe(202);
    const answer = await headOnly('PATCH', location, { 'Content-Range': '3000-4999', 'Content-Length': '2000' });
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.body).errors[0].detail).toEqual({ namespace: 'team', usage: 6000, limit: QUOTA, size: 5000 });
    const status = await fetch(`${r.url}${location}`);
    expect(status.headers.get('range')).toBe('0-2999');
    // What fits still does.
    const rest = randomBytes(1000);
    webBlob = Buffer.concat([first, rest]);
    const done = await fetch(`${r.url}${location}?digest=${sha256(webBlob)}`, { method: 'PUT', body: rest });
    expect(done.status).toBe(201);
    expect(teamBytes()).toBe(10_000);
  });

  it("refuses a PUT's last chunk by its Content-Length, before its body", async () => {
    const location = await startSession('team/web');
    const bytes = randomBytes(10);
    const answer = await headOnly('PUT', `${location}?digest=${sha256(bytes)}`, { 'Content-Length': '10' });
    expect(answer.status).toBe(403);
    expect(teamBytes()).toBe(10_000);
  });

  it('refuses a blob of unknown length (chunked) at its link, linking nothing', async () => {
    const bytes = randomBytes(100);
    const location = await startSession('team/web');
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(bytes);
        controller.close();
      },
    });
    const res = await fetch(`${r.url}${location}?digest=${sha256(bytes)}`, { method: 'PUT', body, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(403);
    expect(((await res.json()) as { errors: { code: string }[] }).errors[0].code).toBe('DENIED');
    expect((await fetch(`${r.url}/v2/team/web/blobs/${sha256(bytes)}`, { method: 'HEAD' })).status).toBe(404);
  });

  it('lets in, at the limit, a blob the repository has; another namespace is not bound; a mount is bound too', async () => {
    const again = await fetch(`${r.url}/v2/team/web/blobs/uploads/?digest=${sha256(webBlob)}`, { method: 'POST', body: webBlob });
    expect(again.status).toBe(201);
    const other = randomBytes(4000);
    await pushBlob(r.url, 'other/app', other);
    await pushBlob(r.url, 'other/app', randomBytes(20_000));
    const mount = await fetch(`${r.url}/v2/team/app/blobs/uploads/?mount=${sha256(other)}&from=other/app`, { method: 'POST' });
    expect(mount.status).toBe(403);
    expect(teamBytes()).toBe(QUOTA);
  });

  it('lets in, at the limit and before its body, a blob only another repository of the namespace has', async () => {
    expect(teamBytes()).toBe(QUOTA);
    const pushed = await fetch(`${r.url}/v2/team/b/blobs/uploads/?digest=${sha256(appBlob)}`, { method: 'POST', body: appBlob });
    expect(pushed.status).toBe(201);
    const location = await startSession('team/c');
    const put = await fetch(`${r.url}${location}?digest=${sha256(appBlob)}`, { method: 'PUT', body: appBlob });
    expect(put.status).toBe(201);
    expect(teamBytes()).toBe(QUOTA);
  });

  it('answers curl with the same DENIED', async () => {
    const file = path.join(r.dataDir, 'big');
    const bytes = randomBytes(4000);
    writeFileSync(file, bytes);
    const { stdout } = await promisify(execFile)('curl', [
      '-sS', '-X', 'POST', '-H', 'Content-Type: application/octet-stream', '-H', 'Expect: 100-continue',
      '--data-binary', `@${file}`, '-w', '\n%{http_code}', `${r.url}/v2/team/app/blobs/uploads/?digest=${sha256(bytes)}`,
    ]);
    const [body, status] = stdout.split('\n');
    expect(status).toBe('403');
    expect(JSON.parse(body).errors[0].code).toBe('DENIED');
  });
});
