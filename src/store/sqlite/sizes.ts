// Storage sizes on SQLite: kept by the schema's triggers (schema.sql), read
// here by usage() and the quota check of a link, and compared with a scan of
// the links by check().

import type Database from 'better-sqlite3';
import { prepareAll } from './connection.js';
import type { StoreContext } from './context.js';
import { namespaceBounds, namespaceOf } from '../grammar.js';
import { enforceQuota } from '../quota.js';
import { mismatchProblems, usageFrom, type KeptUsage, type SizeMismatches } from '../sizes.js';
import { StoreError } from '../errors.js';
import type { CheckProblem, Usage, UsageOptions } from '../types.js';

// A name's namespace in SQL, as namespaceOf computes it.
const NS = (column: string) => `CASE instr(${column}, '/') WHEN 0 THEN ${column} ELSE substr(${column}, 1, instr(${column}, '/') - 1) END`;

const USAGE_SQL = {
  total: 'SELECT blobs, size AS bytes FROM registry_usage',
  namespaces: 'SELECT name AS namespace, repositories, size AS bytes FROM namespace WHERE repositories > 0 ORDER BY name',
  namespace: 'SELECT name AS namespace, repositories, size AS bytes FROM namespace WHERE name = :namespace AND repositories > 0',
  // The namespace's own one-component repository, then the range of its `namespace/…` names, on the name's index.
  repositories: `
    SELECT r.name AS repository, coalesce(u.size, 0) AS bytes
    FROM repository r
    LEFT JOIN repository_usage u ON u.repository_id = r.id
    WHERE r.name = :namespace OR (r.name >= :low AND r.name < :high)
    ORDER BY r.name`,
  namespaceSize: 'SELECT size FROM namespace WHERE name = :namespace',
  namespaceHas: 'SELECT 1 FROM namespace_blob WHERE namespace = :namespace AND digest = :digest',
  // check(): what the triggers keep against a count of the links, mismatches only.
  registryMismatch: `
    SELECT u.blobs AS keptBlobs, u.size AS kept, s.blobs, s.size AS counted
    FROM registry_usage u, (SELECT count(*) AS blobs, coalesce(sum(size), 0) AS size FROM blob) s
    WHERE u.blobs <> s.blobs OR u.size <> s.size`,
  namespaceMismatches: `
    WITH counted AS (
      SELECT namespace, sum(size) AS size
      FROM (SELECT DISTINCT ${NS('r.name')} AS namespace, b.digest, b.size
            FROM blob_link l JOIN repository r ON r.id = l.repository_id JOIN blob b ON b.digest = l.digest)
      GROUP BY namespace
    ), repositories AS (
      SELECT ${NS('name')} AS namespace, count(*) AS n FROM repository GROUP BY 1
    ), names AS (
      SELECT name AS namespace FROM namespace UNION SELECT namespace FROM repositories
    )
    SELECT names.namespace, coalesce(n.size, 0) AS kept, coalesce(c.size, 0) AS counted,
      coalesce(n.repositories, 0) AS keptRepositories, coalesce(r.n, 0) AS repositories
    FROM names
    LEFT JOIN namespace n ON n.name = names.namespace
    LEFT JOIN counted c ON c.namespace = names.namespace
    LEFT JOIN repositories r ON r.namespace = names.namespace
    WHERE coalesce(n.size, 0) <> coalesce(c.size, 0) OR coalesce(n.repositories, 0) <> coalesce(r.n, 0)
    ORDER BY names.namespace`,
  repositoryMismatches: `
    SELECT r.name AS repository, coalesce(u.size, 0) AS kept, coalesce(s.size, 0) AS counted
    FROM repository r
    LEFT JOIN repository_usage u ON u.repository_id = r.id
    LEFT JOIN (SELECT l.repository_id, sum(b.size) AS size FROM blob_link l JOIN blob b ON b.digest = l.digest GROUP BY 1) s
      ON s.repository_id = r.id
    WHERE coalesce(u.size, 0) <> coalesce(s.size, 0)
    ORDER BY r.name`,
  linkCountMismatches: `
    WITH counted AS (
      SELECT ${NS('r.name')} AS namespace, l.digest, count(*) AS links
      FROM blob_link l JOIN repository r ON r.id = l.repository_id
      GROUP BY 1, 2
    ), keys AS (
      SELECT namespace, digest FROM namespace_blob UNION SELECT namespace, digest FROM counted
    )
    SELECT keys.namespace, keys.digest, coalesce(nb.links, 0) AS kept, coalesce(c.links, 0) AS counted
    FROM keys
    LEFT JOIN namespace_blob nb ON nb.namespace = keys.namespace AND nb.digest = keys.digest
    LEFT JOIN counted c ON c.namespace = keys.namespace AND c.digest = keys.digest
    WHERE coalesce(nb.links, 0) <> coalesce(c.links, 0)
    ORDER BY keys.namespace, keys.digest`,
};

type Statements = ReturnType<typeof prepareUsageStatements>;

/** @internal */
export function prepareUsageStatements(db: Database.Database): Record<keyof typeof USAGE_SQL, Database.Statement> {
  return prepareAll(db, USAGE_SQL, ['namespaceSize', 'namespaceHas']);
}

// --- inside a transaction -----------------------------------------------------

/**
 * Refuses a link of blob `digest` (`size` bytes; undefined: a blob not yet
 * known) into `repo` that would take its namespace over its quota; reads
 * nothing when no quota applies.
 * @throws StoreError DENIED.
 */
export function refuseOverQuota(cx: StoreContext, repo: string, digest: string | undefined, size: number): void {
  const namespace = namespaceOf(repo);
  const limit = cx.policy.quotas.get(namespace);
  if (limit === undefined) return;
  const sql = cx.sql.usage;
  const usage = (sql.namespaceSize.get({ namespace }) as number | undefined) ?? 0;
  const has = digest !== undefined && sql.namespaceHas.get({ namespace, digest }) !== undefined;
  enforceQuota(namespace, limit, usage, size, has);
}

/**
 * The statements, or undefined on a file older than the kept sizes (opened
 * read-only, not migrated): they are prepared on first use, and fail there.
 */
function statementsOf(cx: StoreContext): Statements | undefined {
  try {
    return cx.sql.usage;
  } catch {
    return undefined;
  }
}

/** The kept sizes against a count of the links: a 'size' problem for each that disagrees. None on a file older than the kept sizes. */
export function sizeProblems(cx: StoreContext): CheckProblem[] {
  const sql = statementsOf(cx);
  if (sql === undefined) return [];
  const mismatches: SizeMismatches = {
    registry: sql.registryMismatch.all() as SizeMismatches['registry'],
    namespaces: sql.namespaceMismatches.all() as SizeMismatches['namespaces'],
    repositories: sql.repositoryMismatches.all() as SizeMismatches['repositories'],
    links: sql.linkCountMismatches.all() as SizeMismatches['links'],
  };
  return mismatchProblems(mismatches);
}

// --- the store's methods ------------------------------------------------------

/** See Store.checkQuota: the link's own check, in a read of its own. */
export function checkQuota(cx: StoreContext, repo: string, blob: { size: number; digest?: string }): void {
  if (!cx.policy.quotas.has(namespaceOf(repo))) return;
  if (statementsOf(cx) === undefined) throw olderThanSizes(cx);
  cx.snapshot(() => refuseOverQuota(cx, repo, blob.digest, blob.size));
}

function olderThanSizes(cx: StoreContext): StoreError {
  return new StoreError('DATABASE_INVALID', `${cx.file} is older than the kept sizes (schema 7): open it read-write once to migrate it`);
}

/** See Store.usage. */
export function usage(cx: StoreContext, options: UsageOptions = {}): Usage {
  const sql = statementsOf(cx);
  if (sql === undefined) throw olderThanSizes(cx);
  const { namespace } = options;
  const kept = cx.snapshot((): KeptUsage => {
    const total = sql.total.get() as KeptUsage['total'];
    if (namespace === undefined) return { total, namespaces: sql.namespaces.all() as KeptUsage['namespaces'] };
    const namespaces = sql.namespace.all({ namespace }) as KeptUsage['namespaces'];
    if (!options.repositories) return { total, namespaces };
    return { total, namespaces, repositories: sql.repositories.all({ namespace, ...namespaceBounds(namespace) }) as KeptUsage['repositories'] };
  });
  return usageFrom(kept, cx.policy.quotas, namespace);
}
