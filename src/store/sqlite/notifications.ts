// Webhook delivery's durable side: one cursor per endpoint into the event
// log, read after and moved forward only once the endpoint has acknowledged
// a batch, so that delivery is at-least-once and in commit order across
// restarts and crashes. The HTTP side lives in src/notify.

import type Database from 'better-sqlite3';
import { prepareAll } from './connection.js';
import type { StoreContext } from './context.js';
import { CURSOR_CHECKS, applyChecks } from '../checks.js';
import type { NotificationCursors, Synchronous } from '../contract.js';
import { StoreError } from '../errors.js';
import { toNotificationEvent, toNotificationStatus, type CursorRow, type TargetRow } from '../rows.js';
import { gapBefore } from '../maintenance.js';
import type { MissedEvents, NotificationEvent, NotificationStatus } from '../types.js';

type Delivered = Pick<NotificationEvent, 'seq' | 'id' | 'publishedAt'>;

// Events after a cursor are read by seq alone: seq is AUTOINCREMENT under the
// write lock, so it is commit order, and published_at is clamped never to go
// below an earlier event's, so (published_at, seq), getEvents' keyset, sorts
// the same way. What a target needs beyond the event (a manifest's media type
// and size, a blob's size) is joined from the rows still there.
const NOTIFICATION_SQL = {
  // At the last seq handed out, which sqlite_sequence keeps even when that
  // event was pruned: a new cursor is never below the pruned horizon.
  createCursor: `
    INSERT INTO notification_cursor (endpoint, seq, published_at, event_id, created_at)
    SELECT :endpoint, coalesce(s.seq, 0), e.published_at, e.id, :now
    FROM (SELECT 1) LEFT JOIN sqlite_sequence s ON s.name = 'event' LEFT JOIN event e ON e.seq = s.seq
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
    SELECT c.*, (SELECT count(*) FROM event e WHERE e.seq > c.seq) AS backlog, h.seq AS horizon
    FROM notification_cursor c LEFT JOIN event_horizon h ON h.id = 1
    ORDER BY c.endpoint`,
  remove: 'DELETE FROM notification_cursor WHERE endpoint = :endpoint',
};

// A file older than version 7 has no horizon: opened read-only, its status reads without one.
const STATUS_BEFORE_7 = `
    SELECT c.*, (SELECT count(*) FROM event e WHERE e.seq > c.seq) AS backlog
    FROM notification_cursor c
    ORDER BY c.endpoint`;

/** @internal */
export function prepareNotificationStatements(db: Database.Database): Record<keyof typeof NOTIFICATION_SQL, Database.Statement> {
  const version = db.pragma('user_version', { simple: true }) as number;
  return prepareAll(db, version < 7 ? { ...NOTIFICATION_SQL, status: STATUS_BEFORE_7 } : NOTIFICATION_SQL, ['cursorSeq']);
}

/**
 * A store's webhook cursors (MetadataStore.notifications): what the notifier
 * of `regmeta serve --notify` reads and moves, and what `regmeta notify
 * status` and metrics read. The checks of their arguments are checks.ts's,
 * in front of each method.
 */
export class SqliteNotificationCursors implements Synchronous<NotificationCursors> {
  readonly #cx: StoreContext;
  constructor(cx: StoreContext) {
    this.#cx = cx;
  }

  open(endpoint: string): void {
    const params = { endpoint, now: Date.now() };
    this.#cx.write(() => this.#sql.createCursor.run(params));
  }

  eventsAfter(endpoint: string, limit: number): NotificationEvent[] {
    const sql = this.#sql;
    return this.#cx.snapshot(() => {
      const seq = sql.cursorSeq.get({ endpoint }) as number | undefined;
      if (seq === undefined) throw new StoreError('ARGUMENT_INVALID', `no notification cursor for ${endpoint}`);
      return (sql.eventsAfter.all({ seq, limit }) as TargetRow[]).map(toNotificationEvent);
    });
  }

  // A read first: the notifier asks before each batch, and a gap is rare, so
  // the write lock is taken only when there is one (and the gap read again under it).
  skipPruned(endpoint: string): MissedEvents | undefined {
    const sql = this.#cx.sql.maintenance;
    const gap = () => {
      const row = sql.cursorGap.get({ endpoint }) as { seq: number; horizon: number } | undefined;
      if (row === undefined) throw new StoreError('ARGUMENT_INVALID', `no notification cursor for ${endpoint}`);
      return row.seq < row.horizon ? row : undefined;
    };
    if (this.#cx.read(gap) === undefined) return undefined;
    return this.#cx.write(() => {
      const row = gap();
      if (row === undefined) return undefined;
      const missed = { count: row.horizon - row.seq, from: row.seq + 1, to: row.horizon, at: new Date() };
      sql.skipGap.run({ endpoint, seq: row.seq, ...missed, at: missed.at.getTime() });
      return missed;
    });
  }

  // From what the notifier holds, never the event read again: it may be pruned by now.
  advance(endpoint: string, delivered: readonly Delivered[]): MissedEvents | undefined {
    const first = delivered[0];
    const last = delivered[delivered.length - 1];
    return this.#cx.write(() => {
      const cursor = this.#cx.sql.maintenance.cursorGap.get({ endpoint }) as { seq: number; horizon: number; head: number } | undefined;
      if (cursor === undefined) throw new StoreError('ARGUMENT_INVALID', `no notification cursor for ${endpoint}`);
      if (last.seq > cursor.head) throw new StoreError('ARGUMENT_INVALID', `no event at seq ${last.seq}: the log ends at ${cursor.head}`);
      const missed = gapBefore(cursor.seq, cursor.horizon, first.seq);
      if (missed !== undefined) this.#cx.sql.maintenance.skipGap.run({ endpoint, seq: cursor.seq, ...missed, at: missed.at!.getTime() });
      const now = Date.now();
      const moved = this.#sql.advance.run({ endpoint, seq: last.seq, publishedAt: last.publishedAt.getTime(), id: last.id, now });
      // Delivered again (at-least-once): not a step forward, but a success all the same.
      if (moved.changes === 0) this.#sql.succeeded.run({ endpoint, now });
      return missed;
    });
  }

  recordFailure(endpoint: string, error: string): void {
    const params = { endpoint, error: String(error).slice(0, 1000), now: Date.now() };
    this.#cx.write(() => this.#sql.failed.run(params));
  }

  remove(endpoint: string): boolean {
    return this.#cx.write(() => this.#sql.remove.run({ endpoint }).changes > 0);
  }

  status(): NotificationStatus[] {
    return this.#cx.snapshot(() => (this.#sql.status.all() as CursorRow[]).map(toNotificationStatus));
  }

  // One server serves a SQLite file: it alone delivers, and holds no lock to let go of.
  claim(_endpoint: string): boolean {
    return true;
  }

  release(_endpoint: string): void {}

  get #sql() {
    return this.#cx.sql.notifications;
  }
}

applyChecks(SqliteNotificationCursors.prototype, CURSOR_CHECKS, 'throw');
