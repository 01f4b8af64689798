// The bounds on what clients may hold: connections per address and in all,
// upload sessions per address, how long a connection may take to send a
// request head, sit silent while the server waits on it, or drip a body.
// Each is driven through real sockets.

import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { errorCode, pushBlob, startRegistry, type TestRegistry } from './helpers.js';

let r: TestRegistry | undefined;
/** Every socket a test opened: destroyed after it, pass or fail, so that the server can close. */
const opened: Socket[] = [];
afterEach(async () => {
  for (const socket of opened.splice(0)) socket.destroy();
  await r?.close();
  r = undefined;
});

function portOf(registry: TestRegistry): number {
  return Number(new URL(registry.url).port);
}

/** Opens a socket (from `localAddress`, default 127.0.0.1) and resolves once it is connected. */
function open(registry: TestRegistry, localAddress = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port: portOf(registry), host: '127.0.0.1', localAddress }, () => resolve(socket));
    opened.push(socket);
    socket.on('error', reject);
  });
}

/** Opens `count` connections that send nothing; resolves with how many of them the server has closed so far. */
async function openIdle(registry: TestRegistry, count: number): Promise<() => number> {
  let closed = 0;
  for (let i = 0; i < count; i++) {
    const socket = await open(registry);
    socket.on('error', () => {});
    socket.once('close', () => closed++);
    // A refused connection's 429 is read, so that its close is seen.
    socket.resume();
  }
  return () => closed;
}

function connectionsOf(registry: TestRegistry): Promise<number> {
  return new Promise((resolve, reject) => registry.server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
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
    // What the server says before it closes must be read for the close to be seen.
    socket.resume();
  });
}

/** Resolves once `condition` holds, checked every 20 ms; rejects after `within` ms. */
async function until(condition: () => boolean | Promise<boolean>, within: number): Promise<void> {
  const deadline = Date.now() + within;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not within ${within} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
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

  it('cuts a blob download the client stopped reading once its writes made no progress for the idle timeout, not twice that', async () => {
    // More than loopback's socket buffers hold, so that the server must wait on the reader.
    const blob = Buffer.alloc(48 * 1024 * 1024, 7);
    const idleTimeout = 4000;
    r = await startRegistry({ idleTimeout });
    const digest = await pushBlob(r.url, 'idle/pull', blob);
    const socket = await open(r);
    socket.write(`GET /v2/idle/pull/blobs/${digest} HTTP/1.1\r\nHost: x\r\n\r\n`);
    socket.pause();
    // A paused client does not notice the close; the server's log does (499: the answer never completed).
    const cut = () => r!.logs.find((entry) => entry.method === 'GET' && entry.status === 499);
    await until(() => cut() !== undefined, 4 * idleTimeout);
    // The socket buffers fill within milliseconds; the rest of the wait is the timeout's.
    expect(cut()!.ms).toBeLessThan(1.5 * idleTimeout);
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

describe('the request head and body deadlines', () => {
  it('cuts a connection that sends no complete request head within headersTimeout', async () => {
    r = await startRegistry({ headersTimeout: 500 });
    const silent = await open(r);
    const partial = await open(r);
    partial.write('GET /v2/ HTTP/1.1\r\nHo');
    const [a, b] = await Promise.all([closedWithin(silent, 10_000), closedWithin(partial, 10_000)]);
    expect(a).toBeLessThan(10_000);
    expect(b).toBeLessThan(10_000);
    // A request that is on time is answered.
    expect((await fetch(`${r.url}/v2/`)).status).toBe(200);
  });

  it('cuts a request body that drips slower than minBodyRate once the grace is over, and the session keeps its last good size', async () => {
    r = await startRegistry({ minBodyRate: 500, bodyRateGrace: 1000 });
    const post = await fetch(`${r.url}/v2/drip/app/blobs/uploads/`, { method: 'POST' });
    const location = post.headers.get('location')!;
    const socket = await open(r);
    socket.write(`PATCH ${location} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n`);
    // A byte every 100 ms: never silent long enough for the idle timeout.
    const drip = setInterval(() => socket.writable && socket.write('x'), 100);
    try {
      expect(await closedWithin(socket, 10_000)).toBeLessThan(10_000);
    } finally {
      clearInterval(drip);
    }
    const status = await fetch(`${r.url}${location}`);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-0');
    // A body at a decent rate goes through.
    expect((await fetch(`${r.url}${location}`, { method: 'PATCH', body: 'y'.repeat(100_000), headers: { 'Content-Type': 'application/octet-stream' } })).status).toBe(202);
  });
});

describe('per-address caps', () => {
  it('closes a connection past the cap as it is accepted: one address holds at most the cap, another is still served', async () => {
    // A head deadline longer than the test: the connections held must stay.
    r = await startRegistry({ maxConnectionsPerAddress: 8, headersTimeout: 60_000 });
    const closed = await openIdle(r, 200);
    await until(() => closed() >= 192, 10_000);
    expect(await connectionsOf(r)).toBe(8);
    expect(closed()).toBe(192);
    // Another address has a cap of its own.
    const other = await open(r, '127.0.0.2');
    expect(await exchange(other, 'GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 /);
  });

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
    // The server counts the close asynchronously.
    await until(async () => (await connectionsOf(r!)) === 2, 2000);
    const next = await open(r);
    expect(await exchange(next, 'GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('holds at most maxConnections in all, closing the rest as they are accepted', async () => {
    r = await startRegistry({ maxConnections: 5, maxConnectionsPerAddress: 0, headersTimeout: 60_000 });
    const closed = await openIdle(r, 50);
    await until(() => closed() >= 45, 10_000);
    expect(await connectionsOf(r)).toBe(5);
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
