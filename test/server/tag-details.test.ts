// GET /api/v0/repositories/<name>/tags: the store's tagDetails over HTTP,
// its Link to the next page, its errors, and the pull right it needs.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobDesc, ociManifest, tickPast } from '../store/fixtures.js';
import { errorCode, startRegistry, type TestRegistry } from './helpers.js';

const dir = mkdtempSync(path.join(tmpdir(), 'regmeta-tag-details-'));
const htpasswd = path.join(dir, 'htpasswd');
writeFileSync(htpasswd, ['bob', 'dave'].map((u) => `${u}:${bcrypt.hashSync(`${u}-pw`, 4)}`).join('\n'));
const basic = (user: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${user}-pw`).toString('base64')}` });
const [bob, dave] = ['bob', 'dave'].map(basic);

let r: TestRegistry;
/** Each tag's size as it must be: its manifest's bytes, its config (500) and the shared layer (4096), each blob once. */
const sizes = new Map<string, number>();
beforeAll(async () => {
  r = await startRegistry({ htpasswd, access: { rules: [{ repositories: ['acme/*'], users: ['bob'], actions: ['pull', 'push'] }] } });
  // Written through the registry's own store: the rules are the HTTP side's.
  const layer = blobDesc('layer', undefined, 4096);
  r.store.linkBlob('acme/app', { digest: layer.digest, size: layer.size });
  for (const tag of ['v1', 'v2', 'v3', 'latest']) {
    const seed = tag === 'latest' ? 'v3' : tag;
    const config = blobDesc(`${seed}/config`, 'application/vnd.oci.image.config.v1+json', 500);
    r.store.linkBlob('acme/app', { digest: config.digest, size: config.size });
    // v1 lists the layer twice: it counts once.
    const m = ociManifest({ seed, config, layers: tag === 'v1' ? [layer, layer] : [layer] });
    r.store.putManifest('acme/app', m.digest, m, { actor: 'bob' }, { tag });
    sizes.set(tag, m.payload.length + config.size + layer.size);
    tickPast(Date.now());
  }
});
afterAll(async () => {
  await r.close();
  rmSync(dir, { recursive: true, force: true });
});

const get = (query: string, headers: Record<string, string> = bob) => fetch(`${r.url}/api/v0/repositories/acme/app/tags${query}`, { headers });

describe('GET /api/v0/repositories/<name>/tags', () => {
  it("answers each tag's details, sorted and filtered as asked", async () => {
    const res = await get('');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const body = (await res.json()) as { tags: { tag: string; digest: string; size: number; pushedAt: string; pullCount: number }[]; next?: string };
    expect(body.tags.map((t) => t.tag)).toEqual(['latest', 'v1', 'v2', 'v3']);
    expect(body.next).toBeUndefined();
    expect(body.tags[0]).toMatchObject({ mediaType: 'application/vnd.oci.image.manifest.v1+json', pullCount: 0 });
    expect(body.tags[0].digest).toBe(body.tags[3].digest);
    expect(Object.fromEntries(body.tags.map((t) => [t.tag, t.size]))).toEqual(Object.fromEntries(sizes));
    expect(Number.isNaN(Date.parse(body.tags[0].pushedAt))).toBe(false);
    const desc = (await (await get('?order=desc&pattern=v*')).json()) as { tags: { tag: string }[] };
    expect(desc.tags.map((t) => t.tag)).toEqual(['v3', 'v2', 'v1']);
    const prefixed = (await (await get('?prefix=v&sort=pushed')).json()) as { tags: { tag: string }[] };
    expect(prefixed.tags.map((t) => t.tag)).toEqual(['v1', 'v2', 'v3']);
  });

  it('links the next page while there is one, keeping the query', async () => {
    const seen: string[] = [];
    let url: string | undefined = `${r.url}/api/v0/repositories/acme/app/tags?n=3&sort=pushed&order=desc`;
    let pages = 0;
    while (url !== undefined) {
      const res = await fetch(url, { headers: bob });
      expect(res.status).toBe(200);
      seen.push(...((await res.json()) as { tags: { tag: string }[] }).tags.map((t) => t.tag));
      pages++;
      const link = res.headers.get('link');
      url = link === null ? undefined : r.url + /^<([^>]+)>; rel="next"$/.exec(link)![1];
      if (url !== undefined) expect(url).toMatch(/sort=pushed&order=desc/);
    }
    expect(pages).toBe(2);
    expect(seen).toHaveLength(4);
    expect(seen.slice(0, 2).sort()).toEqual(['latest', 'v3']);
  });

  it('refuses a bad query with a 400 and the code of the store', async () => {
    for (const [query, code] of [
      ['?sort=size', 'ARGUMENT_INVALID'],
      ['?order=sideways', 'ARGUMENT_INVALID'],
      ['?pattern=a/b', 'ARGUMENT_INVALID'],
      ['?prefix=a%20b', 'TAG_INVALID'],
      ['?n=0', 'PAGINATION_NUMBER_INVALID'],
      ['?n=-1', 'PAGINATION_NUMBER_INVALID'],
      ['?last=nonsense', 'PAGINATION_NUMBER_INVALID'],
    ]) {
      const res = await get(query);
      expect([query, res.status]).toEqual([query, 400]);
      expect(await errorCode(res)).toBe(code);
    }
  });

  it('needs pull in the repository: 404 for one not there, 403 for a user without the right, 401 anonymous', async () => {
    expect((await fetch(`${r.url}/api/v0/repositories/acme/none/tags`, { headers: bob })).status).toBe(404);
    const denied = await get('', dave);
    expect(denied.status).toBe(403);
    expect(await errorCode(denied)).toBe('DENIED');
    expect((await get('', {})).status).toBe(401);
    expect((await fetch(`${r.url}/api/v0/repositories/acme/app/tags`, { method: 'DELETE', headers: bob })).status).toBe(405);
  });
});
