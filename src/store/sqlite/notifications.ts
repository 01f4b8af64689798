// Webhook delivery's durable side: one cursor per endpoint into the event
// log, read after and moved forward only once the endpoint has acknowledged
// a batch, so that delivery is at-least-once and in commit order across
// restarts and crashes. The HTTP side lives in src/notify.

import type Database from 'better-sqlite3';
import { prepareAll } from './connection.js';
import type { StoreContext } from './context.js';
import { StoreError } from '../errors.js';
import { toEvent, type EventRow } from './events.js';
import { MAX_PAGE_SIZE } from '../limits.js';
import type { NotificationEvent, NotificationStatus } from '../types.js';

// Events after a cursor are read by seq alone: seq is AUTOINCREMENT under the
// write lock, so it is commit order, and published_at is clamped never to go
// below an earlier event's, so (published_at, seq), getEvents' keyset, sorts
// the same way. What a target needs beyond the event (a manifest's media type
// and size, a blob's size) is joined from the rows still there.
const NOTIFICATION_SQL = {
  createCursor: `
    INSERT INTO notification_cursor (endpoint, seq, published_at, event_id, created_at)
    SELECT :endpoint, coalesce(e.seq, 0), e.published_at, e.id, :now
    FROM (SELECT 1) LEFT JOIN event e ON e.seq = (SELECT max(seq) FROM event)
    WHERE true
    ON CONFLICT (endpoint) DO NOTHING`,
  cursorSeq: 'SELECT seq FROM notification_cursor WHERE endpoint = :endpoint',
  eventsAfter: `
    SELECT e.*, m.media_type AS target_media_type, coalesce(m.size, b.size) AS target_size
    FROM event e
    LEFT JOIN repository r ON r.name = e.repository
    LEFT JOIN manifest m ON e.object_type IN ('MANIFEST', 'TAG') AND m.repository_id = r.id AND m.digest = e.digest
    LEFT JOIN blob b ON e.object_type = 'BLOB' AND b.digest = e.digest
    WHERE e.seq > :seq
    ORDER BY e.seq
    LIMIT :limit`,
  eventById: 'SELECT seq, published_at, id FROM event WHERE id = :id',
  // "Only forward": an acknowledgement that arrives late (a batch sent twice)
  // never moves a cursor back.
  advance: `
    UPDATE notification_cursor
    SET seq = :seq, published_at = :publishedAt, event_id = :id, delivered_at = :now, failures = 0
    WHERE endpoint = :endpoint AND seq < :seq`,
  succeeded: 'UPDATE notification_cursor SET delivered_at = :now, failures = 0 WHERE endpoint = :endpoint',
  failed: `
    UPDATE notification_cursor
    SET failures = failures + 1, last_error = :error, last_failure_at = :now
    WHERE endpoint = :endpoint`,
  status: `
    SELECT c.*, (SELECT count(*) FROM event e WHERE e.seq > c.seq) AS backlog
    FROM notification_cursor c
    ORDER BY c.endpoint`,
  remove: 'DELETE FROM notification_cursor WHERE endpoint = :endpoint',
};

/** @internal */
export function prepareNotificationStatements(db: Database.Database): Record<keyof typeof NOTIFICATION_SQL, Database.Statement> {
  return prepareAll(db, NOTIFICATION_SQL, ['cursorSeq']);
}

export interface TargetRow extends EventRow {
  target_media_type: string | null;
  target_size: number | null;
}

export interface CursorRow {
  endpoint: string;
  seq: number;
  published_at: number | null;
  event_id: string | null;
  created_at: number;
  delivered_at: number | null;
  failures: number;
  last_error: string | null;
  last_failure_at: number | null;
  backlog: number;
}

/** A webhook endpoint as a cursor's key. @throws StoreError ARGUMENT_INVALID. */
export function checkEndpoint(endpoint: unknown): string {
  if (typeof endpoint === 'string' && endpoint.length >= 1 && endpoint.length <= 2048 && !endpoint.includes('\0')) return endpoint;
  throw new StoreError('ARGUMENT_INVALID', 'an endpoint must be a string of 1 to 2048 characters');
}

/** See MetadataStore.openNotificationCursor. */
export function openNotificationCursor(cx: StoreContext, endpoint: string): void {
  const params = { endpoint: checkEndpoint(endpoint), now: Date.now() };
  cx.write(() => cx.sql.notifications.createCursor.run(params));
}

/** See MetadataStore.notificationEvents. */
export function notificationEvents(cx: StoreContext, endpoint: string, limit: number): NotificationEvent[] {
  const checked = checkEndpoint(endpoint);
  checkBatchLimit(limit);
  const sql = cx.sql.notifications;
  return cx.snapshot(() => {
    const seq = sql.cursorSeq.get({ endpoint: checked }) as number | undefined;
    if (seq === undefined) throw new StoreError('ARGUMENT_INVALID', `no notification cursor for ${checked}`);
    return (sql.eventsAfter.all({ seq, limit }) as TargetRow[]).map(toNotificationEvent);
  });
}

/** See MetadataStore.advanceNotificationCursor. */
export function advanceNotificationCursor(cx: StoreContext, endpoint: string, eventId: string): void {
  const checked = checkEndpoint(endpoint);
  const sql = cx.sql.notifications;
  cx.write(() => {
    const event = sql.eventById.get({ id: eventId }) as { seq: number; published_at: number; id: string } | undefined;
    if (event === undefined) throw new StoreError('ARGUMENT_INVALID', `no event ${String(eventId).slice(0, 40)}`);
    const now = Date.now();
    const moved = sql.advance.run({ endpoint: checked, seq: event.seq, publishedAt: event.published_at, id: event.id, now });
    // Delivered again (at-least-once): not a step forward, but a success all the same.
    if (moved.changes === 0) sql.succeeded.run({ endpoint: checked, now });
  });
}

/** See MetadataStore.recordNotificationFailure. */
export function recordNotificationFailure(cx: StoreContext, endpoint: string, error: string): void {
  const params = { endpoint: checkEndpoint(endpoint), error: String(error).slice(0, 1000), now: Date.now() };
  cx.write(() => cx.sql.notifications.failed.run(params));
}

/** See MetadataStore.removeNotificationCursor. */
export function removeNotificationCursor(cx: StoreContext, endpoint: string): boolean {
  const params = { endpoint: checkEndpoint(endpoint) };
  return cx.write(() => cx.sql.notifications.remove.run(params).changes > 0);
}

/** The limit of a batch of notification events. @throws StoreError ARGUMENT_INVALID. */
export function checkBatchLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw new StoreError('ARGUMENT_INVALID', `limit must be an integer from 1 to ${MAX_PAGE_SIZE}`);
  }
}

const date = (ms: number | null) => (ms === null ? undefined : new Date(ms));

/** The one mapping from an event row with its target's columns to what a webhook delivers. */
export function toNotificationEvent(row: TargetRow): NotificationEvent {
  const event: NotificationEvent = toEvent(row);
  if (row.target_media_type !== null) event.mediaType = row.target_media_type;
  if (row.target_size !== null) event.size = row.target_size;
  return event;
}

/** The one mapping from a cursor row (with its backlog) to its status. */
export function toNotificationStatus(row: CursorRow): NotificationStatus {
  return {
    endpoint: row.endpoint,
    eventId: row.event_id ?? undefined,
    publishedAt: date(row.published_at),
    createdAt: new Date(row.created_at),
    backlog: row.backlog,
    failures: row.failures,
    lastError: row.last_error ?? undefined,
    lastFailureAt: date(row.last_failure_at),
    lastSuccessAt: date(row.delivered_at),
  };
}

/** See MetadataStore.notificationStatus. */
export function notificationStatus(cx: StoreContext): NotificationStatus[] {
  return cx.snapshot(() => (cx.sql.notifications.status.all() as CursorRow[]).map(toNotificationStatus));
}

/**
 * A store's webhook cursors (MetadataStore.notifications): what the notifier
 * of `regmeta serve --notify` reads and moves, and what `regmeta notify
 * status` and metrics read.
 */
export class SqliteNotificationCursors {
  readonly #cx: StoreContext;
  constructor(cx: StoreContext) {
    this.#cx = cx;
  }

  /**
   * Creates the cursor of `endpoint` when it has none, at the newest event
   * committed now: a new endpoint gets what happens from now on, not the
   * whole history. An existing cursor stays where it is.
   * @throws StoreError ARGUMENT_INVALID (not a string of 1 to 2048 characters), DATABASE_*, STORE_CLOSED.
   */
  open(endpoint: string): void {
    openNotificationCursor(this.#cx, endpoint);
  }

  /**
   * Up to `limit` events committed after the cursor of `endpoint`, in commit
   * order, each with its manifest's or blob's media type and size when still stored.
   * @throws StoreError ARGUMENT_INVALID (no such cursor, or `limit` not from 1
   * to the page limit), DATABASE_*, STORE_CLOSED.
   */
  eventsAfter(endpoint: string, limit: number): NotificationEvent[] {
    return notificationEvents(this.#cx, endpoint, limit);
  }

  /**
   * Records that `endpoint` acknowledged every event up to `eventId`: the
   * cursor moves there, in one transaction, and never backwards (a batch
   * acknowledged twice only counts as a success); failures go back to 0.
   * @throws StoreError ARGUMENT_INVALID (no such event or endpoint), DATABASE_*, STORE_CLOSED.
   */
  advance(endpoint: string, eventId: string): void {
    advanceNotificationCursor(this.#cx, endpoint, eventId);
  }

  /**
   * Records a failed delivery to `endpoint` (its message, cut to 1000
   * characters); the cursor stays.
   * @throws StoreError ARGUMENT_INVALID, DATABASE_*, STORE_CLOSED.
   */
  recordFailure(endpoint: string, error: string): void {
    recordNotificationFailure(this.#cx, endpoint, error);
  }

  /**
   * Forgets the cursor of `endpoint` (configured again, it starts anew at the newest event).
   * @returns whether there was one.
   * @throws StoreError ARGUMENT_INVALID, DATABASE_*, STORE_CLOSED.
   */
  remove(endpoint: string): boolean {
    return removeNotificationCursor(this.#cx, endpoint);
  }

  /**
   * Every cursor, by endpoint: position, backlog, failures, last error and success, in one snapshot.
   * @throws StoreError DATABASE_*, STORE_CLOSED.
   */
  status(): NotificationStatus[] {
    return notificationStatus(this.#cx);
  }
}
