// The storage in use over HTTP and in the metrics: GET /api/v0/usage (an
// admin sees everything, a user the namespaces they may pull from, no
// total) and regmeta_storage_bytes / _quota_bytes / _registry_bytes, all
// read from the sizes the store keeps.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobDesc } from '../store/fixtures.js';
import { errorCode, startRegistry, type TestRegistry } from './helpers.js';

const dir = mkdtempSync(path.join(tmpdir(), 'regmeta-usage-'));
const htpasswd = path.join(dir, 'htpasswd');
writeFileSync(htpasswd, `alice:${bcrypt.hashSync('alice-pw', 4)}\nroot:${bcrypt.hashSync('root-pw', 4)}\n`);
const basic = (user: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${user}-pw`).toString('base64')}` });

const [a, b, c] = [blobDesc('a', undefined, 100), blobDesc('b', undefined, 2000), blobDesc('c', undefined, 30_000)];
const QUOTAS = { quotas: [{ namespace: 'acme', maxSize: 1_000_000 }] };

/** Links the same blobs into a fresh registry: acme/app and acme/web share one, beta has its own. */
function seed(r: TestRegistry): void {
  r.store.linkBlob('acme/app', a);
  r.store.linkBlob('acme/app', b);
  r.store.linkBlob('acme/web', a);
  r.store.linkBlob('beta/x', c);
}

describe('GET /api/v0/usage', () => {
  let r: TestRegistry;
  beforeAll(async () => {
    r = await startRegistry(
      { htpasswd, admins: ['root'], access: { rules: [{ repositories: ['acme/app'], users: ['alice'], actions: ['pull'] }] } },
      undefined,
      { policy: QUOTAS },
    );
    seed(r);
  });
  afterAll(async () => {
    await r.close();
  });

  it('gives an admin the total and every namespace with its quota, and a namespace with its repositories', async () => {
    const all = await fetch(`${r.url}/api/v0/usage`, { headers: basic('root') });
    expect(all.status).toBe(200);
    expect(await all.json()).toEqual({
      total: { blobs: 3, bytes: 32_100 },
      namespaces: [
        { namespace: 'acme', bytes: 2100, repositories: 2, quota: 1_000_000 },
        { namespace: 'beta', bytes: 30_000, repositories: 1 },
      ],
    });
    const acme = await fetch(`${r.url}/api/v0/usage?namespace=acme`, { headers: basic('root') });
    expect(await acme.json()).toEqual({
      total: { blobs: 3, bytes: 32_100 },
      namespaces: [{ namespace: 'acme', bytes: 2100, repositories: 2, quota: 1_000_000 }],
      repositories: [
        { repository: 'acme/app', bytes: 2100 },
        { repository: 'acme/web', bytes: 100 },
      ],
    });
  });

  it('gives a user the namespaces they may pull from and the repositories they may pull, no total', async () => {
    const all = await fetch(`${r.url}/api/v0/usage`, { headers: basic('alice') });
    expect(await all.json()).toEqual({ namespaces: [{ namespace: 'acme', bytes: 2100, repositories: 2, quota: 1_000_000 }] });
    const acme = await fetch(`${r.url}/api/v0/usage?namespace=acme`, { headers: basic('alice') });
    expect(await acme.json()).toEqual({
      namespaces: [{ namespace: 'acme', bytes: 2100, repositories: 2, quota: 1_000_000 }],
      repositories: [{ repository: 'acme/app', bytes: 2100 }],
    });
    const beta = await fetch(`${r.url}/api/v0/usage?namespace=beta`, { headers: basic('alice') });
    expect([beta.status, await errorCode(beta)]).toEqual([403, 'DENIED']);
    const anonymous = await fetch(`${r.url}/api/v0/usage?namespace=beta`);
    expect(anonymous.status).toBe(401);
  });

  it('refuses a namespace that is not one', async () => {
    const res = await fetch(`${r.url}/api/v0/usage?namespace=acme/app`, { headers: basic('root') });
    expect([res.status, await errorCode(res)]).toEqual([400, 'NAME_INVALID']);
  });
});

describe('GET /api/v0/usage: which namespaces a pattern reaches', () => {
  let r: TestRegistry;
  beforeAll(async () => {
    // `acme` is one repository (its own namespace); `b*a/x` reaches the namespaces its first segment matches.
    const rules = [{ repositories: ['acme', 'b*a/x'], users: ['alice'], actions: ['pull' as const] }];
    r = await startRegistry({ htpasswd, admins: ['root'], access: { rules } });
    for (const repo of ['acme', 'acmecorp/app', 'beta/x', 'bx/y']) r.store.linkBlob(repo, a);
  });
  afterAll(async () => {
    await r.close();
  });

  it('shows a namespace whose name a pattern only starts with to no one but an admin', async () => {
    const all = await fetch(`${r.url}/api/v0/usage`, { headers: basic('alice') });
    expect(((await all.json()) as { namespaces: { namespace: string }[] }).namespaces.map((n) => n.namespace)).toEqual(['acme', 'beta']);
    for (const namespace of ['acmecorp', 'bx']) {
      const one = await fetch(`${r.url}/api/v0/usage?namespace=${namespace}`, { headers: basic('alice') });
      expect([namespace, one.status, await errorCode(one)]).toEqual([namespace, 403, 'DENIED']);
    }
    const acme = await fetch(`${r.url}/api/v0/usage?namespace=acme`, { headers: basic('alice') });
    expect(await acme.json()).toEqual({
      namespaces: [{ namespace: 'acme', bytes: 100, repositories: 1 }],
      repositories: [{ repository: 'acme', bytes: 100 }],
    });
    const root = await fetch(`${r.url}/api/v0/usage`, { headers: basic('root') });
    expect(((await root.json()) as { namespaces: unknown[] }).namespaces).toHaveLength(4);
  });
});

describe('storage metrics', () => {
  let r: TestRegistry;
  beforeAll(async () => {
    r = await startRegistry({ metrics: { statsInterval: 0 } }, undefined, { policy: QUOTAS });
    seed(r);
  });
  afterAll(async () => {
    await r.close();
  });

  it("are each namespace's bytes, its quota, and the registry's total, as kept", async () => {
    const text = await (await fetch(`${r.url}/metrics`)).text();
    expect(text).toContain('regmeta_storage_bytes{namespace="acme"} 2100\n');
    expect(text).toContain('regmeta_storage_bytes{namespace="beta"} 30000\n');
    expect(text).toContain('regmeta_storage_quota_bytes{namespace="acme"} 1000000\n');
    expect(text).not.toContain('regmeta_storage_quota_bytes{namespace="beta"}');
    expect(text).toContain('regmeta_storage_registry_bytes 32100\n');
    r.store.unlinkBlob('beta/x', c.digest);
    const after = await (await fetch(`${r.url}/metrics`)).text();
    expect(after).toContain('regmeta_storage_bytes{namespace="beta"} 0\n');
  });
});
