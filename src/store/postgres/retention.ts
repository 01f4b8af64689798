// Retention's reads and deletes on PostgreSQL, by the rules of the SQLite
// store's retention.ts: a batch per transaction, in a few statements
// whatever its size. Each delete locks what it weighs first, then checks
// the plan's premise in a later statement (one that sees what committed
// while it waited), so whatever changed since the plan, on any replica, stays.

import { actorOf } from '../arguments.js';
import { toManifestLinks, toTagLink, type ChildRow, type ManifestLinksRow, type TagLinkRow } from '../rows.js';
import type { Context, ManifestToRetire, RepositoryLinks, TagToRetire } from '../types.js';
import type { PgContext, TxSql } from './context.js';
import { collectableManifest } from './gc.js';

async function repositoryId(sql: TxSql, repo: string): Promise<number | undefined> {
  const [row] = await sql<{ id: number }[]>`SELECT id FROM repository WHERE name = ${repo}`;
  return row?.id;
}

/** See Store.repositoryLinks. */
export async function repositoryLinks(cx: PgContext, repo: string): Promise<RepositoryLinks> {
  return cx.snapshot(async (sql) => {
    const id = await repositoryId(sql, repo);
    if (id === undefined) return { tags: [], manifests: [] };
    const tags = await sql<TagLinkRow[]>`
      SELECT t.name AS tag, m.digest, t.updated_at, GREATEST(t.pulled_at, m.pulled_at) AS pulled_at
      FROM tag t JOIN manifest m ON m.id = t.manifest_id WHERE t.repository_id = ${id}`;
    const rows = await sql<ManifestLinksRow[]>`SELECT digest, pushed_at, subject FROM manifest WHERE repository_id = ${id}`;
    const children = await sql<ChildRow[]>`
      SELECT p.digest AS parent, c.digest
      FROM manifest_child c JOIN manifest p ON p.id = c.parent_id
      WHERE c.repository_id = ${id}`;
    return { tags: tags.map(toTagLink), manifests: toManifestLinks(rows, children) };
  });
}

/** See Store.retireTags. */
export async function retireTags(cx: PgContext, repo: string, given: readonly TagToRetire[], ctx?: Context): Promise<string[]> {
  // Immutable tags are an admin's to delete, never retention's.
  const frozen = cx.policy.immutable.filter((rule) => rule.repositories.test(repo)).flatMap((rule) => rule.tags);
  const tags = given.filter((t) => !frozen.some((pattern) => pattern.test(t.tag)));
  if (tags.length === 0) return [];
  const actor = actorOf(ctx);
  return cx.write(async (tx) => {
    const id = await repositoryId(tx.sql, repo);
    if (id === undefined) return [];
    const digests = [...new Set(tags.map((t) => t.digest))];
    // Locked: a push of one of these manifests again (which moves its
    // pushed_at) waits for this commit, or has committed and is seen below.
    // Joined to the list, not `= ANY(list)`: a probe of the index per digest, never a scan that tests each row against the list.
    await tx.sql`
      SELECT m.id FROM unnest(${digests}::text[]) AS d (digest) JOIN manifest m ON m.repository_id = ${id} AND m.digest = d.digest
      ORDER BY m.id FOR SHARE OF m`;
    // A tag moved meanwhile is re-checked on its new row: its updated_at differs.
    const rows = await tx.sql<{ name: string }[]>`
      DELETE FROM tag t
      USING unnest(
        ${tags.map((t) => t.tag)}::text[],
        ${tags.map((t) => t.digest)}::text[],
        ${tags.map((t) => t.updatedAt.getTime())}::bigint[],
        ${tags.map((t) => t.pushedAt.getTime())}::bigint[]
      ) AS x (name, digest, updated_at, pushed_at), manifest m
      WHERE t.repository_id = ${id} AND t.name = x.name AND t.updated_at = x.updated_at
        AND m.id = t.manifest_id AND m.digest = x.digest AND m.pushed_at = x.pushed_at
      RETURNING t.name`;
    const gone = new Set(rows.map((row) => row.name));
    const deleted: string[] = [];
    for (const { tag, digest, reason } of tags) {
      if (!gone.delete(tag)) continue;
      tx.record(actor, 'DELETE', 'TAG', `${repo}:${tag}`, { repository: repo, tag, digest, reason });
      deleted.push(tag);
    }
    return deleted;
  });
}

/** See Store.retireManifests. */
export async function retireManifests(
  cx: PgContext,
  repo: string,
  manifests: readonly ManifestToRetire[],
  ctx: Context | undefined,
  options: { olderThan: Date },
): Promise<string[]> {
  if (manifests.length === 0) return [];
  const actor = actorOf(ctx);
  const before = options.olderThan.getTime();
  return cx.write(async (tx) => {
    const id = await repositoryId(tx.sql, repo);
    if (id === undefined) return [];
    // Locked: a tag write (its foreign key) or a delete elsewhere waits for this commit.
    const locked = await tx.sql<{ id: number }[]>`
      SELECT m.id FROM unnest(${manifests.map((m) => m.digest)}::text[]) AS d (digest) JOIN manifest m ON m.repository_id = ${id} AND m.digest = d.digest
      ORDER BY m.id FOR UPDATE OF m`;
    let left = locked.map((row) => row.id);
    const reasons = new Map(manifests.map((m) => [m.digest, m.reason]));
    const deleted: string[] = [];
    // Rounds until one deletes nothing: an index deleted frees its children, a
    // subject its referrers (each statement sees what the previous one deleted).
    while (left.length > 0) {
      const rows = await tx.sql<{ id: number; digest: string }[]>`
        DELETE FROM manifest m USING unnest(${left}::bigint[]) AS x (id)
        WHERE m.id = x.id AND ${collectableManifest(tx.sql, before)}
        RETURNING m.id, m.digest`;
      if (rows.length === 0) break;
      const gone = new Set(rows.map((row) => row.id));
      left = left.filter((manifestId) => !gone.has(manifestId));
      for (const { digest } of rows) {
        tx.record(actor, 'DELETE', 'MANIFEST', `${repo}@${digest}`, { repository: repo, digest, reason: reasons.get(digest) });
        deleted.push(digest);
      }
    }
    return deleted;
  });
}
