// The catalog under access rules, among 100 100 repositories the caller may
// not pull: its Link never names one of them, and a page's store reads do
// not grow with them (counted on the real store, not timed).

import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asyncStore, openStore, type Store, type CatalogOptions, type MetadataStore } from 'regmeta';
import { closeRegistry, createRegistry } from 'regmeta/server';
import { Access, type AccessRules } from '../../src/server/access.js';
import { CATALOG_READS, CATALOG_SLACK, pullableCatalog } from '../../src/server/catalog.js';
import { errorCode } from './helpers.js';

const FORBIDDEN = 100_100;
const forbiddenName = (i: number) => `c/r${String(i).padStart(7, '0')}`;
// A piece of a forbidden name (a sealed cursor is base64url, which has no '/').
const FORBIDDEN_PIECE = /c\/r\d/;

const dir = mkdtempSync(path.join(tmpdir(), 'regmeta-catalog-'));
let sync: MetadataStore;
/** Per catalog read the server made: how many names the store returned. */
let reads: number[] = [];

/** The real store, its catalog reads counted. */
function counted(store: Store): Store {
  return new Proxy(store, {
    get(target, property) {
      if (property === 'catalog') {
        return async (page?: CatalogOptions) => {
          const names = await target.catalog(page);
          reads.push(names.length);
          return names;
        };
      }
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

const layouts: Array<{ name: string; rules: string[]; visible: string[] }> = [
  // Forbidden names outside every range the rules can match.
  { name: 'rules with a literal beginning', rules: ['a/**', 'z/**'], visible: ['a/app', 'a/b/c', 'z/app'] },
  // A rule that begins with a wildcard reaches everywhere.
  { name: 'a rule that begins with a wildcard', rules: ['*/public'], visible: ['d/public', 'e/public', 'y/public'] },
  // Forbidden names inside the range of the rule (c/), not matching it.
  { name: 'forbidden names inside the range of a rule', rules: ['c/*/x'], visible: ['c/q/x', 'c/zz/x'] },
];

beforeAll(() => {
  sync = openStore(path.join(dir, 'metadata.db'), { durability: 'normal' });
  const digest = `sha256:${'a'.repeat(64)}`;
  for (let i = 0; i < FORBIDDEN; i++) sync.linkBlob(forbiddenName(i), { digest, size: 1 });
  for (const { visible } of layouts) for (const name of visible) sync.linkBlob(name, { digest, size: 1 });
}, 300_000);

afterAll(() => {
  sync.close();
  rmSync(dir, { recursive: true, force: true });
});

describe.each(layouts)('the catalog of an anonymous client under $name', ({ rules, visible }) => {
  const access: AccessRules = { rules: [{ repositories: rules, users: ['anonymous'], actions: ['pull'] }] };
  const allowed = new Access(access);
  // The names of every layout are in the store; this layout's rules pick theirs.
  const everyVisible = layouts.flatMap((l) => l.visible).filter((name) => allowed.allows('', 'pull', name)).sort();
  let url: string;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const server = createRegistry({ store: counted(asyncStore(sync)), dataDir: dir, access });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () => closeRegistry(server, 2000);
  });
  afterAll(() => close());

  it('sees exactly the names it may pull', () => {
    expect(everyVisible).toEqual([...visible].sort());
  });

  /** Follows the Links from `start`, checking each page; returns the names listed. */
  async function walk(n: number, start: string | undefined): Promise<{ names: string[]; pages: number }> {
    const names: string[] = [];
    let next: string | undefined = `/v2/_catalog?n=${n}${start === undefined ? '' : `&last=${encodeURIComponent(start)}`}`;
    let pages = 0;
    while (next !== undefined) {
      expect(pages++).toBeLessThan(200);
      reads = [];
      const res = await fetch(`${url}${next}`);
      expect(res.status).toBe(200);
      const page = ((await res.json()) as { repositories: string[] }).repositories;
      expect(page.every((name) => allowed.allows('', 'pull', name))).toBe(true);
      names.push(...page);
      // The work of one page: a fixed number of reads, each of a bounded number of names.
      expect(reads.length).toBeLessThanOrEqual(CATALOG_READS);
      expect(reads.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(n + 1 + CATALOG_SLACK);
      const link = res.headers.get('link');
      if (link === null) break;
      const cursor = new URL(link.match(/^<([^>]+)>/)![1], url).searchParams.get('last')!;
      // The cursor is a name the caller may see, or names nothing.
      if (!allowed.allows('', 'pull', cursor)) expect(cursor).not.toMatch(FORBIDDEN_PIECE);
      expect(decodeURIComponent(link)).not.toMatch(FORBIDDEN_PIECE);
      next = link.match(/^<([^>]+)>/)![1];
    }
    return { names, pages };
  }

  it.each([
    [1, undefined],
    // The name right after `last` is forbidden, and 100 100 more follow it.
    [1, 'bz'],
    [2, 'c'],
    // A forbidden name as `last`: the caller may name one, and learns nothing more of the others.
    [1, forbiddenName(50_000)],
    [1000, 'a'],
  ])('pages of %i after %s: every cursor names nothing forbidden, every page does bounded work', async (n, start) => {
    const { names } = await walk(n, start);
    expect(names).toEqual(everyVisible.filter((name) => start === undefined || name > start));
  });

  it('refuses a cursor it did not give, with 400 NAME_INVALID', async () => {
    const res = await fetch(`${url}/v2/_catalog?n=1&last=${encodeURIComponent(`~${'A'.repeat(40)}`)}`);
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe('NAME_INVALID');
  });
});

describe('a cut-short page', () => {
  const access = new Access({ rules: [{ repositories: ['*/public'], users: ['bob', 'carol'], actions: ['pull'] }] });

  it('goes on from a cursor only for the caller it was given to', async () => {
    const store = asyncStore(sync);
    const first = await pullableCatalog(store, access, 'bob', 1, 'c');
    expect(first.repositories).toEqual([]);
    expect(first.next).toMatch(/^~[A-Za-z0-9_-]+$/);
    const again = await pullableCatalog(store, access, 'bob', 1, first.next);
    expect(again.next).not.toBe(first.next);
    await expect(pullableCatalog(store, access, 'carol', 1, first.next)).rejects.toMatchObject({ code: 'NAME_INVALID' });
  });

  it('that found names goes on after its last one, in the clear', async () => {
    const store = asyncStore(sync);
    const deep = new Access({ rules: [{ repositories: ['c/*/x'], users: ['bob'], actions: ['pull'] }] });
    // c/q/x, then 100 100 names under c/ that c/*/x does not match.
    expect(await pullableCatalog(store, deep, 'bob', 5, 'c')).toEqual({ repositories: ['c/q/x'], next: 'c/q/x' });
    const after = await pullableCatalog(store, deep, 'bob', 5, 'c/q/x');
    expect(after.repositories).toEqual([]);
    expect(after.next).toMatch(/^~/);
  });
});

describe('Access.prefixes', () => {
  const rules = (...repositories: string[]) => new Access({ admins: ['root'], rules: [{ repositories, users: ['bob'], actions: ['pull'] }] });

  it('gives the beginnings of the patterns that grant the action, none inside another', () => {
    expect(rules('acme/**', 'acme/app', 'b*', 'b/x/*').prefixes('bob', 'pull')).toEqual(['acme/', 'b']);
    expect(rules('acme/app', 'acme/app-*').prefixes('bob', 'pull')).toEqual(['acme/app']);
    expect(rules('acme/**', '*/public').prefixes('bob', 'pull')).toEqual(['']);
    expect(rules('acme/**').prefixes('bob', 'push')).toEqual([]);
    expect(rules('acme/**').prefixes('carol', 'pull')).toEqual([]);
    expect(rules('acme/**').prefixes('root', 'pull')).toEqual(['']);
  });
});
