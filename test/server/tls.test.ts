// HTTPS: the registry with a certificate of a CA the test makes, verified by
// node's client and by curl; the certificate replaced while a connection
// stays open; the connection cap on TLS connections.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { connect as connectTcp, type Socket } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setRegistryCertificate, startRegistry, type StartedRegistry } from 'regmeta/server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeCa, makeServerCert, type ServerCert, type TestCa } from './certs.js';

const work = mkdtempSync(path.join(tmpdir(), 'regmeta-tls-'));
let ca: TestCa;
let first: ServerCert;
let second: ServerCert;
let r: StartedRegistry | undefined;

beforeAll(() => {
  ca = makeCa(work);
  first = makeServerCert(ca, 'first');
  second = makeServerCert(ca, 'second');
});
/** Every socket a test opened: destroyed after it, pass or fail, so that the server can close. */
const opened: Socket[] = [];
afterEach(async () => {
  for (const socket of opened.splice(0)) socket.destroy();
  await r?.close();
  r = undefined;
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function start(options: { maxConnectionsPerAddress?: number; headersTimeout?: number } = {}): Promise<StartedRegistry> {
  const dataDir = mkdtempSync(path.join(work, 'data-'));
  return startRegistry({ dataDir, port: 0, tls: { cert: first.cert, key: first.key }, log: () => {}, ...options });
}

/** GET `path` over `agent`, verifying the server against the test CA; the status and the certificate seen. */
function get(url: string, agent: Agent | false): Promise<{ status: number; fingerprint: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v2/`, { ca: ca.ca, agent }, (res) => {
      const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, fingerprint, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function curl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['--silent', '--show-error', ...args], { timeout: 30_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe('the registry over HTTPS', () => {
  it('serves /v2/ to a client that verifies the certificate against the CA, and says https in its url', async () => {
    r = await start();
    expect(r.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const answer = await get(r.url, false);
    expect(answer.status).toBe(200);
    expect(answer.fingerprint).toBe(first.fingerprint);
  });

  it('is verified by curl against the CA, by IP address and by name, and refused by curl without it', async () => {
    r = await start();
    const port = new URL(r.url).port;
    const byIp = await curl('--cacert', ca.caFile, '-o', '/dev/null', '-w', '%{http_code}', `${r.url}/v2/`);
    expect(byIp).toMatchObject({ code: 0, stdout: '200' });
    const byName = await curl('--cacert', ca.caFile, '-o', '/dev/null', '-w', '%{http_code}', `https://localhost:${port}/v2/`);
    expect(byName).toMatchObject({ code: 0, stdout: '200' });
    // curl's exit 60: the peer's certificate could not be verified.
    expect((await curl('-o', '/dev/null', `${r.url}/v2/`)).code).toBe(60);
  });

  it('answers plain HTTP on its port with 400 and a line that says it speaks HTTPS, then closes', async () => {
    r = await start();
    const plain = r.url.replace('https:', 'http:');
    const res = await fetch(`${plain}/v2/`);
    expect(res.status).toBe(400);
    expect(res.headers.get('connection')).toBe('close');
    expect(await res.text()).toMatch(/this port speaks HTTPS/);
    // curl, as a user would try it, shows the hint too.
    const answer = await curl('-i', `${plain}/v2/`);
    expect(answer.stdout).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer.stdout).toContain('https://');
    // HTTPS on the same port still works.
    expect((await get(r.url, false)).status).toBe(200);
  });

  it('takes a new certificate for new connections while an open keep-alive connection keeps working', async () => {
    r = await start();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect(await get(r.url, agent)).toMatchObject({ status: 200, fingerprint: first.fingerprint });
      setRegistryCertificate(r.server, { cert: second.cert, key: second.key });
      // The agent's connection is the old one, still alive, with the old certificate.
      expect(await get(r.url, agent)).toMatchObject({ status: 200, fingerprint: first.fingerprint });
      expect(await get(r.url, false)).toMatchObject({ status: 200, fingerprint: second.fingerprint });
    } finally {
      agent.destroy();
    }
  });

  it('refuses a certificate with the wrong key, and keeps serving the one it had', async () => {
    r = await start();
    expect(() => setRegistryCertificate(r!.server, { cert: second.cert, key: first.key })).toThrow();
    expect(() => setRegistryCertificate(r!.server, { cert: 'not a certificate', key: first.key })).toThrow();
    expect(await get(r.url, false)).toMatchObject({ status: 200, fingerprint: first.fingerprint });
  });

  it('refuses to start with a certificate and a key that do not belong together', async () => {
    const dataDir = mkdtempSync(path.join(work, 'data-'));
    await expect(startRegistry({ dataDir, port: 0, tls: { cert: first.cert, key: second.key } })).rejects.toThrow();
  });

  it('closes TCP connections past the per-address cap before any handshake', async () => {
    // A handshake deadline longer than the test: the connections held must stay.
    r = await start({ maxConnectionsPerAddress: 4, headersTimeout: 60_000 });
    const port = Number(new URL(r.url).port);
    let closed = 0;
    const sockets = await Promise.all(Array.from({ length: 40 }, () => tcpOpen(port, () => closed++)));
    await until(() => closed >= 36, 10_000);
    expect(await connectionsOf(r)).toBe(4);
    expect(closed).toBe(36);
    for (const socket of sockets) socket.destroy();
    // A TLS client once the others are gone is served.
    await until(async () => (await connectionsOf(r!)) === 0, 5000);
    expect(await get(r.url, false)).toMatchObject({ status: 200 });
  });

  it('cuts connections that never start their handshake within headersTimeout', async () => {
    r = await start({ headersTimeout: 500 });
    const port = Number(new URL(r.url).port);
    let closed = 0;
    const started = Date.now();
    await Promise.all(Array.from({ length: 20 }, () => tcpOpen(port, () => closed++)));
    await until(() => closed === 20, 10_000);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('refuses a client\'s TLS 1.2 renegotiation', async () => {
    r = await start();
    const port = Number(new URL(r.url).port);
    const socket = await new Promise<TLSSocket>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, ca: ca.ca, maxVersion: 'TLSv1.2' }, () => resolve(s));
      opened.push(s);
      s.once('error', reject);
    });
    socket.on('error', () => {});
    // What the server says before it closes must be read for the close to be seen.
    socket.resume();
    const outcome = await new Promise<string>((resolve) => {
      socket.once('close', () => resolve('closed'));
      const asked = socket.renegotiate({ rejectUnauthorized: false }, (error) => resolve(error ? 'refused' : 'renegotiated'));
      if (!asked) resolve('refused');
    });
    expect(outcome).not.toBe('renegotiated');
  });
});

/** A plain TCP connection to `port` that sends nothing; `onClose` is called when it closes. */
function tcpOpen(port: number, onClose: () => void): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp(port, '127.0.0.1', () => resolve(socket));
    opened.push(socket);
    socket.once('error', reject);
    socket.once('close', onClose);
    socket.on('error', () => {});
  });
}

function connectionsOf(registry: StartedRegistry): Promise<number> {
  return new Promise((resolve, reject) => registry.server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
}

/** Resolves once `condition` holds, checked every 20 ms; rejects after `within` ms. */
async function until(condition: () => boolean | Promise<boolean>, within: number): Promise<void> {
  const deadline = Date.now() + within;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not within ${within} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
