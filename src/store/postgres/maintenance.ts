// Keeping a PostgreSQL store in shape: the event log pruned in short
// transactions with its horizon kept, and the leases of scheduled jobs, by
// the database's clock, which every replica shares.

import { pruneParams, type PruneOptions, type PruneResult } from '../maintenance.js';
import type { PgContext, TxSql } from './context.js';

interface HorizonRow {
  seq: number;
  published_at: number | null;
}

function result(pruned: number, horizon: HorizonRow): PruneResult {
  const answer: PruneResult = { pruned, horizon: horizon.seq };
  if (horizon.published_at !== null) answer.horizonAt = new Date(horizon.published_at);
  return answer;
}

// The oldest first, by event_by_time (published_at, seq): a call finds its
// rows without scanning what stays. published_at never decreases with seq, so
// what goes is a prefix of the log; LIMIT NULL is no limit.
function doomed(sql: TxSql, before: number, limit: number) {
  return sql`SELECT seq, published_at FROM event WHERE published_at < ${before} ORDER BY published_at, seq LIMIT ${limit < 0 ? null : limit}`;
}

/**
 * See Store.pruneEvents. Deleting events takes no lock on event_head, so
 * writers go on meanwhile; seqs come from event_head and never go back. Of
 * two prunes at once, the second deletes what the first left.
 */
export async function pruneEvents(cx: PgContext, options: PruneOptions): Promise<PruneResult> {
  const { before, limit, dryRun } = pruneParams(options);
  if (dryRun) {
    return cx.snapshot(async (sql) => {
      const [d] = await sql<{ n: number; seq: number | null; at: number | null }[]>`
        SELECT count(*)::int AS n, max(seq) AS seq, max(published_at) AS at FROM (${doomed(sql, before, limit)}) d`;
      const [h] = await sql<HorizonRow[]>`SELECT seq, published_at FROM event_horizon`;
      if (d.n === 0) return result(0, h);
      return result(d.n, { seq: Math.max(h.seq, d.seq!), published_at: Math.max(h.published_at ?? 0, d.at!) });
    });
  }
  return cx.write(async (tx) => {
    const [d] = await tx.sql<{ n: number }[]>`
      WITH gone AS (
        DELETE FROM event e USING (${doomed(tx.sql, before, limit)}) d WHERE e.seq = d.seq
        RETURNING e.seq, e.published_at
      ), top AS (
        SELECT count(*)::int AS n, max(seq) AS seq, max(published_at) AS at FROM gone
      ), raised AS (
        UPDATE event_horizon h SET
          seq = greatest(h.seq, top.seq),
          published_at = greatest(h.published_at, top.at),
          pruned_at = ${Date.now()}
        FROM top WHERE top.n > 0
        RETURNING 1
      )
      SELECT n FROM top`;
    const [h] = await tx.sql<HorizonRow[]>`SELECT seq, published_at FROM event_horizon`;
    return result(d.n, h);
  });
}

/**
 * See Store.leaseJob. Timed by the database's clock, the one the replicas
 * agree on. In the upsert's SET, job_lease.* are the old row's values.
 */
export async function leaseJob(cx: PgContext, name: string, holder: string, ttlMs: number): Promise<boolean> {
  const rows = await cx.write((tx) => tx.sql`
    INSERT INTO job_lease (name, holder, lease_until, taken_at)
    SELECT ${name}::text, ${holder}::text, now.ms + ${ttlMs}::bigint, now.ms FROM (SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS ms) now
    ON CONFLICT (name) DO UPDATE SET
      holder = excluded.holder,
      lease_until = excluded.lease_until,
      taken_at = CASE WHEN job_lease.holder = excluded.holder THEN job_lease.taken_at ELSE excluded.taken_at END
    WHERE job_lease.holder = excluded.holder OR job_lease.lease_until <= excluded.taken_at
    RETURNING 1`);
  return rows.length > 0;
}

/** See Store.releaseJob. */
export async function releaseJob(cx: PgContext, name: string, holder: string): Promise<boolean> {
  const rows = await cx.write((tx) => tx.sql`DELETE FROM job_lease WHERE name = ${name} AND holder = ${holder} RETURNING 1`);
  return rows.length > 0;
}
