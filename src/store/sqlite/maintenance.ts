// Keeping a SQLite store in shape: the event log pruned in short
// transactions with its horizon kept, and the leases of scheduled jobs.

import type Database from 'better-sqlite3';
import { prepareAll } from './connection.js';
import type { StoreContext } from './context.js';
import { pruneParams, type PruneOptions, type PruneResult } from '../maintenance.js';

// The oldest events first, by event_by_time (published_at, then the rowid:
// seq), so a call finds its rows without scanning what stays. published_at
// never decreases with seq, so what goes is a prefix of the log.
const DOOMED = 'SELECT seq, published_at FROM event WHERE published_at < :before ORDER BY published_at, seq LIMIT :limit';

const MAINTENANCE_SQL = {
  doomed: `SELECT count(*) AS n, max(seq) AS seq, max(published_at) AS at FROM (${DOOMED})`,
  prune: `DELETE FROM event WHERE seq IN (SELECT seq FROM (${DOOMED}))`,
  // AUTOINCREMENT keeps the highest seq in sqlite_sequence, so seqs stay
  // above the pruned ones; the horizon only ever moves forward.
  raiseHorizon: `
    UPDATE event_horizon
    SET seq = max(seq, :seq), published_at = max(coalesce(published_at, :at), :at), pruned_at = :now
    WHERE id = 1`,
  horizon: 'SELECT seq, published_at FROM event_horizon WHERE id = 1',
  // Taken when free, renewed by its holder, taken over once it ran out.
  // In the upsert's SET, job_lease.* are the old row's values.
  lease: `
    INSERT INTO job_lease (name, holder, lease_until, taken_at) VALUES (:name, :holder, :until, :now)
    ON CONFLICT (name) DO UPDATE SET
      holder = excluded.holder,
      lease_until = excluded.lease_until,
      taken_at = CASE WHEN job_lease.holder = excluded.holder THEN job_lease.taken_at ELSE excluded.taken_at END
    WHERE job_lease.holder = excluded.holder OR job_lease.lease_until <= excluded.taken_at`,
  release: 'DELETE FROM job_lease WHERE name = :name AND holder = :holder',
  // A webhook cursor below the horizon (notifications.ts's skipPruned and
  // advance), and the last seq handed out, which sqlite_sequence keeps.
  cursorGap: `
    SELECT c.seq, h.seq AS horizon, coalesce(s.seq, 0) AS head
    FROM notification_cursor c JOIN event_horizon h ON h.id = 1 LEFT JOIN sqlite_sequence s ON s.name = 'event'
    WHERE c.endpoint = :endpoint`,
  // Where the cursor was when read: a cursor that moved meanwhile is left as it is.
  skipGap: `
    UPDATE notification_cursor
    SET seq = :to, missed = missed + :count, missed_from = :from, missed_to = :to, missed_at = :at
    WHERE endpoint = :endpoint AND seq = :seq`,
};

/** @internal */
export function prepareMaintenanceStatements(db: Database.Database): Record<keyof typeof MAINTENANCE_SQL, Database.Statement> {
  return prepareAll(db, MAINTENANCE_SQL);
}

interface HorizonRow {
  seq: number;
  published_at: number | null;
}

function result(pruned: number, horizon: HorizonRow): PruneResult {
  const answer: PruneResult = { pruned, horizon: horizon.seq };
  if (horizon.published_at !== null) answer.horizonAt = new Date(horizon.published_at);
  return answer;
}

/** See Store.pruneEvents. */
export function pruneEvents(cx: StoreContext, options: PruneOptions): PruneResult {
  const { before, limit, dryRun } = pruneParams(options);
  const sql = cx.sql.maintenance;
  const run = () => {
    const doomed = sql.doomed.get({ before, limit }) as { n: number; seq: number | null; at: number | null };
    const horizon = sql.horizon.get() as HorizonRow;
    if (doomed.n === 0) return result(0, horizon);
    if (dryRun) return result(doomed.n, { seq: Math.max(horizon.seq, doomed.seq!), published_at: Math.max(horizon.published_at ?? 0, doomed.at!) });
    sql.prune.run({ before, limit });
    sql.raiseHorizon.run({ seq: doomed.seq, at: doomed.at, now: Date.now() });
    return result(doomed.n, sql.horizon.get() as HorizonRow);
  };
  return dryRun ? cx.snapshot(run) : cx.write(run);
}

/** See Store.leaseJob. */
export function leaseJob(cx: StoreContext, name: string, holder: string, ttlMs: number): boolean {
  const now = Date.now();
  return cx.write(() => cx.sql.maintenance.lease.run({ name, holder, until: now + ttlMs, now }).changes > 0);
}

/** See Store.releaseJob. */
export function releaseJob(cx: StoreContext, name: string, holder: string): boolean {
  return cx.write(() => cx.sql.maintenance.release.run({ name, holder }).changes > 0);
}
