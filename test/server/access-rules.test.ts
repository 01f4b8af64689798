// Access rules (--access): patterns, the file's validation, and every route
// allowed and denied for several users and anonymous clients, over HTTP.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Access, AccessRulesError, readAccessRules } from '../../src/server/access.js';
import { compilePattern } from '../../src/store/grammar.js';
import { errorCode, imageManifest, OCI_MANIFEST, sha256, startRegistry, type TestRegistry } from './helpers.js';

const dir = mkdtempSync(path.join(tmpdir(), 'regmeta-access-'));
const htpasswd = path.join(dir, 'htpasswd');
writeFileSync(htpasswd, ['alice', 'bob', 'carol', 'dave'].map((u) => `${u}:${bcrypt.hashSync(`${u}-pw`, 4)}`).join('\n'));
const rulesFile = path.join(dir, 'rules.yaml');
writeFileSync(
  rulesFile,
  `admins: [alice]
rules:
  - repositories: ['acme/*']
    users: [bob]
    actions: [pull, push]
  - repositories: ['acme/*']
    users: [carol]
    actions: [pull]
  - repositories: ['acme/**']
    users: [carol]
    actions: [delete]
  - repositories: ['public/**']
    users: ['*', anonymous]
    actions: [pull]
  - repositories: ['drop/*']
    users: [bob]
    actions: [push]
`,
);
const basic = (user: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${user}-pw`).toString('base64')}` });
const [alice, bob, carol, dave] = ['alice', 'bob', 'carol', 'dave'].map(basic);
const anonymous = {};

describe('patterns and the rules file', () => {
  const matches = (pattern: string, name: string) => (compilePattern(pattern) as RegExp).test(name);

  it('* matches within one segment, ** any number of whole segments', () => {
    expect(matches('acme/*', 'acme/app')).toBe(true);
    expect(matches('acme/*', 'acme/a/b')).toBe(false);
    expect(matches('acme/*', 'acme')).toBe(false);
    expect(matches('acme/**', 'acme/a/b')).toBe(true);
    expect(matches('acme/**', 'acme')).toBe(false);
    expect(matches('acme/**', 'acmex/a')).toBe(false);
    expect(matches('**', 'a/b/c')).toBe(true);
    expect(matches('**/app', 'app')).toBe(true);
    expect(matches('**/app', 'x/y/app')).toBe(true);
    expect(matches('a/**/b', 'a/b')).toBe(true);
    expect(matches('a/**/b', 'a/x/y/b')).toBe(true);
    expect(matches('app-*', 'app-1')).toBe(true);
    expect(matches('app.*', 'appx1')).toBe(false);
    expect(compilePattern('a**b')).toMatch(/whole segment/);
    expect(compilePattern('Acme/*')).toMatch(/not a pattern segment/);
    expect(compilePattern('a//b')).toMatch(/not a pattern segment/);
  });

  it('grants are a union, admins from the file and from --admin do everything, anonymous is never an admin', () => {
    const access = readAccessRules(rulesFile, ['root', 'anonymous']);
    expect(access.allows('bob', 'push', 'acme/app')).toBe(true);
    expect(access.allows('bob', 'delete', 'acme/app')).toBe(false);
    expect(access.allows('carol', 'delete', 'acme/a/b')).toBe(true);
    expect(access.allows('carol', 'pull', 'acme/a/b')).toBe(false);
    expect(access.allows('dave', 'pull', 'public/x/y')).toBe(true);
    expect(access.allows('', 'pull', 'public/x')).toBe(true);
    expect(access.allows('', 'push', 'public/x')).toBe(false);
    expect(access.allows('alice', 'delete', 'secret/x')).toBe(true);
    expect(access.allows('root', 'delete', 'secret/x')).toBe(true);
    expect(access.isAdmin('')).toBe(false);
    expect(access.anonymous).toBe(true);
  });

  it('reports every problem of a rules file, one line each, naming its key', () => {
    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ admin: ['x'], rules: [{ repositories: ['a**'], users: [], actions: ['pull', 'pul'] }, 'no'] }));
    let error: unknown;
    try {
      readAccessRules(bad);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AccessRulesError);
    expect((error as AccessRulesError).problems).toEqual([
      `access ${bad}: admin: unknown key (admins, rules)`,
      `access ${bad}: rules[0].repositories[0]: ** must be a whole segment, not part of "a**"`,
      `access ${bad}: rules[0].users: expected a non-empty list of names, got []`,
      `access ${bad}: rules[0].actions[1]: expected pull, push or delete, got "pul"`,
      `access ${bad}: rules[1]: expected a mapping of repositories, users and actions`,
    ]);
    expect(() => new Access({ rules: [{ repositories: ['x'], users: ['u'], actions: ['pull'], extra: 1 } as never] })).toThrow(
      /rules\[0\]\.extra: unknown key/,
    );
  });
});

describe('a registry with access rules and several users', () => {
  let r: TestRegistry;
  const images: Record<string, { digest: string; config: string }> = {};

  const req = (p: string, headers: Record<string, string>, init: RequestInit = {}) =>
    fetch(`${r.url}${p}`, { ...init, headers: { ...headers, ...(init.headers as Record<string, string>) } });

  async function push(repo: string, reference: string, seed: string, who: Record<string, string>): Promise<number> {
    const config = JSON.stringify({ seed });
    const layer = `layer ${seed}`;
    for (const blob of [config, layer]) {
      const res = await req(`/v2/${repo}/blobs/uploads/?digest=${sha256(blob)}`, who, { method: 'POST', body: blob });
      if (res.status !== 201) return res.status;
    }
    const manifest = imageManifest(config, [layer]);
    const res = await req(`/v2/${repo}/manifests/${reference}`, who, { method: 'PUT', headers: { 'Content-Type': OCI_MANIFEST }, body: manifest });
    images[repo] = { digest: sha256(manifest), config };
    return res.status;
  }

  beforeAll(async () => {
    r = await startRegistry({ htpasswd, access: rulesFile, maxFailedLoginsPerAddress: 0 });
    for (const repo of ['acme/app', 'acme/team/tool', 'public/base', 'secret/x']) expect(await push(repo, 'v1', repo, alice)).toBe(201);
  });
  afterAll(async () => {
    await r.close();
  });

  it('pull: allowed where granted; 403 DENIED for a user, 401 with a challenge for anonymous elsewhere', async () => {
    const { digest, config } = images['acme/app'];
    for (const p of ['/v2/acme/app/manifests/v1', `/v2/acme/app/blobs/${sha256(config)}`, '/v2/acme/app/tags/list', `/v2/acme/app/referrers/${digest}`]) {
      expect((await req(p, bob)).status).toBe(200);
      expect((await req(p, carol)).status).toBe(200);
      const denied = await req(p, dave);
      expect(denied.status).toBe(403);
      expect(await errorCode(denied)).toBe('DENIED');
      const anon = await req(p, anonymous);
      expect(anon.status).toBe(401);
      expect(anon.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    }
    expect((await req('/v2/acme/app/manifests/v1', bob, { method: 'HEAD' })).status).toBe(200);
    expect((await req('/v2/public/base/manifests/v1', anonymous)).status).toBe(200);
    // Empty Basic credentials, as skopeo sends them after a challenge, are anonymous.
    expect((await req('/v2/public/base/manifests/v1', { Authorization: 'Basic Og==' })).status).toBe(200);
    expect((await req('/v2/acme/app/manifests/v1', { Authorization: 'Basic Og==' })).status).toBe(401);
    expect((await req('/v2/public/base/manifests/v1', dave)).status).toBe(200);
    expect((await req('/v2/secret/x/manifests/v1', bob)).status).toBe(403);
    expect((await req('/v2/secret/x/manifests/v1', alice)).status).toBe(200);
    // Denied whether or not the repository exists: a refusal tells nothing.
    expect((await req('/v2/secret/none/manifests/v1', bob)).status).toBe(403);
    // Wrong credentials are never taken for anonymous.
    const wrong = { Authorization: `Basic ${Buffer.from('bob:nope').toString('base64')}` };
    expect((await req('/v2/public/base/manifests/v1', wrong)).status).toBe(401);
  });

  it('/v2/ challenges anonymous clients (the login check) and lets users in', async () => {
    expect((await req('/v2/', anonymous)).status).toBe(401);
    expect((await req('/v2/', dave)).status).toBe(200);
  });

  it('push: blobs, chunked sessions and manifests only where granted', async () => {
    expect(await push('acme/new', 'v1', 'bob new', bob)).toBe(201);
    expect(await push('secret/x', 'v2', 'bob secret', bob)).toBe(403);
    expect(await push('acme/app', 'v2', 'carol', carol)).toBe(403);
    expect(await push('public/base', 'v2', 'anon', anonymous)).toBe(401);
    const session = await req('/v2/acme/app/blobs/uploads/', bob, { method: 'POST' });
    expect(session.status).toBe(202);
    const location = session.headers.get('location')!;
    expect((await req(location, carol, { method: 'PATCH', body: 'x' })).status).toBe(403);
    expect((await req(location, carol)).status).toBe(403);
    expect((await req(location, carol, { method: 'DELETE' })).status).toBe(403);
    expect((await req(location, bob, { method: 'PATCH', body: 'x' })).status).toBe(202);
    expect((await req(`${location}?digest=${sha256('x')}`, bob, { method: 'PUT' })).status).toBe(201);
    expect((await req('/v2/drop/box/blobs/uploads/', bob, { method: 'POST' })).status).toBe(202);
  });

  it('delete: manifests, tags and blobs only where granted', async () => {
    const tool = images['acme/team/tool'];
    expect((await req('/v2/acme/app/manifests/v1', bob, { method: 'DELETE' })).status).toBe(403);
    expect((await req(`/v2/acme/team/tool/blobs/${sha256(tool.config)}`, bob, { method: 'DELETE' })).status).toBe(403);
    expect((await req('/v2/public/base/manifests/v1', anonymous, { method: 'DELETE' })).status).toBe(401);
    expect((await req('/v2/acme/team/tool/manifests/v1', carol, { method: 'DELETE' })).status).toBe(202);
    expect((await req(`/v2/acme/team/tool/manifests/${tool.digest}`, carol, { method: 'DELETE' })).status).toBe(202);
    expect((await req(`/v2/acme/team/tool/blobs/${sha256(tool.config)}`, carol, { method: 'DELETE' })).status).toBe(202);
  });

  it('mount: refused from a repository the user cannot pull, done from one they can', async () => {
    const secret = sha256(images['secret/x'].config);
    const refused = await req(`/v2/acme/app/blobs/uploads/?mount=${secret}&from=secret/x`, bob, { method: 'POST' });
    expect(refused.status).toBe(403);
    expect(await errorCode(refused)).toBe('DENIED');
    expect((await req(`/v2/acme/app/blobs/${secret}`, bob)).status).toBe(404);
    const ok = await req(`/v2/drop/box/blobs/uploads/?mount=${sha256(images['acme/app'].config)}&from=acme/app`, bob, { method: 'POST' });
    expect(ok.status).toBe(201);
    const fromPublic = await req(`/v2/acme/app/blobs/uploads/?mount=${sha256(images['public/base'].config)}&from=public/base`, bob, { method: 'POST' });
    expect(fromPublic.status).toBe(201);
    // Pull on the source is not enough: the target needs push.
    expect((await req(`/v2/public/x/blobs/uploads/?mount=${secret}&from=public/base`, dave, { method: 'POST' })).status).toBe(403);
  });

  it('catalog: each user sees the repositories they may pull, paginated with correct Links', async () => {
    const payload = new TextEncoder().encode(imageManifest('{}', []));
    for (let i = 0; i < 12; i++) {
      for (const prefix of ['acme/r', 'secret/s', 'public/p']) r.store.putManifest(`${prefix}${String(i).padStart(2, '0')}`, undefined, { mediaType: OCI_MANIFEST, payload });
    }
    const all = ((await (await req('/v2/_catalog', alice)).json()) as { repositories: string[] }).repositories;
    expect(all.some((name) => name.startsWith('secret/'))).toBe(true);
    for (const [who, user] of [[bob, 'bob'], [dave, 'dave'], [anonymous, '']] as const) {
      const access = readAccessRules(rulesFile);
      const expected = all.filter((name) => access.allows(user, 'pull', name));
      const full = ((await (await req('/v2/_catalog', who)).json()) as { repositories: string[] }).repositories;
      expect(full).toEqual(expected);
      const paged: string[] = [];
      let next: string | null = '/v2/_catalog?n=5';
      while (next !== null) {
        const res: Response = await req(next, who);
        const page = ((await res.json()) as { repositories: string[] }).repositories;
        paged.push(...page);
        next = res.headers.get('link')?.match(/^<([^>]+)>/)?.[1] ?? null;
        if (next !== null) expect(page).toHaveLength(5);
      }
      expect(paged).toEqual(expected);
    }
  });

  it('events: a non-admin sees every event of the repositories they may pull, whoever did it, paged; actorId filters within them; an admin sees all', async () => {
    type Page = { events: { repository?: string; actor: string; type: string; object: { type: string; id: string } }[]; next?: string };
    const list = async (who: Record<string, string>, query = '') => {
      const res = await req(`/api/v0/events${query}`, who);
      expect(res.status).toBe(200);
      return (await res.json()) as Page;
    };
    // carol may delete in acme/**: she deletes the tag bob pushed.
    expect(await push('acme/app', 'v9', 'bob v9', bob)).toBe(201);
    expect((await req('/v2/acme/app/manifests/v9', carol, { method: 'DELETE' })).status).toBe(202);
    const seen = await list(bob, '?limit=1000');
    // bob's pull grants: acme/* and, as everyone's, public/**.
    const pullable = (repo?: string) => repo !== undefined && /^(acme\/[^/]+|public\/.+)$/.test(repo);
    expect(seen.events.every((e) => pullable(e.repository))).toBe(true);
    expect(seen.events.some((e) => e.actor === 'carol' && e.type === 'DELETE' && e.object.id === 'acme/app:v9')).toBe(true);
    expect(seen.events.some((e) => e.actor === 'alice' && e.repository === 'acme/app')).toBe(true);
    expect(seen.events.some((e) => e.actor === 'bob' && e.repository === 'acme/new')).toBe(true);
    // bob pushed to drop/box (push-only) but may not pull there.
    expect(r.store.getEvents({ actor: 'bob', repository: 'drop/box' }).events.length).toBeGreaterThan(0);
    const byCarol = await list(bob, '?actorId=carol&limit=1000');
    expect(byCarol.events.length).toBeGreaterThan(0);
    // carol's deletes in acme/team/tool are beyond bob's acme/*.
    expect(byCarol.events.every((e) => e.actor === 'carol' && pullable(e.repository))).toBe(true);
    expect(seen.events.some((e) => e.repository === 'public/base')).toBe(true);
    const paged: Page['events'] = [];
    let start: string | undefined;
    do {
      const page = await list(bob, `?limit=2${start === undefined ? '' : `&start=${start}`}`);
      if (page.next !== undefined) expect(page.events).toHaveLength(2);
      paged.push(...page.events);
      start = page.next;
    } while (start !== undefined);
    expect(paged).toEqual(seen.events);
    const admin = await list(alice, '?limit=1000');
    expect(admin.events.some((e) => e.repository === 'secret/x')).toBe(true);
    expect(admin.events.some((e) => e.repository === 'drop/box')).toBe(true);
    expect(admin.events.some((e) => e.repository === 'acme/team/tool')).toBe(true);
  });

  it('event stream: every event of the repositories the user may pull, another actor filtered by actorId', async () => {
    const controller = new AbortController();
    const res = await req('/api/v0/events/stream?actorId=alice', bob, { signal: controller.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read();
    await req(`/v2/secret/live/blobs/uploads/?digest=${sha256('secret')}`, alice, { method: 'POST', body: 'secret' });
    await req(`/v2/acme/mine/blobs/uploads/?digest=${sha256('mine')}`, bob, { method: 'POST', body: 'mine' });
    await req(`/v2/acme/live/blobs/uploads/?digest=${sha256('live')}`, alice, { method: 'POST', body: 'live' });
    let text = '';
    while (!text.includes('acme/live')) text += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    expect(text).not.toContain('secret/live');
    expect(text).not.toContain('acme/mine');
  });

  it('answered no request with a server fault', () => {
    expect(r.errors).toEqual([]);
  });
});

describe('rules without anonymous grants, and without htpasswd', () => {
  it('with htpasswd and no anonymous rule, every anonymous request is 401 as without rules', async () => {
    const r = await startRegistry({ htpasswd, access: { rules: [{ repositories: ['**'], users: ['*'], actions: ['pull'] }] } });
    try {
      for (const p of ['/v2/', '/v2/_catalog', '/v2/a/tags/list', '/api/v0/events']) expect((await fetch(`${r.url}${p}`)).status).toBe(401);
      expect((await fetch(`${r.url}/v2/_catalog`, { headers: dave })).status).toBe(200);
      expect((await fetch(`${r.url}/v2/a/blobs/uploads/`, { method: 'POST', headers: dave })).status).toBe(403);
    } finally {
      await r.close();
    }
  });

  it('without htpasswd, everyone is anonymous and the rules decide', async () => {
    const r = await startRegistry({ access: { rules: [{ repositories: ['open/**'], users: ['anonymous'], actions: ['pull', 'push'] }] } });
    try {
      expect((await fetch(`${r.url}/v2/`)).status).toBe(200);
      const ok = await fetch(`${r.url}/v2/open/a/blobs/uploads/?digest=${sha256('b')}`, { method: 'POST', body: 'b' });
      expect(ok.status).toBe(201);
      const denied = await fetch(`${r.url}/v2/closed/blobs/uploads/?digest=${sha256('b')}`, { method: 'POST', body: 'b' });
      expect(denied.status).toBe(401);
      expect(denied.headers.get('www-authenticate')).toMatch(/^Basic/);
      // Not an admin: the event API shows anonymous's own events of pullable repositories.
      const events = (await (await fetch(`${r.url}/api/v0/events`)).json()) as { events: { repository?: string }[] };
      expect(events.events.length).toBeGreaterThan(0);
      expect(events.events.every((e) => e.repository === 'open/a')).toBe(true);
    } finally {
      await r.close();
    }
  });
});

describe('filtering events while paging, bounded', () => {
  const access = new Access({ rules: [{ repositories: ['zz/*'], users: ['bob'], actions: ['pull'] }] });

  it('an events page that 20 reads could not fill answers short, with the next cursor', async () => {
    const { eventVisibility, visibleEvents } = await import('../../src/server/authorize.js');
    let reads = 0;
    const store = {
      getEvents: async ({ page }: { page?: string }) => {
        reads++;
        const at = Number(page ?? 0);
        return { events: [{ id: String(at), repository: at === 50 ? 'zz/app' : 'aa/x' }], next: String(at + 1) };
      },
    } as never;
    const visible = eventVisibility({ access, isAdmin: () => false }, 'bob')!;
    const first = await visibleEvents(store, visible, { perPage: 2 });
    expect(first).toEqual({ events: [], next: '20' });
    expect(reads).toBe(20);
    const later = await visibleEvents(store, visible, { perPage: 2, page: '40' });
    expect(later.events.map((e) => e.id)).toEqual(['50']);
  });
});
