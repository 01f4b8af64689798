// Storage sizes on PostgreSQL: kept by the schema's triggers
// (schema.postgres.sql, which also gives the lock order), read here by
// usage() and the quota check of a link, and compared with a scan of the
// links by check().

import { namespaceOf } from '../grammar.js';
import { enforceQuota } from '../quota.js';
import { mismatchProblems, usageFrom, type KeptUsage, type SizeMismatches } from '../sizes.js';
import type { CheckProblem, Usage, UsageOptions } from '../types.js';
import type { PgContext, Sql, TxSql, WriteTx } from './context.js';

// --- inside a transaction -----------------------------------------------------

/**
 * Refuses, without a lock, a link of blob `digest` (`size` bytes; undefined:
 * a blob not yet known) into `repo` that the quota of its namespace (`limit`)
 * cannot take: the check before a file is placed, which refuseOverQuota
 * makes exact once the namespace is locked.
 * @throws StoreError DENIED.
 */
export async function precheckQuota(sql: Sql | TxSql, repo: string, limit: number, size: number, digest?: string): Promise<void> {
  const namespace = namespaceOf(repo);
  const [row] = await sql<{ size: string | null; has: boolean }[]>`
    SELECT (SELECT size FROM namespace WHERE name = ${namespace}) AS size,
      EXISTS (SELECT 1 FROM namespace_blob WHERE namespace = ${namespace} AND digest = ${digest ?? null}) AS has`;
  enforceQuota(namespace, limit, Number(row.size ?? 0), size, row.has);
}

/**
 * Refuses a link of blob `digest` (`size` bytes) into `repo` that would take
 * its namespace over its quota; sends nothing when no quota applies. The
 * caller has locked the repository's row (lockRepository): the lock order
 * is repository, then namespace, as in deleteRepository and the triggers.
 * The namespace's row is created if need be and locked until the commit, so
 * that the links of one namespace with a quota pass this check one at a
 * time, each seeing what the one before it committed.
 * @throws StoreError DENIED.
 */
export async function refuseOverQuota(cx: PgContext, tx: WriteTx, repo: string, digest: string, size: number): Promise<void> {
  const namespace = namespaceOf(repo);
  const limit = cx.policy.quotas.get(namespace);
  if (limit === undefined) return;
  // Three statements pipelined; the last two after the lock, each its own snapshot: what the previous holder committed.
  const [, [row], [has]] = await Promise.all([
    tx.sql`INSERT INTO namespace (name) VALUES (${namespace}) ON CONFLICT (name) DO NOTHING`.execute(),
    tx.sql<{ size: string }[]>`SELECT size FROM namespace WHERE name = ${namespace} FOR UPDATE`.execute(),
    tx.sql`SELECT 1 FROM namespace_blob WHERE namespace = ${namespace} AND digest = ${digest}`.execute(),
  ]);
  enforceQuota(namespace, limit, Number(row.size), size, has !== undefined);
}

// --- check ----------------------------------------------------------------------

/** The kept sizes against a count of the links: a 'size' problem for each that disagrees. None on a database older than the kept sizes. */
export async function sizeProblems(sql: TxSql): Promise<CheckProblem[]> {
  const [{ kept }] = await sql<{ kept: boolean }[]>`SELECT to_regclass('registry_usage') IS NOT NULL AS kept`;
  if (!kept) return [];
  const registry = await sql<SizeMismatches['registry']>`
    SELECT u.blobs AS "keptBlobs", u.size AS kept, s.blobs, s.size AS counted
    FROM registry_usage u, (SELECT count(*) AS blobs, coalesce(sum(size), 0) AS size FROM blob) s
    WHERE u.blobs <> s.blobs OR u.size <> s.size`;
  const namespaces = await sql<SizeMismatches['namespaces']>`
    WITH counted AS (
      SELECT namespace, sum(size) AS size
      FROM (SELECT DISTINCT split_part(r.name, '/', 1) AS namespace, b.digest, b.size
            FROM blob_link l JOIN repository r ON r.id = l.repository_id JOIN blob b ON b.digest = l.digest) d
      GROUP BY namespace
    ), repositories AS (
      SELECT split_part(name, '/', 1) AS namespace, count(*) AS n FROM repository GROUP BY 1
    ), names AS (
      SELECT name AS namespace FROM namespace UNION SELECT namespace FROM repositories
    )
    SELECT names.namespace, coalesce(n.size, 0) AS kept, coalesce(c.size, 0) AS counted,
      coalesce(n.repositories, 0) AS "keptRepositories", coalesce(r.n, 0) AS repositories
    FROM names
    LEFT JOIN namespace n ON n.name = names.namespace
    LEFT JOIN counted c ON c.namespace = names.namespace
    LEFT JOIN repositories r ON r.namespace = names.namespace
    WHERE coalesce(n.size, 0) <> coalesce(c.size, 0) OR coalesce(n.repositories, 0) <> coalesce(r.n, 0)
    ORDER BY names.namespace`;
  const repositories = await sql<SizeMismatches['repositories']>`
    SELECT r.name AS repository, coalesce(u.size, 0) AS kept, coalesce(s.size, 0) AS counted
    FROM repository r
    LEFT JOIN repository_usage u ON u.repository_id = r.id
    LEFT JOIN (SELECT l.repository_id, sum(b.size) AS size FROM blob_link l JOIN blob b ON b.digest = l.digest GROUP BY 1) s
      ON s.repository_id = r.id
    WHERE coalesce(u.size, 0) <> coalesce(s.size, 0)
    ORDER BY r.name`;
  const links = await sql<SizeMismatches['links']>`
    WITH counted AS (
      SELECT split_part(r.name, '/', 1) AS namespace, l.digest, count(*) AS links
      FROM blob_link l JOIN repository r ON r.id = l.repository_id
      GROUP BY 1, 2
    )
    SELECT coalesce(nb.namespace, c.namespace) AS namespace, coalesce(nb.digest, c.digest) AS digest,
      coalesce(nb.links, 0) AS kept, coalesce(c.links, 0) AS counted
    FROM namespace_blob nb
    FULL JOIN counted c ON c.namespace = nb.namespace AND c.digest = nb.digest
    WHERE coalesce(nb.links, 0) <> coalesce(c.links, 0)
    ORDER BY 1, 2`;
  return mismatchProblems({ registry, namespaces, repositories, links });
}

// --- the store's methods ------------------------------------------------------

/** See Store.checkQuota: the link's own rule, in one statement. */
export async function checkQuota(cx: PgContext, repo: string, blob: { size: number; digest?: string }): Promise<void> {
  const namespace = namespaceOf(repo);
  const limit = cx.policy.quotas.get(namespace);
  if (limit === undefined) return;
  await cx.read((sql) => precheckQuota(sql, repo, limit, blob.size, blob.digest));
}

/** See Store.usage. */
export async function usage(cx: PgContext, options: UsageOptions = {}): Promise<Usage> {
  const { namespace } = options;
  const kept = await cx.snapshot(async (sql): Promise<KeptUsage> => {
    const [total] = await sql<KeptUsage['total'][]>`SELECT blobs, size AS bytes FROM registry_usage`;
    if (namespace === undefined) {
      const namespaces = await sql<KeptUsage['namespaces']>`
        SELECT name AS namespace, repositories, size AS bytes FROM namespace WHERE repositories > 0 ORDER BY name`;
      return { total, namespaces };
    }
    const namespaces = await sql<KeptUsage['namespaces']>`
      SELECT name AS namespace, repositories, size AS bytes FROM namespace WHERE name = ${namespace} AND repositories > 0`;
    if (!options.repositories) return { total, namespaces };
    // The namespace's own one-component repository, then the range of its `namespace/…` names, on the name's index.
    const repositories = await sql<NonNullable<KeptUsage['repositories']>>`
      SELECT r.name AS repository, coalesce(u.size, 0) AS bytes
      FROM repository r
      LEFT JOIN repository_usage u ON u.repository_id = r.id
      WHERE r.name = ${namespace} OR (r.name >= ${`${namespace}/`} AND r.name < ${`${namespace}0`})
      ORDER BY r.name`;
    return { total, namespaces, repositories };
  });
  return usageFrom(kept, cx.policy.quotas, namespace);
}
