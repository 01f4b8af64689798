// The request log over real HTTP: one entry per request with its route kind,
// client address, user agent and request id; the id on every response, the
// client's when sane; a server fault reported once, with that id.

import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBlob, startRegistry, type TestRegistry } from './helpers.js';

/** The log entry of the response carrying `requestId`, once the server has logged it. */
async function entryOf(r: TestRegistry, requestId: string) {
  for (let i = 0; i < 100; i++) {
    const found = r.logs.find((entry) => entry.requestId === requestId);
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`no log entry with request id ${requestId}`);
}

describe('the request id', () => {
  let r: TestRegistry;
  beforeAll(async () => {
    r = await startRegistry();
  });
  afterAll(() => r.close());

  it('is made for a request without one, distinct for each, on success and error answers alike', async () => {
    const responses = [await fetch(`${r.url}/v2/`), await fetch(`${r.url}/v2/no/such/manifests/latest`), await fetch(`${r.url}/nowhere`)];
    expect(responses.map((res) => res.status)).toEqual([200, 404, 404]);
    const ids = responses.map((res) => res.headers.get('x-request-id'));
    for (const id of ids) expect(id).toMatch(/^[!-~]{1,128}$/);
    expect(new Set(ids).size).toBe(3);
    for (const id of ids) expect((await entryOf(r, id!)).requestId).toBe(id);
  });

  it("is the client's when sane: echoed, and in the log entry", async () => {
    const res = await fetch(`${r.url}/v2/`, { headers: { 'X-Request-Id': 'trace-7f3a/2:retry' } });
    expect(res.headers.get('x-request-id')).toBe('trace-7f3a/2:retry');
    expect((await entryOf(r, 'trace-7f3a/2:retry')).status).toBe(200);
  });

  it('replaces an id that is too long, holds a space or a character outside ASCII, or is empty', async () => {
    for (const insane of ['x'.repeat(129), 'two words', 'caf\u00e9', '']) {
      const res = await fetch(`${r.url}/v2/`, { headers: { 'X-Request-Id': insane } });
      const id = res.headers.get('x-request-id')!;
      expect(id).not.toBe(insane);
      expect(id).toMatch(/^[!-~]{1,128}$/);
      expect(r.logs.some((entry) => entry.requestId === insane)).toBe(false);
    }
    const longest = 'y'.repeat(128);
    expect((await fetch(`${r.url}/v2/`, { headers: { 'X-Request-Id': longest } })).headers.get('x-request-id')).toBe(longest);
  });
});

describe('a request log entry', () => {
  let r: TestRegistry;
  beforeAll(async () => {
    r = await startRegistry();
  });
  afterAll(() => r.close());

  it('names the route kind, not only the path, with the client address and user agent', async () => {
    const digest = await pushBlob(r.url, 'logged/app', 'some bytes');
    const res = await fetch(`${r.url}/v2/logged/app/blobs/${digest}?x=1`, { headers: { 'User-Agent': 'skopeo/1.13' } });
    await res.arrayBuffer();
    const entry = await entryOf(r, res.headers.get('x-request-id')!);
    expect(entry).toMatchObject({
      method: 'GET',
      route: 'blob',
      path: `/v2/logged/app/blobs/${digest}`,
      status: 200,
      actor: '',
      remoteAddress: '127.0.0.1',
      userAgent: 'skopeo/1.13',
    });
    expect(entry.bytes).toBeGreaterThan('some bytes'.length);
    expect(entry.ms).toBeGreaterThanOrEqual(0);
    expect(r.logs.find((e) => e.method === 'POST')).toMatchObject({ route: 'uploadStart', status: 201 });
  });

  it("names 'none' for a path no route takes, and cuts a long path", async () => {
    const res = await fetch(`${r.url}/${'a'.repeat(3000)}`);
    const entry = await entryOf(r, res.headers.get('x-request-id')!);
    expect(entry).toMatchObject({ route: 'none', status: 404, userAgent: expect.any(String) });
    expect(entry.path.length).toBe(1024);
  });
});

describe('a server fault', () => {
  it('is reported once, with its detail and the id of the request it happened in', async () => {
    const r = await startRegistry();
    try {
      // Where upload sessions are written is a file now: starting one fails in the filesystem.
      rmSync(path.join(r.dataDir, 'uploads'), { recursive: true });
      writeFileSync(path.join(r.dataDir, 'uploads'), 'in the way');
      const res = await fetch(`${r.url}/v2/faulty/app/blobs/uploads/`, { method: 'POST' });
      expect(res.status).toBe(500);
      const body = await res.text();
      expect(body).not.toContain(r.dataDir);
      const requestId = res.headers.get('x-request-id')!;
      expect(r.errors).toHaveLength(1);
      expect((r.errors[0] as NodeJS.ErrnoException).code).toBe('ENOTDIR');
      expect(String((r.errors[0] as Error).message)).toContain(r.dataDir);
      expect(r.faults).toEqual([{ requestId }]);
      expect(await entryOf(r, requestId)).toMatchObject({ route: 'uploadStart', status: 500 });
    } finally {
      await r.close();
    }
  });
});
