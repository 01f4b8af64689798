// Basic auth from htpasswd, read-only mode, disabled deletes, and the event
// log over HTTP (pages and the server-sent stream) with its access rule.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readHtpasswd } from '../../src/server/auth.js';
import { errorCode, pushBlob, pushImage, putManifest, sha256, startRegistry, type TestRegistry } from './helpers.js';

const dir = mkdtempSync(path.join(tmpdir(), 'regmeta-htpasswd-'));
const htpasswd = path.join(dir, 'htpasswd');
// Cost 4 keeps the test fast; $2y$ is what `htpasswd -B` writes.
writeFileSync(
  htpasswd,
  [
    '# users',
    `alice:${bcrypt.hashSync('alice-pw', 4).replace(/^\$2[ab]\$/, '$2y$')}`,
    `bob:${bcrypt.hashSync('bob-pw', 4)}`,
    `root:${bcrypt.hashSync('root-pw', 4)}`,
    'md5user:$apr1$abcdefgh$0123456789abcdefghijkl',
    'shauser:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=',
    '',
  ].join('\n'),
);
const basic = (user: string, password: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
const alice = basic('alice', 'alice-pw');
const bob = basic('bob', 'bob-pw');
const root = basic('root', 'root-pw');

describe('htpasswd', () => {
  it('reads bcrypt entries only', () => {
    expect([...readHtpasswd(htpasswd).keys()]).toEqual(['alice', 'bob', 'root']);
  });

  it('names each entry it ignores in one warning line, with the kind of hash', () => {
    const file = path.join(dir, 'mixed.htpasswd');
    writeFileSync(
      file,
      [
        `ok:${bcrypt.hashSync('pw', 4)}`,
        'md5:$apr1$abcdefgh$0123456789abcdefghijkl',
        'sha:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=',
        'des:abJnggxhB/yWI',
        'md5crypt:$1$saltsalt$qjXMvbEw8oaL.CzflDugX/',
        'plain:hunter2',
        `costly:$2y$03$${'C0lJ75xie5x2OHumSBGKfeRegn/kCvTBM1LZictuSPrDrTUs7fLOW'}`,
        'no colon here',
        '# a comment',
        '',
      ].join('\n'),
    );
    const warnings: string[] = [];
    expect([...readHtpasswd(file, (line) => warnings.push(line)).keys()]).toEqual(['ok']);
    expect(warnings.map((line) => line.replace(`${file}:`, ''))).toEqual([
      `2: user "md5" ignored, cannot log in: MD5 (apr1), not bcrypt (set a new password with 'regmeta passwd')`,
      `3: user "sha" ignored, cannot log in: SHA1, not bcrypt (set a new password with 'regmeta passwd')`,
      `4: user "des" ignored, cannot log in: crypt, not bcrypt (set a new password with 'regmeta passwd')`,
      `5: user "md5crypt" ignored, cannot log in: MD5 crypt, not bcrypt (set a new password with 'regmeta passwd')`,
      `6: user "plain" ignored, cannot log in: plain text, not bcrypt (set a new password with 'regmeta passwd')`,
      `7: user "costly" ignored, cannot log in: a bcrypt hash of cost 3, outside 4-31 (set a new password with 'regmeta passwd')`,
      '8: not a user:hash line; ignored',
    ]);
    for (const line of warnings) expect(line).not.toContain('\n');
  });

  it('passes the warnings to the onWarning option of the registry', async () => {
    const warnings: string[] = [];
    const own = await startRegistry({ htpasswd, onWarning: (line) => warnings.push(line) });
    await own.close();
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain('user "md5user" ignored, cannot log in: MD5 (apr1), not bcrypt');
    expect(warnings[1]).toContain('user "shauser" ignored, cannot log in: SHA1, not bcrypt');
  });
});

describe('basic auth', () => {
  let r: TestRegistry;
  beforeAll(async () => {
    // The first test sends more wrong passwords than the default failure
    // limit allows one address; the limit has its own tests (auth-abuse).
    r = await startRegistry({ htpasswd, admins: ['root'], maxFailedLoginsPerAddress: 0 });
  });
  afterAll(async () => {
    await r.close();
  });

  it('answers 401 UNAUTHORIZED with a Basic challenge to anonymous and wrong credentials, on every endpoint', async () => {
    for (const headers of [{}, basic('alice', 'wrong'), basic('nobody', 'x'), basic('md5user', 'x'), { Authorization: 'Bearer abc' }]) {
      for (const p of ['/v2/', '/v2/_catalog', '/v2/a/tags/list', '/api/v0/events', '/v2/../x']) {
        const res = await fetch(`${r.url}${p}`, { headers });
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm="regmeta"/);
        expect(await errorCode(res)).toBe('UNAUTHORIZED');
      }
    }
  });

  it('lets a user in with a $2y$ or $2b$ hash and records them as the actor of every write', async () => {
    expect((await fetch(`${r.url}/v2/`, { headers: alice })).status).toBe(200);
    expect((await fetch(`${r.url}/v2/`, { headers: bob })).status).toBe(200);
    const config = 'alice config';
    await pushBlob(r.url, 'team/app', config, { headers: alice });
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [],
    });
    expect((await putManifest(r.url, 'team/app', 'v1', manifest, undefined, alice)).status).toBe(201);
    expect((await fetch(`${r.url}/v2/team/app/manifests/v1`, { method: 'DELETE', headers: bob })).status).toBe(202);
    const { events } = r.store.getEvents({ repository: 'team/app' });
    const byType = events.map((e) => `${e.actor} ${e.type} ${e.object.type}`);
    expect(byType).toContain('alice CREATE REPOSITORY');
    expect(byType).toContain('alice CREATE MANIFEST');
    expect(byType).toContain('alice CREATE TAG');
    expect(byType).toContain('bob DELETE TAG');
    expect(r.logs.some((entry) => entry.actor === 'alice' && entry.method === 'PUT')).toBe(true);
  });

  it('streams a user every event, as they may pull every repository; actorId picks one actor\'s', async () => {
    const controller = new AbortController();
    const res = await fetch(`${r.url}/api/v0/events/stream?actorId=alice`, { headers: bob, signal: controller.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read();
    await pushBlob(r.url, 'team/bob-only', 'a blob of bob', { headers: bob });
    await pushBlob(r.url, 'team/alice-only', 'a blob of alice', { headers: alice });
    let text = '';
    while (!text.includes('team/alice-only')) text += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    expect(text).not.toContain('team/bob-only');
  });

  it('shows a user the events of every repository (without access rules all may pull everything), filtered by actorId', async () => {
    const all = (await (await fetch(`${r.url}/api/v0/events?limit=1000`, { headers: bob })).json()) as { events: { actor: string }[] };
    expect(all.events.some((e) => e.actor === 'alice')).toBe(true);
    expect(all.events.some((e) => e.actor === 'bob')).toBe(true);
    const other = await fetch(`${r.url}/api/v0/events?actorId=alice`, { headers: bob });
    expect(other.status).toBe(200);
    const byAlice = (await other.json()) as { events: { actor: string }[] };
    expect(byAlice.events.length).toBeGreaterThan(0);
    expect(byAlice.events.every((e) => e.actor === 'alice')).toBe(true);
    const admin = (await (await fetch(`${r.url}/api/v0/events?actorId=alice`, { headers: root })).json()) as { events: { actor: string }[] };
    expect(admin.events).toEqual(byAlice.events);
  });
});

describe('read-only mode', () => {
  let writable: TestRegistry;
  let r: TestRegistry;
  let digest: string;
  beforeAll(async () => {
    // Fill the store through a writable server, then serve it read-only.
    writable = await startRegistry();
    ({ digest } = await pushImage(writable.url, 'ro/app', 'v1', 'read-only'));
    r = await startRegistry({ readOnly: true }, writable);
  });
  afterAll(async () => {
    await r.close();
    await writable.close();
  });

  it('refuses every write with 405 UNSUPPORTED and still serves reads', async () => {
    const writes: [string, string][] = [
      ['POST', '/v2/ro/app/blobs/uploads/'],
      ['PUT', '/v2/ro/app/manifests/v2'],
      ['DELETE', `/v2/ro/app/manifests/${digest}`],
      ['DELETE', `/v2/ro/app/blobs/${digest}`],
    ];
    for (const [method, p] of writes) {
      const res = await fetch(`${r.url}${p}`, { method, body: method === 'PUT' ? '{}' : undefined });
      expect(res.status).toBe(405);
      expect(await errorCode(res)).toBe('UNSUPPORTED');
    }
    expect((await fetch(`${r.url}/v2/`)).status).toBe(200);
    expect((await fetch(`${r.url}/v2/ro/app/manifests/v1`)).status).toBe(200);
    expect((await fetch(`${r.url}/v2/ro/app/manifests/${digest}`)).status).toBe(200);
  });
});

describe('deletes switched off', () => {
  let r: TestRegistry;
  beforeAll(async () => {
    r = await startRegistry({ deletes: false });
  });
  afterAll(async () => {
    await r.close();
  });

  it('refuses manifest, tag and blob deletes with 405 UNSUPPORTED and keeps the content', async () => {
    const { digest, config } = await pushImage(r.url, 'nodel/app', 'v1', 'no-delete');
    for (const p of ['/v2/nodel/app/manifests/v1', `/v2/nodel/app/manifests/${digest}`, `/v2/nodel/app/blobs/${sha256(config)}`]) {
      const res = await fetch(`${r.url}${p}`, { method: 'DELETE' });
      expect(res.status).toBe(405);
      expect(await errorCode(res)).toBe('UNSUPPORTED');
    }
    expect((await fetch(`${r.url}/v2/nodel/app/manifests/v1`)).status).toBe(200);
    // Cancelling an upload is not a delete of content.
    const session = await fetch(`${r.url}/v2/nodel/app/blobs/uploads/`, { method: 'POST' });
    expect((await fetch(`${r.url}${session.headers.get('location')}`, { method: 'DELETE' })).status).toBe(204);
  });
});

describe('event log', () => {
  let r: TestRegistry;
  beforeAll(async () => {
    r = await startRegistry();
  });
  afterAll(async () => {
    await r.close();
  });

  type Page = { events: { id: string; type: string; actor: string; publishedAt: string; object: { type: string; id: string } }[]; next?: string };

  it('pages through events newest first with start/limit, the next token and a Link', async () => {
    await pushImage(r.url, 'ev/app', 'v1', 'events');
    await pushImage(r.url, 'ev/app', 'v2', 'events2');
    const all = (await (await fetch(`${r.url}/api/v0/events?limit=1000`)).json()) as Page;
    expect(all.next).toBeUndefined();
    expect(all.events.length).toBeGreaterThanOrEqual(5);
    const seen: string[] = [];
    let url: string | undefined = `${r.url}/api/v0/events?limit=2`;
    while (url) {
      const res: Response = await fetch(url);
      const page = (await res.json()) as Page;
      expect(page.events.length).toBeLessThanOrEqual(2);
      seen.push(...page.events.map((e) => e.id));
      url = page.next ? `${r.url}/api/v0/events?limit=2&start=${page.next}` : undefined;
      if (page.next) expect(res.headers.get('link')).toContain(`start=${page.next}`);
    }
    expect(seen).toEqual(all.events.map((e) => e.id));
    const times = all.events.map((e) => Date.parse(e.publishedAt));
    expect(times).toEqual([...times].sort((a, b) => b - a));
  });

  it('filters by eventType, objectType and repository, and by time', async () => {
    const tags = (await (await fetch(`${r.url}/api/v0/events?eventType=create&objectType=TAG&repository=ev/app`)).json()) as Page;
    expect(tags.events.map((e) => e.object.id).sort()).toEqual(['ev/app:v1', 'ev/app:v2']);
    const future = (await (await fetch(`${r.url}/api/v0/events?publishedAfter=${Date.now() + 60_000}`)).json()) as Page;
    expect(future.events).toEqual([]);
    const past = (await (await fetch(`${r.url}/api/v0/events?publishedBefore=2000-01-01T00:00:00Z`)).json()) as Page;
    expect(past.events).toEqual([]);
  });

  it('answers 400 to malformed parameters', async () => {
    for (const query of ['limit=abc', 'limit=0', 'publishedAfter=yesterday', 'eventType=EXPLODE', 'start=%%%', 'repository=BAD']) {
      const res = await fetch(`${r.url}/api/v0/events?${query}`);
      expect(res.status, query).toBe(400);
    }
  });

  it('ends open event streams when the server shuts down', async () => {
    const own = await startRegistry();
    const res = await fetch(`${own.url}/api/v0/events/stream`);
    const reader = res.body!.getReader();
    await reader.read();
    await own.close();
    let done = false;
    while (!done) done = (await reader.read()).done;
    expect(done).toBe(true);
  });

  it('streams new events as server-sent events', async () => {
    const controller = new AbortController();
    const res = await fetch(`${r.url}/api/v0/events/stream?repository=ev/live`, { signal: controller.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    await reader.read(); // the opening comment: the subscription is live
    await pushImage(r.url, 'ev/live', 'v1', 'live');
    await pushImage(r.url, 'ev/other', 'v1', 'not this one');
    while (!text.includes('ev/live:v1')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
    controller.abort();
    const events = text
      .split('\n\n')
      .filter((block) => block.includes('data: '))
      .map((block) => JSON.parse(block.split('data: ')[1]) as { object: { id: string }; repository: string });
    expect(events.map((e) => e.object.id)).toEqual(['ev/live', `ev/live@${events[1].object.id.split('@')[1]}`, 'ev/live:v1']);
    expect(events.every((e) => e.repository === 'ev/live')).toBe(true);
    expect(text).toMatch(/^id: [0-9a-f-]{36}\nevent: CREATE\ndata: /m);
  });
});
