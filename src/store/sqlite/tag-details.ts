// tagDetails on SQLite: a repository's tags with what each points at, in
// keyset pages by name, push or pull time (the rules are ../tag-details.ts's).
// A page is a few statements in one snapshot: the rows in batches (one,
// unless a pattern leaves some out) and the sizes of their manifests.

import type Database from 'better-sqlite3';
import type { StoreContext } from './context.js';
import { MediaType } from '../payload.js';
import { requireRepository } from './repositories.js';
import { batchSize, keep, tagDetailsPage, tagDetailsParams, type TagDetailRow, type TagDetailsParams, type TagKey } from '../tag-details.js';
import type { TagDetailsPage, TagQuery } from '../types.js';

const COLUMNS = `
  t.name AS tag,
  t.manifest_id,
  m.digest,
  m.media_type,
  t.created_at,
  t.updated_at,
  m.pushed_at,
  t.pulled_at,
  t.pull_count,
  CASE WHEN m.media_type IN (:ociIndex, :dockerList)
    THEN (SELECT payload FROM manifest_payload WHERE manifest_id = m.id) END AS payload`;

// The statements' fixed fragments: the time each sort orders by, and the
// table whose index walks it. A tie in time is broken by name; 'desc' is
// the reverse of 'asc', ties included.
const SORT_KEYS = { pushed: 'm.pushed_at', pulled: 'coalesce(t.pulled_at, 0)' } as const;

function pageSql(sort: TagDetailsParams['sort'], desc: boolean): string {
  const [before, direction] = desc ? ['<', 'DESC'] : ['>', 'ASC'];
  if (sort === 'name') {
    // One bound each side, so that the index is sought, not scanned: `:from`
    // is the later of the range's start and the cursor (excluded by `<>`), `:to` the earlier of its end and the cursor.
    const range = desc ? 't.name >= :low AND t.name < :to' : 't.name >= :from AND t.name <> :name AND t.name < :high';
    return `
      SELECT ${COLUMNS}, 0 AS sort_at
      FROM tag t
      JOIN manifest m ON m.id = t.manifest_id
      WHERE t.repository_id = :repositoryId AND ${range}
      ORDER BY t.name ${direction}
      LIMIT :limit`;
  }
  const key = SORT_KEYS[sort];
  // Pushed: manifests walked in push order (manifest_by_push), then their tags;
  // pulled: tags in pull order (tag_by_pull). The name's range filters.
  const from = sort === 'pushed' ? 'manifest m JOIN tag t ON t.manifest_id = m.id' : 'tag t JOIN manifest m ON m.id = t.manifest_id';
  const repository = sort === 'pushed' ? 'm.repository_id' : 't.repository_id';
  return `
    SELECT ${COLUMNS}, ${key} AS sort_at
    FROM ${from}
    WHERE ${repository} = :repositoryId
      AND ${key} ${before}= :at
      AND (${key} ${before} :at OR t.name ${before} :name)
      AND t.name >= :low AND t.name < :high
    ORDER BY ${key} ${direction}, t.name ${direction}
    LIMIT :limit`;
}

// The size of each manifest of a page: its bytes and its present children's
// (an index's, in its repository, to any depth), plus each blob they
// reference, once. Blobs the store does not hold count nothing.
const SIZES_SQL = `
  WITH RECURSIVE closure (root, id) AS (
    SELECT value, value FROM json_each(:ids)
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
  SELECT manifest_bytes.root AS id, manifest_bytes.bytes + coalesce(blob_bytes.bytes, 0) AS size
  FROM manifest_bytes LEFT JOIN blob_bytes ON blob_bytes.root = manifest_bytes.root`;

/** @internal The statements of tagDetails: a page's for each sort and order, and the sizes'. */
interface TagDetailStatements {
  page(sort: TagDetailsParams['sort'], desc: boolean): Database.Statement;
  sizes: Database.Statement;
}

/** @internal Prepared on first use (they read the pull columns, which an older file opened read-only lacks). */
export function prepareTagDetailStatements(db: Database.Database): TagDetailStatements {
  const pages = new Map<string, Database.Statement>();
  return {
    page(sort, desc) {
      const name = `${sort} ${desc}`;
      let statement = pages.get(name);
      if (statement === undefined) pages.set(name, (statement = db.prepare(pageSql(sort, desc))));
      return statement;
    },
    sizes: db.prepare(SIZES_SQL),
  };
}

/** The parameters of one batch after `after`. */
function batchParams(params: TagDetailsParams, repositoryId: number, after: TagKey, limit: number) {
  return {
    repositoryId,
    ociIndex: MediaType.OciIndex,
    dockerList: MediaType.DockerManifestList,
    low: params.low,
    high: params.high,
    from: after.name > params.low ? after.name : params.low,
    to: after.name < params.high ? after.name : params.high,
    at: after.at,
    name: after.name,
    limit,
  };
}

/** See Store.tagDetails. */
export function tagDetails(cx: StoreContext, repo: string, query?: TagQuery): TagDetailsPage {
  const params = tagDetailsParams(query);
  return cx.snapshot(() => {
    const repositoryId = requireRepository(cx, repo);
    const statements = cx.sql.tagDetails;
    const statement = statements.page(params.sort, params.desc);
    const kept: TagDetailRow[] = [];
    const limit = batchSize(params);
    for (let after: TagKey | undefined = params.after; after !== undefined; ) {
      const rows = statement.all(batchParams(params, repositoryId, after, limit)) as TagDetailRow[];
      after = keep(params, rows, limit, kept);
    }
    const ids = JSON.stringify([...new Set(kept.slice(0, params.n).map((row) => row.manifest_id))]);
    const sizes = new Map((statements.sizes.all({ ids }) as { id: number; size: number }[]).map((row) => [row.id, row.size]));
    return tagDetailsPage(params, kept, sizes);
  });
}
