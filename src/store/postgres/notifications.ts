// Webhook cursors on PostgreSQL: the same rules as notifications.ts, shared
// by every replica (seq is commit order here too, see context.ts). One
// replica at a time delivers to an endpoint: it holds a session-level
// advisory lock on the endpoint, on a connection it keeps for that, so the
// lock goes with the connection when the replica stops or dies and another
// replica's next claim takes it over.

import type { NotificationCursors } from '../contract.js';
import { StoreError } from '../errors.js';
import { isEndpoint } from '../arguments.js';
import { CURSOR_CHECKS, applyChecks } from '../checks.js';
import { toNotificationEvent, toNotificationStatus, type CursorRow, type TargetRow } from '../rows.js';
import { gapBefore } from '../maintenance.js';
import type { MissedEvents, NotificationEvent, NotificationStatus } from '../types.js';
import type { PgContext } from './context.js';
import { translatePgError } from './errors.js';

/** The first key of the delivery locks ('rgnt'); the second is the endpoint's hash. */
const DELIVERY_LOCK = 0x72676e74;

type Delivered = Pick<NotificationEvent, 'seq' | 'id' | 'publishedAt'>;

type Connection = Awaited<ReturnType<PgContext['sql']['reserve']>>;

/** A store's webhook cursors, shared by every replica; the checks of their arguments are checks.ts's, in front of each method. */
export class PgNotificationCursors implements NotificationCursors {
  // The connection that holds this process's delivery locks, reserved on the first claim.
  #holder: Promise<Connection> | undefined;

  constructor(private readonly cx: PgContext) {}

  async claim(endpoint: string): Promise<boolean> {
    const holder = (this.#holder ??= this.cx.sql.reserve());
    try {
      const connection = await holder;
      // Held already, or taken now if free; never stacked, so one unlock lets go.
      const [row] = await connection<{ held: boolean }[]>`
        SELECT CASE WHEN EXISTS (
          SELECT 1 FROM pg_locks
          WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted AND objsubid = 2
            AND classid = ${DELIVERY_LOCK}::int4::oid AND objid = hashtext(${endpoint})::oid
        ) THEN true ELSE pg_try_advisory_lock(${DELIVERY_LOCK}::int4, hashtext(${endpoint})) END AS held`;
      return row.held;
    } catch (error) {
      // A broken connection took its locks with it: the next claim starts on a new one.
      if (this.#holder === holder) this.#holder = undefined;
      void holder.then((connection) => connection.release()).catch(() => {});
      throw translatePgError(error, this.cx.location);
    }
  }

  async release(endpoint: string): Promise<void> {
    const holder = this.#holder;
    if (holder === undefined || !isEndpoint(endpoint)) return;
    try {
      const connection = await holder;
      await connection`SELECT pg_advisory_unlock(${DELIVERY_LOCK}::int4, hashtext(${endpoint}))`;
    } catch {
      // Nothing held, or the connection is gone and its locks with it.
    }
  }

  /** Lets go of every delivery lock and of the connection that held them: before the pool closes. Never throws. */
  async close(): Promise<void> {
    const holder = this.#holder;
    this.#holder = undefined;
    if (holder === undefined) return;
    try {
      const connection = await holder;
      await connection`SELECT pg_advisory_unlock_all()`.catch(() => {});
      connection.release();
    } catch {
      // The connection is gone, and its locks with it.
    }
  }

  async open(endpoint: string): Promise<void> {
    const now = Date.now();
    // At the head of the log as committed now; an existing cursor stays where it is.
    await this.cx.write((tx) => tx.sql`
      INSERT INTO notification_cursor (endpoint, seq, published_at, event_id, created_at)
      SELECT ${endpoint}::text, h.seq, e.published_at, e.id, ${now}::bigint
      FROM event_head h LEFT JOIN event e ON e.seq = h.seq
      ON CONFLICT (endpoint) DO NOTHING`);
  }

  async eventsAfter(endpoint: string, limit: number): Promise<NotificationEvent[]> {
    return this.cx.snapshot(async (sql) => {
      const [cursor] = await sql<{ seq: number }[]>`SELECT seq FROM notification_cursor WHERE endpoint = ${endpoint}`;
      if (cursor === undefined) throw new StoreError('ARGUMENT_INVALID', `no notification cursor for ${endpoint}`);
      const rows = await sql<TargetRow[]>`
        SELECT e.*, m.media_type AS target_media_type, coalesce(m.size, b.size) AS target_size
        FROM event e
        LEFT JOIN repository r ON r.name = e.repository
        LEFT JOIN manifest m ON e.object_type IN ('MANIFEST', 'TAG') AND m.repository_id = r.id AND m.digest = e.digest
        LEFT JOIN blob b ON e.object_type = 'BLOB' AND b.digest = e.digest
        WHERE e.seq > ${cursor.seq}
        ORDER BY e.seq
        LIMIT ${limit}`;
      return rows.map(toNotificationEvent);
    });
  }

  // From what the notifier holds, never the event read again: it may be pruned by now.
  async advance(endpoint: string, delivered: readonly Delivered[]): Promise<MissedEvents | undefined> {
    const first = delivered[0];
    const last = delivered[delivered.length - 1];
    const now = Date.now();
    return this.cx.write(async (tx) => {
      // The cursor locked, so that a skipPruned meanwhile waits and then finds it moved on.
      const [cursor] = await tx.sql<{ seq: number; horizon: number; head: number }[]>`
        SELECT c.seq, h.seq AS horizon, head.seq AS head
        FROM notification_cursor c, event_horizon h, event_head head
        WHERE c.endpoint = ${endpoint} FOR UPDATE OF c`;
      if (cursor === undefined) throw new StoreError('ARGUMENT_INVALID', `no notification cursor for ${endpoint}`);
      if (last.seq > cursor.head) throw new StoreError('ARGUMENT_INVALID', `no event at seq ${last.seq}: the log ends at ${cursor.head}`);
      const missed = gapBefore(cursor.seq, cursor.horizon, first.seq);
      if (missed !== undefined) {
        await tx.sql`
          UPDATE notification_cursor SET
            missed = missed + ${missed.count}, missed_from = ${missed.from}, missed_to = ${missed.to}, missed_at = ${missed.at!.getTime()}
          WHERE endpoint = ${endpoint}`;
      }
      // Only forward: an acknowledgement that arrives late never moves a cursor back, but counts as a success.
      if (cursor.seq < last.seq) {
        await tx.sql`
          UPDATE notification_cursor
          SET seq = ${last.seq}, published_at = ${last.publishedAt.getTime()}, event_id = ${last.id}, delivered_at = ${now}, failures = 0
          WHERE endpoint = ${endpoint}`;
      } else {
        await tx.sql`UPDATE notification_cursor SET delivered_at = ${now}, failures = 0 WHERE endpoint = ${endpoint}`;
      }
      return missed;
    });
  }

  async recordFailure(endpoint: string, error: string): Promise<void> {
    // PostgreSQL text cannot hold NUL; a message is for reading, so it goes.
    const message = String(error).replaceAll('\0', '').slice(0, 1000);
    const now = Date.now();
    await this.cx.write((tx) => tx.sql`
      UPDATE notification_cursor SET failures = failures + 1, last_error = ${message}, last_failure_at = ${now}
      WHERE endpoint = ${endpoint}`);
  }

  async remove(endpoint: string): Promise<boolean> {
    const removed = await this.cx.write((tx) => tx.sql`DELETE FROM notification_cursor WHERE endpoint = ${endpoint} RETURNING 1`);
    return removed.length > 0;
  }

  async status(): Promise<NotificationStatus[]> {
    const rows = await this.cx.read(async (sql) => {
      // A database older than schema 5, opened read-only, has no horizon: its status reads without one.
      const [{ horizon }] = await sql<{ horizon: boolean }[]>`SELECT to_regclass('event_horizon') IS NOT NULL AS horizon`;
      if (!horizon) {
        return sql<CursorRow[]>`
          SELECT c.*, (SELECT count(*) FROM event e WHERE e.seq > c.seq) AS backlog
          FROM notification_cursor c
          ORDER BY c.endpoint`;
      }
      return sql<CursorRow[]>`
        SELECT c.*, (SELECT count(*) FROM event e WHERE e.seq > c.seq) AS backlog, h.seq AS horizon
        FROM notification_cursor c LEFT JOIN event_horizon h ON true
        ORDER BY c.endpoint`;
    });
    return rows.map(toNotificationStatus);
  }

  async skipPruned(endpoint: string): Promise<MissedEvents | undefined> {
    // A read first: the notifier asks before each batch, and a gap is rare.
    const [seen] = await this.cx.read((sql) => sql<{ gap: boolean }[]>`
      SELECT c.seq < h.seq AS gap FROM notification_cursor c, event_horizon h WHERE c.endpoint = ${endpoint}`);
    if (seen === undefined) throw new StoreError('ARGUMENT_INVALID', `no notification cursor for ${endpoint}`);
    if (!seen.gap) return undefined;
    const now = Date.now();
    // The cursor locked, so that an advance meanwhile waits and then finds it moved on.
    const rows = await this.cx.write(async (tx) => {
      const found = await tx.sql<{ seq: number; horizon: number }[]>`
        SELECT c.seq, h.seq AS horizon FROM notification_cursor c, event_horizon h
        WHERE c.endpoint = ${endpoint} FOR UPDATE OF c`;
      if (found.length === 0) throw new StoreError('ARGUMENT_INVALID', `no notification cursor for ${endpoint}`);
      const [{ seq, horizon }] = found;
      if (seq >= horizon) return undefined;
      await tx.sql`
        UPDATE notification_cursor SET
          seq = ${horizon}, missed = missed + ${horizon - seq}, missed_from = ${seq + 1}, missed_to = ${horizon}, missed_at = ${now}
        WHERE endpoint = ${endpoint}`;
      return { seq, horizon };
    });
    if (rows === undefined) return undefined;
    return { count: rows.horizon - rows.seq, from: rows.seq + 1, to: rows.horizon, at: new Date(now) };
  }
}

applyChecks(PgNotificationCursors.prototype, CURSOR_CHECKS, 'reject');
