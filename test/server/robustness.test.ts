// What a registry on a developer's machine must shrug off: TLS on the plain
// port, garbage on the wire, clients that hang up, oversized bodies, and
// concurrent pushes and deletes of the same names.

import { request } from 'node:http';
import { connect as netConnect } from 'node:net';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, imageManifest, pushBlob, pushImage, putManifest, sha256, startRegistry, type TestRegistry } from './helpers.js';

let r: TestRegistry;
let port: number;
beforeAll(async () => {
  r = await startRegistry({ maxBlobSize: 64 * 1024 });
  port = Number(new URL(r.url).port);
});
afterAll(async () => {
  await r.close();
});

/** Sends raw bytes and collects whatever comes back until the server closes. */
function raw(bytes: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (chunk) => (text += chunk.toString('latin1')));
    socket.on('end', () => resolve(text));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
    socket.write(bytes);
  });
}

describe('client errors on one socket', () => {
  it('survives a TLS ClientHello on the plain port (skopeo --tls-verify=false tries TLS first)', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'localhost' });
      socket.on('secureConnect', () => resolve('connected'));
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
      socket.on('close', () => resolve('closed'));
    });
    expect(outcome).not.toBe('connected');
    const res = await fetch(`${r.url}/v2/`);
    expect(res.status).toBe(200);
  });

  it('answers a malformed request line with 400 and closes only that socket', async () => {
    const answer = await raw('\x16\x03\x01 garbage that is not HTTP\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    const answer2 = await raw('GET /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n');
    expect(answer2).toMatch(/^HTTP\/1\.1 400 /);
    expect((await fetch(`${r.url}/v2/`)).status).toBe(200);
  });

  it('keeps an upload at its last good size when the client hangs up mid-chunk', async () => {
    const post = await fetch(`${r.url}/v2/hangup/blobs/uploads/`, { method: 'POST' });
    const location = post.headers.get('location')!;
    await fetch(`${r.url}${location}`, { method: 'PATCH', body: Buffer.alloc(10, 1) });
    await new Promise<void>((resolve) => {
      const req = request({ host: '127.0.0.1', port, method: 'PATCH', path: location, headers: { 'Content-Length': 1000 } });
      req.on('error', () => resolve());
      req.write(Buffer.alloc(500, 2), () => setTimeout(() => {
        req.destroy();
        resolve();
      }, 50));
    });
    // Wait until the server has seen the hang-up (it logs the PATCH as 499);
    // the PUT then waits for the cut-back of the half chunk.
    while (!r.logs.some((entry) => entry.method === 'PATCH' && entry.path === location && entry.status === 499)) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const whole = Buffer.concat([Buffer.alloc(10, 1), Buffer.alloc(5, 3)]);
    const put = await fetch(`${r.url}${location}?digest=${sha256(whole)}`, { method: 'PUT', body: Buffer.alloc(5, 3) });
    expect(put.status).toBe(201);
    expect((await fetch(`${r.url}/v2/hangup/blobs/${sha256(whole)}`)).status).toBe(200);
  });
});

describe('clients that go away', () => {
  /** Sends a request head and a part of its body, then closes the socket at once. */
  function abandon(head: string): Promise<void> {
    return new Promise((resolve) => {
      const socket = netConnect(port, '127.0.0.1', () => socket.end(head, () => socket.destroy()));
      socket.on('error', () => {});
      socket.on('close', () => resolve());
    });
  }
  const openDescriptors = () => readdirSync('/proc/self/fd').length;
  const uploads = () => readdirSync(path.join(r.dataDir, 'uploads'));

  async function settled(check: () => boolean): Promise<boolean> {
    for (let waited = 0; waited < 3000 && !check(); waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    return check();
  }

  it('frees the session, its file and its descriptor when a monolithic upload is abandoned before its body is read', async () => {
    const before = openDescriptors();
    const tries = 60;
    for (let i = 0; i < tries; i++) {
      // The server opens the session (an await) before it reads the body;
      // by then this client has closed the request.
      await abandon(
        `POST /v2/abandon/monolithic/blobs/uploads/?digest=sha256:${'0'.repeat(64)} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nxx`,
      );
    }
    expect(await settled(() => uploads().length === 0)).toBe(true);
    // Other parts of the test process open and close descriptors too: allow some slack, not one per try.
    expect(await settled(() => openDescriptors() - before < tries / 4)).toBe(true);
  });

  it('frees a session whose chunk was abandoned, so the next PATCH on it goes through', async () => {
    const post = await fetch(`${r.url}/v2/abandon/chunked/blobs/uploads/`, { method: 'POST' });
    const location = post.headers.get('location')!;
    for (let i = 0; i < 10; i++) {
      await abandon(`PATCH ${location} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nxx`);
    }
    const chunk = Buffer.alloc(10, 4);
    const patch = await fetch(`${r.url}${location}`, { method: 'PATCH', body: chunk, signal: AbortSignal.timeout(5000) });
    expect(patch.status).toBe(202);
    expect(patch.headers.get('range')).toBe('0-9');
  });

  it('answers a request and then closes when garbage follows it on the same connection', async () => {
    const config = 'pipelined config';
    await pushBlob(r.url, 'pipelined/app', config);
    const manifest = imageManifest(config, []);
    const answer = await raw(
      Buffer.concat([
        Buffer.from(
          `PUT /v2/pipelined/app/manifests/v1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: ${Buffer.byteLength(manifest)}\r\n\r\n`,
        ),
        Buffer.from(manifest),
        Buffer.from('\x16\x03\x01 garbage that is not HTTP\r\n\r\n'),
      ]),
    );
    expect(answer).toMatch(/^HTTP\/1\.1 201 /);
    expect(answer).not.toContain('400 Bad Request');
    expect(r.store.getTag('pipelined/app', 'v1').digest).toBe(sha256(manifest));
  });
});

describe('bounded bodies', () => {
  it('refuses a declared manifest length far above 4 MiB without reading it, and closes', async () => {
    const answer = await raw(
      `PUT /v2/big/manifests/v1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: ${100 * 1024 * 1024}\r\n\r\n{`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).toContain('"SIZE_INVALID"');
    expect(answer.toLowerCase()).toContain('connection: close');
  });

  it('refuses a chunked manifest body once it passes 4 MiB', async () => {
    // Raw, since the server answers and closes while the client still sends:
    // the answer is what matters, not the client's failed writes after it.
    const chunk = Buffer.alloc(65536, 0x20);
    const answer = await new Promise<string>((resolve) => {
      const socket = netConnect(port, '127.0.0.1');
      let text = '';
      socket.on('data', (data) => (text += data.toString('latin1')));
      socket.on('error', () => {});
      socket.on('close', () => resolve(text));
      socket.write('PUT /v2/big/manifests/v1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nTransfer-Encoding: chunked\r\n\r\n');
      for (let i = 0; i < 65; i++) socket.write(`${chunk.length.toString(16)}\r\n${chunk.toString('latin1')}\r\n`);
      socket.end('0\r\n\r\n');
    });
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
  });

  it('refuses a blob above the size limit with 413 and keeps no part of it', async () => {
    const bytes = Buffer.alloc(64 * 1024 + 1, 7);
    const before = readdirSync(path.join(r.dataDir, 'uploads'));
    const res = await fetch(`${r.url}/v2/big/blobs/uploads/?digest=${sha256(bytes)}`, { method: 'POST', body: bytes });
    expect(res.status).toBe(413);
    expect(await errorCode(res)).toBe('SIZE_INVALID');
    expect(readdirSync(path.join(r.dataDir, 'uploads'))).toEqual(before);
  });

  it('answers bad Content-Length and Content-Range values with 4xx, not 500', async () => {
    const post = await fetch(`${r.url}/v2/bad/blobs/uploads/`, { method: 'POST' });
    const location = post.headers.get('location')!;
    for (const range of ['bytes', '5-1', '-1-3', 'a-b']) {
      const res = await fetch(`${r.url}${location}`, { method: 'PATCH', headers: { 'Content-Range': range }, body: 'x' });
      expect(res.status, range).toBe(416);
    }
    expect((await fetch(`${r.url}/v2/bad/tags/list?n=1e3`)).status).toBe(400);
    expect((await fetch(`${r.url}/v2/bad/blobs/uploads/?digest=sha256:nothex`, { method: 'POST' })).status).toBe(400);
    expect((await fetch(`${r.url}/v2/bad/blobs/uploads/?mount=nope&from=x`, { method: 'POST' })).status).toBe(400);
  });
});

describe('concurrency', () => {
  it('takes concurrent pushes of one tag without a 500 or a lost write: every move is in the event log', async () => {
    const repo = 'race/tag';
    const config = 'race config';
    await pushBlob(r.url, repo, config);
    const manifests = Array.from({ length: 16 }, (_, i) => imageManifest(config, [], { annotations: { i: String(i) } }));
    const responses = await Promise.all(manifests.map((m) => putManifest(r.url, repo, 'latest', m)));
    expect(responses.map((res) => res.status)).toEqual(manifests.map(() => 201));
    const final = r.store.getTag(repo, 'latest').digest;
    expect(manifests.map((m) => sha256(m))).toContain(final);
    const { events } = r.store.getEvents({ repository: repo, objectType: 'TAG', perPage: 1000 });
    // Replaying the tag events gives the final tag, and every push either created or moved it.
    expect(events[0].digest).toBe(final);
    expect(events.filter((e) => e.type === 'CREATE')).toHaveLength(1);
    expect(events.length).toBe(new Set(events.map((e) => e.digest)).size);
  });

  it('answers concurrent deletes of one manifest with one 202 and 404s', async () => {
    const { digest } = await pushImage(r.url, 'race/delete', 'v1', 'delete race');
    const statuses = await Promise.all(
      Array.from({ length: 10 }, () => fetch(`${r.url}/v2/race/delete/manifests/${digest}`, { method: 'DELETE' }).then((res) => res.status)),
    );
    expect(statuses.filter((s) => s === 202)).toHaveLength(1);
    expect(statuses.filter((s) => s === 404)).toHaveLength(9);
  });

  it('interleaves pushes and deletes of the same tag without a 500', async () => {
    const repo = 'race/mixed';
    const config = 'mixed config';
    await pushBlob(r.url, repo, config);
    const manifest = imageManifest(config, []);
    const work: Promise<number>[] = [];
    for (let i = 0; i < 12; i++) {
      work.push(putManifest(r.url, repo, 'latest', manifest).then((res) => res.status));
      work.push(fetch(`${r.url}/v2/${repo}/manifests/${sha256(manifest)}`, { method: 'DELETE' }).then((res) => res.status));
      work.push(fetch(`${r.url}/v2/${repo}/manifests/latest`).then((res) => res.status));
    }
    const statuses = await Promise.all(work);
    expect(statuses.every((s) => [200, 201, 202, 404].includes(s))).toBe(true);
  });

  it('never answered a 500 nor reported a server fault', () => {
    expect(r.errors).toEqual([]);
    expect(r.logs.filter((entry) => entry.status >= 500)).toEqual([]);
  });
});
