// GET /healthz and GET /readyz: answered to anyone, before authentication and
// the access rules, with JSON; /readyz is 503, naming the failed check, when
// the database, the blob storage or the free disk would fail a push.

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { openStore } from 'regmeta';
import { closeRegistry, createRegistry } from 'regmeta/server';
import type { ReadinessReport } from '../../src/server/readiness.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type TestRegistry } from './helpers.js';

const dir = mkdtempSync(path.join(tmpdir(), 'regmeta-health-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function readyz(r: TestRegistry): Promise<{ status: number; report: ReadinessReport }> {
  const res = await fetch(`${r.url}/readyz`);
  return { status: res.status, report: (await res.json()) as ReadinessReport };
}

describe('the probes on a registry with logins and access rules', () => {
  let r: TestRegistry;
  beforeAll(async () => {
    const htpasswd = path.join(dir, 'htpasswd');
    writeFileSync(htpasswd, `alice:${bcrypt.hashSync('pw', 4)}\n`);
    // Rules that grant nothing to anonymous clients, and nothing at all to alice: default deny.
    r = await startRegistry({ htpasswd, access: { rules: [{ repositories: ['team/**'], users: ['bob'], actions: ['pull'] }] }, minFreeDisk: 0 });
  });
  afterAll(() => r.close());

  it('answers /healthz 200 {"status":"ok"} without credentials, while /v2/ asks for them', async () => {
    expect((await fetch(`${r.url}/v2/`)).status).toBe(401);
    const res = await fetch(`${r.url}/healthz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual({ status: 'ok' });
    expect((await fetch(`${r.url}/healthz`, { method: 'HEAD' })).status).toBe(200);
  });

  it('answers /readyz 200 with each check, without credentials and with credentials the rules deny everything', async () => {
    const { status, report } = await readyz(r);
    expect(status).toBe(200);
    expect(report).toEqual({
      status: 'ok',
      checks: {
        database: { status: 'ok' },
        blobs: { status: 'ok' },
        disk: { status: 'ok', freeBytes: expect.any(Number), minFreeBytes: 0 },
      },
    });
    const denied = await fetch(`${r.url}/readyz`, { headers: { Authorization: `Basic ${Buffer.from('alice:pw').toString('base64')}` } });
    expect(denied.status).toBe(200);
    // A wrong password is not even looked at.
    expect((await fetch(`${r.url}/readyz`, { headers: { Authorization: `Basic ${Buffer.from('alice:wrong').toString('base64')}` } })).status).toBe(200);
  });

  it('refuses other methods with 405, and logs probes under their own route kinds', async () => {
    const post = await fetch(`${r.url}/healthz`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect(r.logs.filter((e) => e.path === '/healthz' && e.method === 'GET').map((e) => e.route)).toEqual(['healthz']);
    expect(r.logs.some((e) => e.route === 'readyz' && e.status === 200)).toBe(true);
    expect(r.errors).toEqual([]);
  });
});

describe('/readyz when the registry could not take a push', () => {
  it('is 503 naming the blob check when the blob directory cannot take a file, and 200 again once it can', async () => {
    const r = await startRegistry({ minFreeDisk: 0 });
    try {
      const blobs = path.join(r.dataDir, 'blobs');
      rmSync(blobs, { recursive: true });
      writeFileSync(blobs, 'not a directory');
      const { status, report } = await readyz(r);
      expect(status).toBe(503);
      expect(report.status).toBe('unavailable');
      expect(report.checks.database).toEqual({ status: 'ok' });
      expect(report.checks.blobs).toEqual({ status: 'failed', error: 'ENOTDIR' });
      // The answer goes to anyone: no path in it.
      expect(JSON.stringify(report)).not.toContain(r.dataDir);
      rmSync(blobs);
      mkdirSync(blobs);
      const again = await readyz(r);
      expect(again.status).toBe(200);
    } finally {
      await r.close();
    }
  });

  it('is 503 naming the disk check when free disk is below --min-free-disk', async () => {
    const r = await startRegistry({ minFreeDisk: Number.MAX_SAFE_INTEGER });
    try {
      const { status, report } = await readyz(r);
      expect(status).toBe(503);
      expect(report.checks.disk).toEqual({ status: 'failed', error: 'LOW_DISK', freeBytes: expect.any(Number), minFreeBytes: Number.MAX_SAFE_INTEGER });
      expect(report.checks.blobs).toEqual({ status: 'ok' });
    } finally {
      await r.close();
    }
  });

  it('is 503 naming the database check when the store is closed, while /healthz stays 200', async () => {
    const r = await startRegistry({ minFreeDisk: 0 });
    try {
      expect((await readyz(r)).status).toBe(200);
      r.store.close();
      const { status, report } = await readyz(r);
      expect(status).toBe(503);
      expect(report.checks.database).toEqual({ status: 'failed', error: 'STORE_CLOSED' });
      expect((await fetch(`${r.url}/healthz`)).status).toBe(200);
      // Not a fault of a request: nothing for the error log, probe after probe.
      expect(r.errors).toEqual([]);
    } finally {
      await r.close();
    }
  });
});

// A read-only mount needs root, as in disk-full.test.ts. The database is
// opened through the writable path, the blobs through the read-only one.
describe.runIf(process.getuid?.() === 0)('/readyz on a read-only blob directory', () => {
  it('is 503 naming the blob check with EROFS, the database check passing', async () => {
    const source = mkdtempSync(path.join(tmpdir(), 'regmeta-ro-src-'));
    const mountPoint = mkdtempSync(path.join(tmpdir(), 'regmeta-ro-'));
    mkdirSync(path.join(source, 'blobs'));
    mkdirSync(path.join(source, 'uploads'));
    execFileSync('mount', ['--bind', '-o', 'ro', source, mountPoint]);
    const store = openStore(path.join(source, 'metadata.db'));
    const server = createRegistry({ store, dataDir: mountPoint, minFreeDisk: 0 });
    try {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/readyz`);
      expect(res.status).toBe(503);
      const report = (await res.json()) as ReadinessReport;
      expect(report.checks).toMatchObject({ database: { status: 'ok' }, blobs: { status: 'failed', error: 'EROFS' } });
    } finally {
      await closeRegistry(server, 2000);
      store.close();
      execFileSync('umount', [mountPoint]);
      rmSync(mountPoint, { recursive: true, force: true });
      rmSync(source, { recursive: true, force: true });
    }
  });
});
