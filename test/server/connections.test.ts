// The bounds on what one client may hold: connections per address, upload
// sessions per address, and how long a connection may sit silent while the
// server waits on it. Each is driven through real sockets.

import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { closeRegistry } from 'regmeta/server';
import { errorCode, pushBlob, startRegistry, type TestRegistry } from './helpers.js';

let r: TestRegistry | undefined;
afterEach(async () => {
  await r?.close();
  r = undefined;
});

function portOf(registry: TestRegistry): number {
  return Number(new URL(registry.url).port);
}

/** Opens a socket and resolves once it is connected. */
function open(registry: TestRegistry): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(portOf(registry), '127.0.0.1', () => resolve(socket));
    socket.on('error', reject);
  });
}

/** Resolves with how long (ms) the server took to close `socket`, or Infinity if it did not within `within` ms. */
function closedWithin(socket: Socket, within: number): Promise<number> {
  const started = Date.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(Infinity), within);
    socket.on('error', () => {});
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
  });
}

/** Writes a request on `socket` and collects the answer until the server closes or `ms` pass. */
function exchange(socket: Socket, request: string, ms = 2000): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const timer = setTimeout(() => resolve(text), ms);
    socket.on('data', (chunk) => (text += chunk.toString('latin1')));
    socket.on('error', () => {});
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.write(request);
  });
}

describe('the idle timeout', () => {
  it('cuts a request body that stops arriving, and the session keeps its last good size', async () => {
    r = await startRegistry({ idleTimeout: 300 });
    const post = await fetch(`${r.url}/v2/idle/app/blobs/uploads/`, { method: 'POST' });
    const location = post.headers.get('location')!;
    const socket = await open(r);
    socket.write(`PATCH ${location} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n${'x'.repeat(10)}`);
    expect(await closedWithin(socket, 5000)).toBeLessThan(5000);
    const status = await fetch(`${r.url}${location}`);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-0');
  });

  it('cuts a blob download the client stopped reading', async () => {
    // The blob goes in through a registry without the short timeout: on a
    // loaded machine, this process (client and server both) can sit
    // descheduled for longer than 300 ms mid-push, and the push is not
    // what this test is about. The same store and files are then served
    // with the timeout.
    const setup = await startRegistry();
    // More than loopback's socket buffers hold, so that the server must wait on the reader.
    const blob = Buffer.alloc(48 * 1024 * 1024, 7);
    let digest: string;
    try {
      digest = await pushBlob(setup.url, 'idle/pull', blob);
    } finally {
      await closeRegistry(setup.server, 2000);
    }
    r = await startRegistry({ idleTimeout: 300 }, setup);
    r.close = async () => {
      await closeRegistry(r!.server, 2000);
      await setup.close();
    };
    const socket = await open(r);
    socket.write(`GET /v2/idle/pull/blobs/${digest} HTTP/1.1\r\nHost: x\r\n\r\n`);
    socket.pause();
    // A paused client does not notice the close; the server's log does (499: the answer never completed).
    const cut = () => r!.logs.some((entry) => entry.method === 'GET' && entry.status === 499);
    for (let waited = 0; waited < 10_000 && !cut(); waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(cut()).toBe(true);
    socket.destroy();
  });

  it('spares a quiet event stream: its heartbeat comes more often than the timeout', async () => {
    r = await startRegistry({ idleTimeout: 300 });
    const socket = await open(r);
    const answer = await exchange(socket, 'GET /api/v0/events/stream HTTP/1.1\r\nHost: x\r\n\r\n', 1200);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toContain(': keep-alive');
    expect(socket.destroyed).toBe(false);
    socket.destroy();
  });
});

describe('per-address caps', () => {
  it('answers 429 TOOMANYREQUESTS on a connection past the cap, and serves again once one closes', async () => {
    r = await startRegistry({ maxConnectionsPerAddress: 3 });
    const held = await Promise.all([open(r), open(r), open(r)]);
    const extra = await open(r);
    const answer = await exchange(extra, 'GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 429 /);
    expect(answer).toMatch(/retry-after: \d+/i);
    expect(answer).toContain('"TOOMANYREQUESTS"');
    expect(extra.destroyed || extra.readableEnded).toBe(true);
    // The held connections still work.
    expect(await exchange(held[0], 'GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n', 300)).toMatch(/^HTTP\/1\.1 200 /);
    const gone = closedWithin(held[1], 2000);
    held[1].destroy();
    await gone;
    // The server counts the close asynchronously; give it a moment.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const next = await open(r);
    expect(await exchange(next, 'GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 /);
    for (const socket of held) socket.destroy();
  });

  it('refuses an upload session past the per-address cap with 429, and opens one again once a session ends', async () => {
    r = await startRegistry({ maxUploadsPerAddress: 3 });
    const locations: string[] = [];
    for (let i = 0; i < 3; i++) {
      const post = await fetch(`${r.url}/v2/capped/app/blobs/uploads/`, { method: 'POST' });
      expect(post.status).toBe(202);
      locations.push(post.headers.get('location')!);
    }
    const refused = await fetch(`${r.url}/v2/capped/app/blobs/uploads/`, { method: 'POST' });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await errorCode(refused)).toBe('TOOMANYREQUESTS');
    // A monolithic push needs a session too.
    expect((await fetch(`${r.url}/v2/capped/app/blobs/uploads/?digest=sha256:${'0'.repeat(64)}`, { method: 'POST', body: 'x' })).status).toBe(429);
    expect((await fetch(`${r.url}${locations[0]}`, { method: 'DELETE' })).status).toBe(204);
    expect((await fetch(`${r.url}/v2/capped/app/blobs/uploads/`, { method: 'POST' })).status).toBe(202);
  });
});
