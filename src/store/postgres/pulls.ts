// Pulls on PostgreSQL: each batch (from any replica) added to its
// manifests' and tags' counts and times and to its repositories' times (a
// mirror's cache is evicted by those) in one statement; and what a
// namespace's repositories link, for regmeta gc's eviction.

import { addUpPulls, pullEvents, type PullBatch, type PulledTarget } from '../pulls.js';
import { namespaceBounds } from '../grammar.js';
import { usageOf, type UsageRow } from '../usage.js';
import type { NamespaceRepository, Pull, RecordPullsOptions } from '../types.js';
import type { PgContext, TxSql } from './context.js';

/** What the statement found: each repository, and each manifest and tag with its digest. */
interface FoundRow {
  kind: 'repository' | 'manifest' | 'tag';
  repo: string;
  /** The manifest's digest, or the tag's name. */
  key: string | null;
  digest: string | null;
}

/** See Store.recordPulls. */
export async function recordPulls(cx: PgContext, pulls: readonly Pull[], options?: RecordPullsOptions): Promise<number> {
  if (pulls.length === 0) return 0;
  const batch = addUpPulls(pulls);
  return cx.write(async (tx) => {
    const found = await writeBatch(tx.sql, batch);
    if (options?.events === true) {
      const manifests = new Set(found.filter((r) => r.kind === 'manifest').map((r) => `${r.repo}@${r.key}`));
      const tags = new Map(found.filter((r) => r.kind === 'tag').map((r) => [`${r.repo}#${r.key}`, r.digest!]));
      for (const { repo, digest, tag, count } of pullEvents(batch, manifests, tags)) {
        tx.record('', 'PULL', 'MANIFEST', `${repo}@${digest}`, { repository: repo, digest, tag, count });
      }
    }
    return found.filter((r) => r.kind === 'repository').length;
  });
}

/**
 * The batch in one statement. Its rows are locked in id (key) order, table
 * by table, before they are written, so that two replicas' batches never
 * lock each other's rows the other way round; GREATEST skips a NULL (a
 * first pull takes the batch's time).
 */
function writeBatch(sql: TxSql, batch: PullBatch): Promise<FoundRow[]> {
  const column = <K extends keyof PulledTarget>(targets: PulledTarget[], key: K) => targets.map((t) => t[key]);
  const { manifests, tags } = batch;
  return sql<FoundRow[]>`
    WITH repos AS (
      SELECT r.id, r.name, p.at
      FROM repository r JOIN unnest(${[...batch.repositories.keys()]}::text[], ${[...batch.repositories.values()]}::bigint[]) AS p (name, at) ON p.name = r.name
      ORDER BY r.id FOR UPDATE OF r
    ), repos_written AS (
      UPDATE repository r SET pulled_at = GREATEST(r.pulled_at, repos.at) FROM repos WHERE r.id = repos.id
    ), manifests AS (
      SELECT m.id, repos.name AS repo, m.digest, p.count, p.at
      FROM unnest(${column(manifests, 'repo')}::text[], ${column(manifests, 'key')}::text[], ${column(manifests, 'count')}::bigint[], ${column(manifests, 'at')}::bigint[])
        AS p (repo, digest, count, at)
      JOIN repos ON repos.name = p.repo
      JOIN manifest m ON m.repository_id = repos.id AND m.digest = p.digest
      ORDER BY m.id FOR UPDATE OF m
    ), manifests_written AS (
      UPDATE manifest m SET pull_count = m.pull_count + manifests.count, pulled_at = GREATEST(m.pulled_at, manifests.at)
      FROM manifests WHERE m.id = manifests.id
    ), tags AS (
      SELECT t.repository_id, t.name, repos.name AS repo, t.manifest_id, p.count, p.at
      FROM unnest(${column(tags, 'repo')}::text[], ${column(tags, 'key')}::text[], ${column(tags, 'count')}::bigint[], ${column(tags, 'at')}::bigint[])
        AS p (repo, tag, count, at)
      JOIN repos ON repos.name = p.repo
      JOIN tag t ON t.repository_id = repos.id AND t.name = p.tag
      ORDER BY t.repository_id, t.name FOR UPDATE OF t
    ), tags_written AS (
      UPDATE tag t SET pull_count = t.pull_count + tags.count, pulled_at = GREATEST(t.pulled_at, tags.at)
      FROM tags WHERE t.repository_id = tags.repository_id AND t.name = tags.name
    )
    SELECT 'repository' AS kind, name AS repo, NULL AS key, NULL AS digest FROM repos
    UNION ALL SELECT 'manifest', repo, digest, digest FROM manifests
    UNION ALL SELECT 'tag', repo, tags.name, m.digest FROM tags JOIN manifest m ON m.id = tags.manifest_id`;
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
