// The sort of tagDetails by pull time, checked the same on each backend
// with the pull columns written directly (what recording pulls by tag
// writes): never-pulled tags first (as pulled at 0), ties broken by name,
// pages that cut through ties.

import { expect } from 'vitest';
import type { Store, TagQuery } from 'regmeta';
import { ociManifest, putBuiltAsync } from './fixtures.js';

/** Sets a tag's last pull and count, as the backend's own SQL. */
export type SetPull = (repo: string, tag: string, at: number, count: number) => Promise<void>;

/** Seeds acme/app with tags a–e, pulls some of them with `setPull`, and checks every order and page. */
export async function checkPulledSort(store: Store, setPull: SetPull): Promise<void> {
  const m = await putBuiltAsync(store, 'acme/app', ociManifest());
  for (const tag of ['e', 'd', 'c', 'b', 'a']) await store.putTag('acme/app', tag, { digest: m.digest });
  await setPull('acme/app', 'c', 3000, 5);
  await setPull('acme/app', 'a', 1000, 1);
  await setPull('acme/app', 'e', 3000, 2);
  const walk = async (query: TagQuery) => {
    const tags: string[] = [];
    let last: string | undefined;
    do {
      const page = await store.tagDetails('acme/app', last === undefined ? query : { ...query, last });
      tags.push(...page.tags.map((t) => t.tag));
      last = page.next;
    } while (last !== undefined);
    return tags;
  };
  const asc = ['b', 'd', 'a', 'c', 'e'];
  for (const n of [1, 2, 100]) {
    expect(await walk({ sort: 'pulled', n })).toEqual(asc);
    expect(await walk({ sort: 'pulled', order: 'desc', n })).toEqual([...asc].reverse());
  }
  expect(await walk({ sort: 'pulled', pattern: '?', prefix: 'c' })).toEqual(['c']);
  const { tags } = await store.tagDetails('acme/app', { sort: 'pulled', order: 'desc', n: 2 });
  expect(tags.map((t) => [t.tag, t.pulledAt?.getTime(), t.pullCount])).toEqual([
    ['e', 3000, 2],
    ['c', 3000, 5],
  ]);
  const [never] = (await store.tagDetails('acme/app', { sort: 'pulled', n: 1 })).tags;
  expect(never.pulledAt).toBeUndefined();
  expect(never.pullCount).toBe(0);
}
