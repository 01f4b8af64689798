// Repositories on PostgreSQL: created once however many replicas push their
// first manifest at the same moment (ON CONFLICT), listed in byte order,
// deleted with everything in them; and the lookups the other concerns start from.

import { actorOf, pageOf } from '../arguments.js';
import { NotFoundError } from '../errors.js';
import { guardTags } from '../immutable.js';
import { catalogBounds } from '../grammar.js';
import type { CatalogOptions, Context } from '../types.js';
import type { PgContext, Sql, TxSql, WriteTx } from './context.js';
import { RaceLost } from './errors.js';

/** The id of `repo`. @throws NotFoundError NAME_UNKNOWN. */
export async function requireRepository(sql: Sql | TxSql, repo: string): Promise<number> {
  const [row] = await sql<{ id: number }[]>`SELECT id FROM repository WHERE name = ${repo}`;
  if (row === undefined) throw new NotFoundError('NAME_UNKNOWN', `repository ${repo} is not known`);
  return row.id;
}

/**
 * The common table expressions `created` and `repo` (id, created) that find
 * `repo` or create it, for a statement that goes on to use its id: a write
 * that starts with them costs no round trip of its own for the repository.
 * `repo` is empty when a concurrent creator committed after the statement's
 * snapshot (the insert waited for it, then did nothing): run it again.
 */
export function repositoryCtes(sql: TxSql, repo: string, now: number) {
  return sql`
    created AS (
      INSERT INTO repository (name, created_at) VALUES (${repo}, ${now})
      ON CONFLICT (name) DO NOTHING
      RETURNING id
    ), repo AS (
      SELECT id, true AS created FROM created
      UNION ALL
      SELECT id, false FROM repository WHERE name = ${repo}
      LIMIT 1
    )`;
}

/** Records the CREATE event of a repository that repositoryCtes created. */
export function recordCreated(tx: WriteTx, repo: string, actor: string, created: boolean): void {
  if (created) tx.record(actor, 'CREATE', 'REPOSITORY', repo, { repository: repo });
}

/**
 * The id of `repo`, created (with its CREATE event) when missing. A
 * concurrent creator makes the insert wait for its commit and then do
 * nothing; the row it committed is read by the next statement.
 */
export async function ensureRepository(tx: WriteTx, repo: string, actor: string, now: number): Promise<number> {
  for (;;) {
    const [row] = await tx.sql<{ id: number; created: boolean }[]>`WITH ${repositoryCtes(tx.sql, repo, now)} SELECT id, created FROM repo`;
    if (row === undefined) continue; // created by a transaction that committed after this statement's snapshot: read again
    recordCreated(tx, repo, actor, row.created);
    return row.id;
  }
}

/**
 * ensureRepository, with the row locked KEY SHARE until the commit (as a
 * link's foreign key would lock it): what a quota check takes before the
 * namespace's row, in the order deleteRepository takes them (repository
 * FOR UPDATE, then the namespace in the links' trigger).
 */
export async function lockRepository(tx: WriteTx, repo: string, actor: string, now: number): Promise<number> {
  for (;;) {
    const id = await ensureRepository(tx, repo, actor, now);
    // Waits for a delete of the row that committed meanwhile, then finds nothing: created again.
    const [locked] = await tx.sql`SELECT 1 FROM repository WHERE id = ${id} FOR KEY SHARE`;
    if (locked !== undefined) return id;
  }
}

/**
 * The ids of `repo` and of its manifest `digest`; with `lock`, the manifest
 * row locked FOR UPDATE against concurrent tag writes and deletes.
 * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN.
 */
export async function resolveManifest(
  sql: TxSql,
  repo: string,
  digest: string,
  lock = false,
): Promise<{ repositoryId: number; manifestId: number }> {
  if (lock) {
    // FOR UPDATE cannot take the nullable side of an outer join: an inner join, and on a miss the plain probe says which.
    const [locked] = await sql<{ repositoryId: number; manifestId: number }[]>`
      SELECT m.repository_id AS "repositoryId", m.id AS "manifestId"
      FROM repository r
      JOIN manifest m ON m.repository_id = r.id AND m.digest = ${digest}
      WHERE r.name = ${repo}
      FOR UPDATE OF m`;
    if (locked !== undefined) return locked;
  }
  const [row] = await sql<{ repositoryId: number; manifestId: number | null }[]>`
    SELECT r.id AS "repositoryId", m.id AS "manifestId"
    FROM repository r
    LEFT JOIN manifest m ON m.repository_id = r.id AND m.digest = ${digest}
    WHERE r.name = ${repo}`;
  if (row === undefined) throw new NotFoundError('NAME_UNKNOWN', `repository ${repo} is not known`);
  if (row.manifestId === null) throw new NotFoundError('MANIFEST_UNKNOWN', `manifest ${repo}@${digest} is not known`);
  // Appeared since the locked read (committed meanwhile): the caller's transaction runs again.
  if (lock) throw new RaceLost(`manifest ${repo}@${digest} was committed while this transaction locked it`);
  return row as { repositoryId: number; manifestId: number };
}

/**
 * After a read found nothing: NAME_UNKNOWN when the repository is missing, else MANIFEST_UNKNOWN with `message`.
 * @throws NotFoundError always.
 */
export async function notFound(sql: Sql | TxSql, repo: string, message: string): Promise<never> {
  await requireRepository(sql, repo);
  throw new NotFoundError('MANIFEST_UNKNOWN', message);
}

/** A page's LIMIT: pageParams' -1 ("all") is NULL, which PostgreSQL reads as no limit. */
export function limitOf(limit: number): number | null {
  return limit < 0 ? null : limit;
}

/** See Store.catalog. */
export async function catalog(cx: PgContext, page?: CatalogOptions): Promise<string[]> {
  const { limit, last } = pageOf(page);
  const { low, high } = catalogBounds(page, last);
  return cx.read(async (sql) => {
    // One lower and one upper bound on the column (COLLATE "C": byte order), so the index seeks to the range and stops at its end.
    const rows = await sql<{ name: string }[]>`
      SELECT name FROM repository
      WHERE name >= ${low} AND name < ${high} AND name <> ${last}
      ORDER BY name LIMIT ${limitOf(limit)}`;
    return rows.map((row) => row.name);
  });
}

/** See Store.deleteRepository. */
export async function deleteRepository(cx: PgContext, repo: string, ctx?: Context): Promise<void> {
  const actor = actorOf(ctx);
  await cx.write(async (tx) => {
    // The row lock keeps concurrent pushes (whose foreign keys lock it to share) out until the delete commits.
    const [found] = await tx.sql<{ id: number }[]>`SELECT id FROM repository WHERE name = ${repo} FOR UPDATE`;
    if (found === undefined) throw new NotFoundError('NAME_UNKNOWN', `repository ${repo} is not known`);
    // What goes, read and deleted in one statement (its CTEs share one snapshot).
    const gone = await tx.sql<{ kind: 'tag' | 'manifest'; name: string | null; digest: string }[]>`
      WITH tags AS (
        SELECT t.name, m.digest FROM tag t JOIN manifest m ON m.id = t.manifest_id WHERE t.repository_id = ${found.id}
      ), manifests AS (
        SELECT digest FROM manifest WHERE repository_id = ${found.id}
      ), deleted AS (
        DELETE FROM repository WHERE id = ${found.id}
      )
      SELECT 'tag' AS kind, name, digest FROM tags
      UNION ALL
      SELECT 'manifest', NULL, digest FROM manifests
      ORDER BY kind DESC, name, digest`;
    // Checked after the delete, which a refusal rolls back: tags come first in `gone`.
    const tags = gone.filter((row) => row.kind === 'tag').map((row) => row.name!);
    const reasons = guardTags(tx.policy, repo, tags, ctx?.admin === true);
    let t = 0;
    for (const row of gone) {
      const reason = row.kind === 'tag' ? reasons[t++] : undefined;
      if (row.kind === 'tag') tx.record(actor, 'DELETE', 'TAG', `${repo}:${row.name}`, { repository: repo, tag: row.name!, digest: row.digest, reason });
      else tx.record(actor, 'DELETE', 'MANIFEST', `${repo}@${row.digest}`, { repository: repo, digest: row.digest });
    }
    tx.record(actor, 'DELETE', 'REPOSITORY', repo, { repository: repo });
  });
}
