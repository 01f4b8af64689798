// The event log: every change's events written in the change's transaction,
// events appended by callers, and the getEvents query with its filters and
// its page cursor. Who may see which event is the caller's to decide.

import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { prepareAll } from './connection.js';
import type { StoreContext } from './context.js';
import { StoreError } from '../errors.js';
import { checkDigest, checkRepository, checkTag } from '../grammar.js';
import { MAX_PAGE_SIZE, checkText } from '../limits.js';
import type { Event, EventObjectType, EventPage, EventQuery, EventType, NewEvent } from '../types.js';

const EVENT_SQL = {
  // published_at never goes below the newest event's, so time order is
  // commit order even when the clock steps back.
  insertEvent: `
    INSERT INTO event (
      id,
      published_at,
      actor,
      type,
      object_type,
      object_id,
      repository,
      tag,
      digest,
      previous_digest
    ) VALUES (
      :id,
      max(:now, coalesce((SELECT max(published_at) FROM event), 0)),
      :actor,
      :type,
      :objectType,
      :objectId,
      :repository,
      :tag,
      :digest,
      :previousDigest
    )
    RETURNING *`,
};

/** @internal */
export function prepareEventStatements(db: Database.Database): Record<keyof typeof EVENT_SQL, Database.Statement> & { queries: EventQueries } {
  return { ...prepareAll(db, EVENT_SQL), queries: new EventQueries(db) };
}

export interface EventRow {
  seq: number;
  id: string;
  published_at: number;
  actor: string;
  type: EventType;
  object_type: EventObjectType;
  object_id: string;
  repository: string | null;
  tag: string | null;
  digest: string | null;
  previous_digest: string | null;
}

/** The types of event. */
export const EVENT_TYPES: ReadonlySet<string> = new Set<EventType>(['CREATE', 'UPDATE', 'DELETE']);
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

/** The one mapping from an event row to an Event. */
export function toEvent(row: EventRow): Event {
  const event: Event = {
    id: row.id,
    publishedAt: new Date(row.published_at),
    actor: row.actor,
    type: row.type,
    object: { type: row.object_type, id: row.object_id },
  };
  if (row.repository !== null) event.repository = row.repository;
  if (row.tag !== null) event.tag = row.tag;
  if (row.digest !== null) event.digest = row.digest;
  if (row.previous_digest !== null) event.previousDigest = row.previous_digest;
  return event;
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
  };
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
export interface EventFilter {
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
 * Checks a query's filters.
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
export function matchesFilter(row: EventRow, filter: EventFilter): boolean {
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

/**
 * @internal The getEvents query: a statement per combination of filters, built from
 * fixed fragments (never from values) and prepared on first use.
 */
export class EventQueries {
  readonly #statements = new Map<string, Database.Statement>();
  constructor(private readonly db: Database.Database) {}

  /**
   * A page of the events the query's filters select, newest first.
   * @throws StoreError EVENT_INVALID, NAME_INVALID, PAGINATION_NUMBER_INVALID.
   */
  page(query: EventQuery): EventPage {
    const params = eventPageParams(query);
    return eventPage(this.#statement(params).all(params) as EventRow[], params.limit - 1);
  }

  #statement(params: EventPageParams): Database.Statement {
    const where: string[] = [];
    if (params.actor !== null) where.push('actor = :actor');
    if (params.type !== null) where.push('type = :type');
    if (params.objectType !== null) where.push('object_type = :objectType');
    if (params.repository !== null) where.push('repository = :repository');
    if (params.before !== null) where.push('published_at < :before');
    if (params.after !== null) where.push('published_at >= :after');
    if (params.cursorAt !== null) {
      where.push('(published_at < :cursorAt OR (published_at = :cursorAt AND seq < :cursorSeq))');
    }
    const key = where.join(' AND ');
    let statement = this.#statements.get(key);
    if (!statement) {
      statement = this.db.prepare(`
        SELECT *
        FROM event
        ${where.length ? `WHERE ${key}` : ''}
        ORDER BY published_at DESC, seq DESC
        LIMIT :limit`);
      this.#statements.set(key, statement);
    }
    return statement;
  }
}

// --- inside a transaction -----------------------------------------------------

/** The fields of an event beyond its type and object. */
export interface EventFields {
  repository?: string;
  tag?: string;
  digest?: string;
  previousDigest?: string;
}

/** Writes an event of the change the current transaction makes; the arguments are already checked. */
export function recordEvent(
  cx: StoreContext,
  actor: string,
  now: number,
  type: EventType,
  objectType: EventObjectType,
  objectId: string,
  fields: EventFields,
): void {
  cx.sql.events.insertEvent.run({
    id: eventId(now),
    now,
    actor,
    type,
    objectType,
    objectId,
    repository: fields.repository ?? null,
    tag: fields.tag ?? null,
    digest: fields.digest ?? null,
    previousDigest: fields.previousDigest ?? null,
  });
}

// --- the store's methods ------------------------------------------------------

/** See MetadataStore.createEvent. */
export function createEvent(cx: StoreContext, event: NewEvent): Event {
  const params = eventParams(event);
  return cx.write(() => toEvent(cx.sql.events.insertEvent.get({ ...params, id: eventId(), now: Date.now() }) as EventRow));
}

/** See MetadataStore.getEvents. */
export function getEvents(cx: StoreContext, query: EventQuery): EventPage {
  return cx.read(() => cx.sql.events.queries.page(query));
}
