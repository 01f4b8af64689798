// tagDetails on PostgreSQL: a repository's tags with what each points at, in
// keyset pages by name, push or pull time (the rules are ../tag-details.ts's).
// A page is a few statements in one snapshot: the rows in batches (one,
// unless a pattern leaves some out) and the sizes of their manifests.

import { MediaType } from '../payload.js';
import { batchSize, keep, tagDetailsPage, tagDetailsParams, type TagDetailRow, type TagDetailsParams, type TagKey } from '../tag-details.js';
import type { TagDetailsPage, TagQuery } from '../types.js';
import type { PgContext, TxSql } from './context.js';
import { requireRepository } from './repositories.js';

/** One batch of rows after `after`, in the query's order: fixed fragments, values as parameters. */
function batch(sql: TxSql, params: TagDetailsParams, repositoryId: number, after: TagKey, limit: number) {
  const columns = sql`
    t.name AS tag, t.manifest_id, m.digest, m.media_type, t.created_at, t.updated_at, m.pushed_at,
    t.pulled_at, t.pull_count,
    CASE WHEN m.media_type IN (${MediaType.OciIndex}, ${MediaType.DockerManifestList})
      THEN (SELECT payload FROM manifest_payload WHERE manifest_id = m.id) END AS payload`;
  const direction = params.desc ? sql`DESC` : sql`ASC`;
  if (params.sort === 'name') {
    // One bound each side, so that the index is sought: the later (earlier) of the range's end and the cursor.
    const range = params.desc
      ? sql`t.name >= ${params.low} AND t.name < ${after.name < params.high ? after.name : params.high}`
      : sql`t.name >= ${after.name > params.low ? after.name : params.low} AND t.name <> ${after.name} AND t.name < ${params.high}`;
    return sql<TagDetailRow[]>`
      SELECT ${columns}, 0 AS sort_at
      FROM tag t JOIN manifest m ON m.id = t.manifest_id
      WHERE t.repository_id = ${repositoryId} AND ${range}
      ORDER BY t.name ${direction}
      LIMIT ${limit}`;
  }
  // Pushed: manifests walked in push order (manifest_by_push), then their
  // tags; pulled: tags in pull order (tag_by_pull). A tie in time is broken
  // by name; the name's range filters.
  const key = params.sort === 'pushed' ? sql`m.pushed_at` : sql`coalesce(t.pulled_at, 0)`;
  const position = params.desc
    ? sql`${key} <= ${after.at} AND (${key} < ${after.at} OR t.name < ${after.name})`
    : sql`${key} >= ${after.at} AND (${key} > ${after.at} OR t.name > ${after.name})`;
  const repository = params.sort === 'pushed' ? sql`m.repository_id` : sql`t.repository_id`;
  return sql<TagDetailRow[]>`
    SELECT ${columns}, ${key} AS sort_at
    FROM tag t JOIN manifest m ON m.id = t.manifest_id
    WHERE ${repository} = ${repositoryId} AND ${position} AND t.name >= ${params.low} AND t.name < ${params.high}
    ORDER BY ${key} ${direction}, t.name ${direction}
    LIMIT ${limit}`;
}

/**
 * The size of each manifest of `ids`: its bytes and its present children's
 * (an index's, in its repository, to any depth), plus each blob they
 * reference, once. Blobs the store does not hold count nothing.
 */
async function sizesOf(sql: TxSql, ids: number[]): Promise<Map<number, number>> {
  if (ids.length === 0) return new Map();
  const rows = await sql<{ id: number; size: number }[]>`
    WITH RECURSIVE closure (root, id) AS (
      SELECT i, i FROM unnest(${ids}::bigint[]) AS i
      UNION
      SELECT closure.root, child.id
      FROM closure
      JOIN manifest_child c ON c.parent_id = closure.id
      JOIN manifest child ON child.repository_id = c.repository_id AND child.digest = c.digest
    ),
    manifest_bytes AS (
      SELECT closure.root, sum(m.size) AS bytes FROM closure JOIN manifest m ON m.id = closure.id GROUP BY closure.root
    ),
    blob_bytes AS (
      SELECT refs.root, sum(b.size) AS bytes
      FROM (SELECT DISTINCT closure.root, mb.digest FROM closure JOIN manifest_blob mb ON mb.manifest_id = closure.id) refs
      JOIN blob b ON b.digest = refs.digest
      GROUP BY refs.root
    )
    SELECT manifest_bytes.root AS id, (manifest_bytes.bytes + coalesce(blob_bytes.bytes, 0))::bigint AS size
    FROM manifest_bytes LEFT JOIN blob_bytes ON blob_bytes.root = manifest_bytes.root`;
  return new Map(rows.map((row) => [row.id, row.size]));
}

/** See Store.tagDetails. */
export async function tagDetails(cx: PgContext, repo: string, query?: TagQuery): Promise<TagDetailsPage> {
  const params = tagDetailsParams(query);
  return cx.snapshot(async (sql) => {
    const repositoryId = await requireRepository(sql, repo);
    const kept: TagDetailRow[] = [];
    const limit = batchSize(params);
    for (let after: TagKey | undefined = params.after; after !== undefined; ) {
      const rows = await batch(sql, params, repositoryId, after, limit);
      after = keep(params, [...rows], limit, kept);
    }
    const sizes = await sizesOf(sql, [...new Set(kept.slice(0, params.n).map((row) => row.manifest_id))]);
    return tagDetailsPage(params, kept, sizes);
  });
}
