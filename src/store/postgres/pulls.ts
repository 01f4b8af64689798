// A mirror's cache on PostgreSQL: when its repositories were last pulled
// (batches from any replica), and what a namespace's repositories link, for
// regmeta gc's eviction.

import { namespaceBounds } from '../grammar.js';
import { usageOf, type UsageRow } from '../usage.js';
import type { NamespaceRepository, Pull } from '../types.js';
import type { PgContext } from './context.js';

/** See Store.recordPulls. */
export async function recordPulls(cx: PgContext, pulls: readonly Pull[]): Promise<number> {
  if (pulls.length === 0) return 0;
  const names = pulls.map((p) => p.repo);
  const times = pulls.map((p) => p.at.getTime());
  return cx.write(async (tx) => {
    // One row per name (an UPDATE joined to two rows of one name would apply
    // either), and the rows locked in id order, so two replicas' batches
    // never lock each other's rows the other way round.
    const rows = await tx.sql<{ id: number }[]>`
      WITH pulled AS (
        SELECT name, max(at) AS at FROM unnest(${names}::text[], ${times}::bigint[]) AS p (name, at) GROUP BY name
      ), locked AS (
        SELECT r.id, pulled.at FROM repository r JOIN pulled ON pulled.name = r.name ORDER BY r.id FOR UPDATE OF r
      )
      UPDATE repository r SET pulled_at = GREATEST(r.pulled_at, locked.at)
      FROM locked WHERE r.id = locked.id
      RETURNING r.id`;
    return rows.length;
  });
}

/** See Store.namespaceUsage. */
export async function namespaceUsage(cx: PgContext, prefix: string): Promise<NamespaceRepository[]> {
  const { low, high } = namespaceBounds(prefix);
  return cx.read(async (sql) => {
    // One range on the name's index (COLLATE "C": byte order), each repository's links by their key.
    const rows = await sql<UsageRow[]>`
      SELECT r.name, r.created_at AS "createdAt", r.pulled_at AS "pulledAt", l.digest, b.size
      FROM repository r
      LEFT JOIN blob_link l ON l.repository_id = r.id
      LEFT JOIN blob b ON b.digest = l.digest
      WHERE r.name >= ${low} AND r.name < ${high}
      ORDER BY r.name, l.digest`;
    return usageOf(rows);
  });
}
