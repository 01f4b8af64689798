// The rules of tagDetails, the same on every backend: what a query may be,
// its keyset cursor, the range of names a prefix (or a pattern's literal
// start) bounds, the pattern kept in code, and the mapping of the rows read.
// A backend reads rows in the query's order after a cursor, in batches, and
// keeps what `keep` keeps until the page is full.

import { StoreError } from './errors.js';
import { compileTagPattern } from './grammar.js';
import { MAX_PAGE_SIZE } from './limits.js';
import type { Platform, TagDetail, TagDetailsPage, TagQuery } from './types.js';

/** The default page of tagDetails. */
const DEFAULT_TAG_PAGE = 100;

/** The fields of a TagQuery: any other is refused, as a misspelt filter must not widen a page. */
const QUERY_FIELDS: ReadonlySet<string> = new Set<keyof TagQuery>(['sort', 'order', 'prefix', 'pattern', 'n', 'last']);
const SORTS: ReadonlySet<string> = new Set(['name', 'pushed', 'pulled']);
const ORDERS: ReadonlySet<string> = new Set(['asc', 'desc']);
const TAG_CHARACTERS = /^[A-Za-z0-9_.-]{0,128}$/;

/** The position of a row in its order: the time of its sort ('name' has none: 0) and its name. */
export interface TagKey {
  at: number;
  name: string;
}

/** A checked TagQuery, as the backends read it. */
export interface TagDetailsParams {
  sort: 'name' | 'pushed' | 'pulled';
  desc: boolean;
  /** The names read are low ≤ name < high: a prefix's range (the empty prefix's is every tag). */
  low: string;
  high: string;
  /** The pattern, kept in code; null when none. */
  pattern: RegExp | null;
  n: number;
  /** Where the page starts (exclusive): before every row in the query's order when no cursor was given. */
  after: TagKey;
}

/** A row of a tagDetails statement: the tag, its manifest, and its sort key. */
export interface TagDetailRow {
  tag: string;
  manifest_id: number;
  digest: string;
  media_type: string;
  created_at: number;
  updated_at: number;
  pushed_at: number;
  pulled_at: number | null;
  pull_count: number;
  /** The time the query sorts by (0 for 'name'). */
  sort_at: number;
  /** The payload of an index, for its platforms; null for anything else. */
  payload: Buffer | Uint8Array | null;
}

function argument(message: string): never {
  throw new StoreError('ARGUMENT_INVALID', message);
}

/** The names a prefix's range holds: low ≤ name < high (tags are ASCII below DEL, so the character after the prefix's last bounds it). */
function boundsOf(prefix: string): { low: string; high: string } {
  if (prefix === '') return { low: '', high: '\x7f' };
  return { low: prefix, high: prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1) };
}

/** The longest of two prefixes when one starts with the other; null when no name can start with both. */
function narrower(a: string, b: string): string | null {
  if (a.startsWith(b)) return a;
  if (b.startsWith(a)) return b;
  return null;
}

// The cursor: the sort and order it belongs to, and the key of the last row
// of its page. A keyset, so pages stay put while tags come and go.
function encodeCursor(sort: string, desc: boolean, key: TagKey): string {
  return Buffer.from(JSON.stringify([sort, desc ? 'desc' : 'asc', key.at, key.name])).toString('base64url');
}

function decodeCursor(last: unknown, sort: string, desc: boolean): TagKey {
  let value: unknown;
  try {
    value = typeof last === 'string' && last.length <= 512 ? JSON.parse(Buffer.from(last, 'base64url').toString()) : undefined;
  } catch {
    value = undefined;
  }
  if (!Array.isArray(value) || value.length !== 4) throw new StoreError('PAGINATION_NUMBER_INVALID', 'invalid page cursor (last)');
  const [cursorSort, order, at, name] = value as unknown[];
  if (cursorSort !== sort || order !== (desc ? 'desc' : 'asc')) {
    throw new StoreError('PAGINATION_NUMBER_INVALID', `the page cursor (last) is of another sort or order than ${sort} ${desc ? 'desc' : 'asc'}`);
  }
  if (!Number.isSafeInteger(at) || typeof name !== 'string' || !TAG_CHARACTERS.test(name)) {
    throw new StoreError('PAGINATION_NUMBER_INVALID', 'invalid page cursor (last)');
  }
  return { at: at as number, name };
}

/**
 * Checks a tagDetails query and reads what the backends go on with.
 * @throws StoreError ARGUMENT_INVALID (an unknown field, sort or order, a
 * pattern that is not one), TAG_INVALID (a prefix that is not tag
 * characters), PAGINATION_NUMBER_INVALID (n, last).
 */
export function tagDetailsParams(query: TagQuery | undefined): TagDetailsParams {
  const q = query ?? {};
  if (typeof q !== 'object' || q === null) argument('a tag query must be an object');
  for (const field of Object.keys(q)) {
    if (!QUERY_FIELDS.has(field)) argument(`unknown tag query field ${JSON.stringify(field.slice(0, 40))}`);
  }
  const sort = q.sort ?? 'name';
  if (!SORTS.has(sort)) argument('sort must be name, pushed or pulled');
  const order = q.order ?? 'asc';
  if (!ORDERS.has(order)) argument('order must be asc or desc');
  const n = q.n ?? DEFAULT_TAG_PAGE;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_PAGE_SIZE) {
    throw new StoreError('PAGINATION_NUMBER_INVALID', `n must be an integer from 1 to ${MAX_PAGE_SIZE}`);
  }
  const prefix = q.prefix ?? '';
  if (typeof prefix !== 'string' || !TAG_CHARACTERS.test(prefix)) {
    throw new StoreError('TAG_INVALID', 'a tag prefix is at most 128 tag characters (letters, digits, _ . -)');
  }
  let pattern: RegExp | null = null;
  let range: string | null = prefix;
  if (q.pattern !== undefined) {
    const compiled = typeof q.pattern === 'string' ? compileTagPattern(q.pattern) : 'not a string';
    if (typeof compiled === 'string') argument(`invalid tag pattern: ${compiled}`);
    pattern = compiled;
    // The pattern's literal start narrows the range read, as a prefix does.
    range = narrower(prefix, q.pattern.split(/[*?]/)[0]);
  }
  const desc = order === 'desc';
  // No name starts with both: an empty range.
  const { low, high } = range === null ? { low: '\x7f', high: '\x7f' } : boundsOf(range);
  const after = q.last === undefined ? { at: desc ? Number.MAX_SAFE_INTEGER : -1, name: desc ? '\x7f' : '' } : decodeCursor(q.last, sort, desc);
  return { sort: sort as TagDetailsParams['sort'], desc, low, high, pattern, n, after };
}

/** How many rows a backend reads in one statement: one more than the page asks, so that it knows whether there is a next. */
export function batchSize(params: TagDetailsParams): number {
  // A pattern keeps some of what is read: read more at once, up to the page limit.
  return params.pattern === null ? params.n + 1 : MAX_PAGE_SIZE;
}

/**
 * Keeps the rows of one batch that the pattern selects, appending them to
 * `kept`, and says where the next batch starts: undefined when this one was
 * the last (fewer rows than asked) or the page is full (n + 1 rows kept).
 */
export function keep(params: TagDetailsParams, rows: TagDetailRow[], asked: number, kept: TagDetailRow[]): TagKey | undefined {
  for (const row of rows) {
    if (params.pattern === null || params.pattern.test(row.tag)) kept.push(row);
    if (kept.length > params.n) return undefined;
  }
  if (rows.length < asked) return undefined;
  const last = rows[rows.length - 1];
  return { at: last.sort_at, name: last.tag };
}

/** The platforms an index's payload lists, copied field by field (what is not a string or list of strings is left out). */
function platformsOf(payload: Buffer | Uint8Array): Platform[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    return [];
  }
  const manifests = (parsed as { manifests?: unknown })?.manifests;
  if (!Array.isArray(manifests)) return [];
  const platforms: Platform[] = [];
  for (const entry of manifests) {
    const p = (entry as { platform?: Record<string, unknown> } | null)?.platform;
    if (typeof p !== 'object' || p === null || typeof p.architecture !== 'string' || typeof p.os !== 'string') continue;
    const platform: Platform = { architecture: p.architecture, os: p.os };
    if (typeof p.variant === 'string') platform.variant = p.variant;
    if (typeof p['os.version'] === 'string') platform['os.version'] = p['os.version'];
    const strings = (v: unknown) => Array.isArray(v) && v.every((s) => typeof s === 'string');
    if (strings(p['os.features'])) platform['os.features'] = p['os.features'] as string[];
    if (strings(p.features)) platform.features = p.features as string[];
    platforms.push(platform);
  }
  return platforms;
}

/**
 * The page of the rows kept (n + 1 of them when there is a next page), with
 * the sizes of their manifests (by manifest id).
 */
export function tagDetailsPage(params: TagDetailsParams, kept: TagDetailRow[], sizes: ReadonlyMap<number, number>): TagDetailsPage {
  const more = kept.length > params.n;
  const rows = more ? kept.slice(0, params.n) : kept;
  const tags = rows.map((row): TagDetail => {
    const detail: TagDetail = {
      tag: row.tag,
      digest: row.digest,
      mediaType: row.media_type,
      size: sizes.get(Number(row.manifest_id)) ?? 0,
      createdAt: new Date(Number(row.created_at)),
      updatedAt: new Date(Number(row.updated_at)),
      pushedAt: new Date(Number(row.pushed_at)),
      pullCount: Number(row.pull_count),
    };
    if (row.payload !== null) detail.platforms = platformsOf(row.payload);
    if (row.pulled_at !== null) detail.pulledAt = new Date(Number(row.pulled_at));
    return detail;
  });
  const page: TagDetailsPage = { tags };
  if (more) {
    const last = rows[rows.length - 1];
    page.next = encodeCursor(params.sort, params.desc, { at: Number(last.sort_at), name: last.tag });
  }
  return page;
}
