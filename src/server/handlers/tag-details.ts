// The tags of a repository with what each points at, beside the event log's
// API: GET /api/v0/repositories/<name>/tags, the store's tagDetails over
// HTTP. Its pages are keyset pages; the Link header names the next.

import type { TagQuery } from '../../store/index.js';
import { HttpError } from '../errors.js';
import { sendJson, type RequestContext } from '../http.js';

/** The query parameters that are the store's query; what it refuses is a 400 with the store's code. */
function tagQuery(url: URL): TagQuery {
  const params = url.searchParams;
  const text = (name: string) => {
    const value = params.get(name);
    return value === null || value === '' ? undefined : value;
  };
  const n = text('n');
  if (n !== undefined && !/^\d{1,9}$/.test(n)) throw new HttpError('PAGINATION_NUMBER_INVALID', 'n must be a positive integer');
  return {
    sort: text('sort') as TagQuery['sort'],
    order: text('order') as TagQuery['order'],
    prefix: text('prefix'),
    pattern: text('pattern'),
    n: n === undefined ? undefined : Number(n),
    last: text('last'),
  };
}

/**
 * GET /api/v0/repositories/<name>/tags?sort=&order=&prefix=&pattern=&n=&last= —
 * `{"tags":[…],"next":…}`: each tag's digest, media type, size, platforms
 * and times (see Store.tagDetails); a Link with rel="next" while there is
 * a next page. Needs pull in the repository.
 * @throws what Store.tagDetails throws for the query as given: NotFoundError
 * NAME_UNKNOWN; StoreError NAME_INVALID, ARGUMENT_INVALID (an unknown sort or
 * order, a bad pattern), TAG_INVALID (the prefix), PAGINATION_NUMBER_INVALID
 * (`n` not a number in range, a `last` that is no cursor), DATABASE_*.
 */
export async function listTagDetails(c: RequestContext, name: string): Promise<void> {
  const query = tagQuery(c.url);
  // Fields left undefined are not the store's business: it refuses unknown ones.
  for (const key of Object.keys(query) as (keyof TagQuery)[]) if (query[key] === undefined) delete query[key];
  const page = await c.registry.store.tagDetails(name, query);
  const headers: Record<string, string> = {};
  if (page.next !== undefined) {
    const next = new URLSearchParams(c.url.searchParams);
    next.set('last', page.next);
    headers.Link = `<${c.url.pathname}?${next}>; rel="next"`;
  }
  sendJson(c, 200, page, headers);
}
