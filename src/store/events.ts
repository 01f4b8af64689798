// The event log's rules, the same on every backend: what an event and a
// query must be, the page cursor, event ids, and
// the delivery of a committed event to the subscribers that select it.

import { randomUUID } from 'node:crypto';
import { StoreError } from './errors.js';
import { checkDigest, checkRepository, checkTag } from './grammar.js';
import { MAX_PAGE_SIZE, checkText } from './limits.js';
import { toEvent, type EventRow } from './rows.js';
import type { Event, EventObjectType, EventPage, EventQuery, EventType, NewEvent } from './types.js';

/** The types of event. */
export const EVENT_TYPES: ReadonlySet<string> = new Set<EventType>(['CREATE', 'UPDATE', 'DELETE', 'PULL']);
/** The types of object an event is about. */
export const OBJECT_TYPES: ReadonlySet<string> = new Set<EventObjectType>(['REPOSITORY', 'TAG', 'MANIFEST', 'BLOB']);

/**
 * A new event id: a UUIDv7 (RFC 9562), the current millisecond in its first
 * 48 bits and the randomness of a v4 UUID after them, so that ids sort by
 * time and the index on them appends instead of splitting random pages.
 */
export function eventId(now = Date.now()): string {
  const time = now.toString(16).padStart(12, '0');
  // randomUUID() is 'xxxxxxxx-xxxx-4xxx-…': keep from the version's next digit on.
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${randomUUID().slice(15)}`;
}

function invalid(message: string): never {
  throw new StoreError('EVENT_INVALID', message);
}

/** The statement parameters of an event, checked. @throws StoreError EVENT_INVALID, NAME_INVALID, TAG_INVALID, DIGEST_INVALID. */
export function eventParams(event: NewEvent) {
  if (typeof event !== 'object' || event === null) invalid('an event must be an object');
  if (!EVENT_TYPES.has(event.type)) invalid(`invalid event type ${JSON.stringify(String(event.type).slice(0, 40))}`);
  const object = event.object;
  if (typeof object !== 'object' || object === null) invalid('an event needs an object');
  if (!OBJECT_TYPES.has(object.type)) invalid(`invalid object type ${JSON.stringify(String(object.type).slice(0, 40))}`);
  const objectId = checkText(object.id, 'object id');
  if (!objectId) invalid('an event object needs an id');
  return {
    actor: checkText(event.actor, 'actor') ?? '',
    type: event.type,
    objectType: object.type,
    objectId,
    repository: event.repository === undefined ? null : checkRepository(event.repository),
    tag: event.tag === undefined ? null : checkTag(event.tag),
    digest: event.digest === undefined ? null : checkDigest(event.digest),
    previousDigest: event.previousDigest === undefined ? null : checkDigest(event.previousDigest),
    count: event.count === undefined ? null : checkCount(event.count),
    reason: checkText(event.reason, 'reason'),
  };
}

function checkCount(count: unknown): number {
  if (!Number.isSafeInteger(count) || (count as number) < 1) invalid('an event count must be a positive integer');
  return count as number;
}

// The cursor is the (published_at, seq) of the last event of a page: a keyset,
// so pages stay put while new events arrive, with no OFFSET to skip rows.
function encodeCursor(row: EventRow): string {
  return Buffer.from(`${row.published_at}.${row.seq}`).toString('base64url');
}

function decodeCursor(page: unknown): { at: number; seq: number } {
  const match = typeof page === 'string' ? /^(\d{1,15})\.(\d{1,15})$/.exec(Buffer.from(page, 'base64url').toString()) : null;
  if (!match) throw new StoreError('PAGINATION_NUMBER_INVALID', 'invalid page token');
  return { at: Number(match[1]), seq: Number(match[2]) };
}

function timeBound(value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) invalid(`${field} must be a valid Date`);
  return value.getTime();
}

/** What a query selects: null is "any". */
interface EventFilter {
  actor: string | null;
  type: EventType | null;
  objectType: EventObjectType | null;
  repository: string | null;
  before: number | null;
  after: number | null;
}

/** The fields of an EventQuery: any other is refused, as a misspelt filter must not widen what a caller sees. */
const QUERY_FIELDS: ReadonlySet<string> = new Set<keyof EventQuery>([
  'actor',
  'type',
  'objectType',
  'repository',
  'publishedBefore',
  'publishedAfter',
  'perPage',
  'page',
]);

/**
 * Checks a query's filters. They do not authorize: who may read which
 * events is the caller's rule (the registry's access rules).
 * @throws StoreError EVENT_INVALID (a field that is not a filter, a bad type or time), NAME_INVALID.
 */
export function eventFilter(query: EventQuery): EventFilter {
  if (typeof query !== 'object' || query === null) invalid('an event query must be an object');
  for (const field of Object.keys(query)) {
    if (!QUERY_FIELDS.has(field)) invalid(`unknown event query field ${JSON.stringify(field.slice(0, 40))}`);
  }
  if (query.type !== undefined && !EVENT_TYPES.has(query.type)) invalid('invalid event type filter');
  if (query.objectType !== undefined && !OBJECT_TYPES.has(query.objectType)) invalid('invalid object type filter');
  return {
    actor: checkText(query.actor, 'actor'),
    type: query.type ?? null,
    objectType: query.objectType ?? null,
    repository: query.repository === undefined ? null : checkRepository(query.repository),
    before: timeBound(query.publishedBefore, 'publishedBefore') ?? null,
    after: timeBound(query.publishedAfter, 'publishedAfter') ?? null,
  };
}

/** True when `row` is one `filter` selects: the same rule as the SQL of EventQueries, for live delivery. */
function matchesFilter(row: EventRow, filter: EventFilter): boolean {
  return (
    (filter.actor === null || row.actor === filter.actor) &&
    (filter.type === null || row.type === filter.type) &&
    (filter.objectType === null || row.object_type === filter.objectType) &&
    (filter.repository === null || row.repository === filter.repository) &&
    (filter.before === null || row.published_at < filter.before) &&
    (filter.after === null || row.published_at >= filter.after)
  );
}

/** What a getEvents query selects, checked, with its page cursor and the limit of its statement (perPage + 1). */
export interface EventPageParams extends EventFilter {
  cursorAt: number | null;
  cursorSeq: number | null;
  limit: number;
}

/**
 * Checks a getEvents query (see eventFilter).
 * @throws StoreError EVENT_INVALID, NAME_INVALID, PAGINATION_NUMBER_INVALID.
 */
export function eventPageParams(query: EventQuery): EventPageParams {
  const filter = eventFilter(query);
  const perPage = query.perPage ?? 100;
  if (!Number.isSafeInteger(perPage) || perPage < 1 || perPage > MAX_PAGE_SIZE) {
    throw new StoreError('PAGINATION_NUMBER_INVALID', `perPage must be an integer from 1 to ${MAX_PAGE_SIZE}`);
  }
  const params: EventPageParams = { ...filter, cursorAt: null, cursorSeq: null, limit: perPage + 1 };
  if (query.page !== undefined) {
    const cursor = decodeCursor(query.page);
    params.cursorAt = cursor.at;
    params.cursorSeq = cursor.seq;
  }
  return params;
}

/** A page of `perPage` events from the rows of its statement (perPage + 1 of them when there is a next page). */
export function eventPage(rows: EventRow[], perPage: number): EventPage {
  const more = rows.length > perPage;
  if (more) rows.pop();
  const page: EventPage = { events: rows.map(toEvent) };
  if (more) page.next = encodeCursor(rows[rows.length - 1]);
  return page;
}

/** The fields of an event beyond its type and object. */
export interface EventFields {
  repository?: string;
  tag?: string;
  digest?: string;
  previousDigest?: string;
  count?: number;
  reason?: string;
}

/** One subscribe() call: its callback, its filter, and where its events start. */
export interface Subscriber {
  fn: (event: Event) => void;
  onError?: (error: unknown) => void;
  filter?: EventFilter;
  /** Events up to this seq were committed before subscribe() and are not this subscriber's. */
  after: number;
}

/**
 * Calls each subscriber that selects it with the event of `row`: those that
 * subscribed before it committed and whose filter matches. An exception from
 * a callback goes to its onError and stops nothing.
 */
export function deliverEvent(subscribers: Iterable<Subscriber>, row: EventRow): void {
  const event = toEvent(row);
  for (const subscriber of subscribers) {
    if (row.seq <= subscriber.after || (subscriber.filter && !matchesFilter(row, subscriber.filter))) continue;
    try {
      subscriber.fn(event);
    } catch (error) {
      try {
        (subscriber.onError ?? console.error)(error);
      } catch {
        // An error handler that throws must not stop delivery to the others.
      }
    }
  }
}
