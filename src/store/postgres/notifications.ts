// Webhook cursors on PostgreSQL: the same rules as notifications.ts, shared
// by every replica (seq is commit order here too, see context.ts).

import type { AsyncNotificationCursors } from '../async.js';
import { StoreError } from '../errors.js';
import { checkBatchLimit, checkEndpoint, toNotificationEvent, toNotificationStatus, type CursorRow, type TargetRow } from '../notifications.js';
import type { NotificationEvent, NotificationStatus } from '../types.js';
import type { PgContext } from './context.js';

/** A store's webhook cursors: see NotificationCursors for what each method does and throws. */
export class PgNotificationCursors implements AsyncNotificationCursors {
  constructor(private readonly cx: PgContext) {}

  async open(endpoint: string): Promise<void> {
    const checked = checkEndpoint(endpoint);
    const now = Date.now();
    // At the head of the log as committed now; an existing cursor stays where it is.
    await this.cx.write((tx) => tx.sql`
      INSERT INTO notification_cursor (endpoint, seq, published_at, event_id, created_at)
      SELECT ${checked}::text, h.seq, e.published_at, e.id, ${now}::bigint
      FROM event_head h LEFT JOIN event e ON e.seq = h.seq
      ON CONFLICT (endpoint) DO NOTHING`);
  }

  async eventsAfter(endpoint: string, limit: number): Promise<NotificationEvent[]> {
    const checked = checkEndpoint(endpoint);
    checkBatchLimit(limit);
    return this.cx.snapshot(async (sql) => {
      const [cursor] = await sql<{ seq: number }[]>`SELECT seq FROM notification_cursor WHERE endpoint = ${checked}`;
      if (cursor === undefined) throw new StoreError('ARGUMENT_INVALID', `no notification cursor for ${checked}`);
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

  async advance(endpoint: string, eventId: string): Promise<void> {
    const checked = checkEndpoint(endpoint);
    const id = String(eventId);
    const now = Date.now();
    await this.cx.write(async (tx) => {
      // Only forward: an acknowledgement that arrives late never moves a cursor back, but counts as a success.
      const moved = await tx.sql`
        UPDATE notification_cursor c SET
          seq = greatest(c.seq, e.seq),
          published_at = CASE WHEN c.seq < e.seq THEN e.published_at ELSE c.published_at END,
          event_id = CASE WHEN c.seq < e.seq THEN e.id ELSE c.event_id END,
          delivered_at = ${now},
          failures = 0
        FROM event e
        WHERE e.id = ${id} AND c.endpoint = ${checked}
        RETURNING 1`;
      if (moved.length > 0) return;
      const [event] = await tx.sql`SELECT 1 FROM event WHERE id = ${id}`;
      if (event === undefined) throw new StoreError('ARGUMENT_INVALID', `no event ${id.slice(0, 40)}`);
    });
  }

  async recordFailure(endpoint: string, error: string): Promise<void> {
    const checked = checkEndpoint(endpoint);
    // PostgreSQL text cannot hold NUL; a message is for reading, so it goes.
    const message = String(error).replaceAll('\0', '').slice(0, 1000);
    const now = Date.now();
    await this.cx.write((tx) => tx.sql`
      UPDATE notification_cursor SET failures = failures + 1, last_error = ${message}, last_failure_at = ${now}
      WHERE endpoint = ${checked}`);
  }

  async remove(endpoint: string): Promise<boolean> {
    const checked = checkEndpoint(endpoint);
    const removed = await this.cx.write((tx) => tx.sql`DELETE FROM notification_cursor WHERE endpoint = ${checked} RETURNING 1`);
    return removed.length > 0;
  }

  async status(): Promise<NotificationStatus[]> {
    const rows = await this.cx.read((sql) => sql<CursorRow[]>`
      SELECT c.*, (SELECT count(*) FROM event e WHERE e.seq > c.seq) AS backlog
      FROM notification_cursor c
      ORDER BY c.endpoint`);
    return rows.map(toNotificationStatus);
  }
}
