// A full disk is an operator's problem the client should hear about plainly:
// 507 with the OCI error envelope, no path in the message, nothing left
// behind, and the registry working again once there is room.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBlob, sha256, startRegistry, type TestRegistry } from './helpers.js';

// Filling a real filesystem needs one small enough: a tmpfs, which only root may mount.
const asRoot = process.getuid?.() === 0;

describe.runIf(asRoot)('a full disk', () => {
  let mountPoint: string;
  let r: TestRegistry;
  beforeAll(async () => {
    mountPoint = mkdtempSync(path.join(tmpdir(), 'regmeta-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mountPoint]);
    r = await startRegistry({ dataDir: mountPoint });
  });
  afterAll(async () => {
    await r?.close();
    execFileSync('umount', [mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });

  it('answers a blob push that fills the disk with 507 and the error envelope, naming no path', async () => {
    const bytes = Buffer.alloc(4 * 1024 * 1024, 1);
    const res = await fetch(`${r.url}/v2/full/app/blobs/uploads/?digest=${sha256(bytes)}`, { method: 'POST', body: bytes });
    expect(res.status).toBe(507);
    const body = (await res.json()) as { errors: { code: string; message: string }[] };
    expect(body.errors[0].code).toBe('UNAVAILABLE');
    expect(body.errors[0].message).toMatch(/storage is full/);
    expect(JSON.stringify(body)).not.toContain(mountPoint);
    // Reported once to the operator, with its detail.
    expect(r.errors.map((error) => (error as NodeJS.ErrnoException).code)).toEqual(['ENOSPC']);
  });

  it('keeps no part of the refused upload, so the next push that fits succeeds', async () => {
    expect(readdirSync(path.join(r.dataDir, 'uploads'))).toEqual([]);
    const digest = await pushBlob(r.url, 'full/app', 'small enough');
    expect((await fetch(`${r.url}/v2/full/app/blobs/${digest}`)).status).toBe(200);
  });
});
