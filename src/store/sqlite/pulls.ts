// Pulls on SQLite: each batch's counts added to its manifests and tags and
// its times to theirs and their repositories' (a mirror's cache is evicted
// by those), a statement per table per batch; and what a namespace's
// repositories link, for regmeta gc's eviction.

import type Database from 'better-sqlite3';
import { prepareAll } from './connection.js';
import type { StoreContext } from './context.js';
import { recordEvent } from './events.js';
import { namespaceBounds } from '../grammar.js';
import { addUpPulls, pullEvents, type PulledTarget } from '../pulls.js';
import { usageOf, type UsageRow } from '../usage.js';
import type { NamespaceRepository, Pull, RecordPullsOptions } from '../types.js';

const PULL_SQL = {
  // One range on the name's index; each repository's links by their key, in digest order.
  namespaceUsage: `
    SELECT r.name, r.created_at AS createdAt, r.pulled_at AS pulledAt, l.digest, b.size
    FROM repository r
    LEFT JOIN blob_link l ON l.repository_id = r.id
    LEFT JOIN blob b ON b.digest = l.digest
    WHERE r.name >= :low AND r.name < :high
    ORDER BY r.name, l.digest`,
};

// Each batch is a JSON array of rows, one statement per table: each joins
// its rows to the table's unique index (json_each's rows first). max() of
// two arguments is NULL when either is: a first pull takes `at` as it is.
const PULL_STATS_SQL = {
  // [[name, at]]
  repositories: `
    UPDATE repository SET pulled_at = max(coalesce(pulled_at, p.at), p.at)
    FROM (SELECT value ->> 0 AS name, value ->> 1 AS at FROM json_each(:batch)) AS p
    WHERE repository.name = p.name
    RETURNING id, name`,
  // [[repository id, digest, count, at]]
  manifests: `
    UPDATE manifest SET pull_count = pull_count + p.count, pulled_at = max(coalesce(pulled_at, p.at), p.at)
    FROM (SELECT value ->> 0 AS rid, value ->> 1 AS digest, value ->> 2 AS count, value ->> 3 AS at FROM json_each(:batch)) AS p
    WHERE manifest.repository_id = p.rid AND manifest.digest = p.digest
    RETURNING repository_id AS rid, digest`,
  // [[repository id, tag, count, at]]
  tags: `
    UPDATE tag SET pull_count = pull_count + p.count, pulled_at = max(coalesce(pulled_at, p.at), p.at)
    FROM (SELECT value ->> 0 AS rid, value ->> 1 AS name, value ->> 2 AS count, value ->> 3 AS at FROM json_each(:batch)) AS p
    WHERE tag.repository_id = p.rid AND tag.name = p.name
    RETURNING repository_id AS rid, name, (SELECT digest FROM manifest WHERE id = manifest_id) AS digest`,
};

/** @internal */
export function preparePullStatements(db: Database.Database): Record<keyof typeof PULL_SQL, Database.Statement> {
  return prepareAll(db, PULL_SQL);
}

/** @internal Needs version 7 (manifests' and tags' pull columns): prepared apart, on first use. */
export function preparePullStatsStatements(db: Database.Database): Record<keyof typeof PULL_STATS_SQL, Database.Statement> {
  return prepareAll(db, PULL_STATS_SQL);
}

/** See Store.recordPulls. */
export function recordPulls(cx: StoreContext, pulls: readonly Pull[], options?: RecordPullsOptions): number {
  if (pulls.length === 0) return 0;
  const batch = addUpPulls(pulls);
  return cx.write(() => {
    const sql = cx.sql.pullStats;
    const found = sql.repositories.all({ batch: JSON.stringify([...batch.repositories]) }) as { id: number; name: string }[];
    const ids = new Map(found.map((r) => [r.name, r.id]));
    const names = new Map(found.map((r) => [r.id, r.name]));
    const rows = (targets: PulledTarget[]) =>
      JSON.stringify(targets.flatMap((t) => (ids.has(t.repo) ? [[ids.get(t.repo), t.key, t.count, t.at]] : [])));
    const manifests = batch.manifests.length === 0 ? [] : (sql.manifests.all({ batch: rows(batch.manifests) }) as { rid: number; digest: string }[]);
    const tags = batch.tags.length === 0 ? [] : (sql.tags.all({ batch: rows(batch.tags) }) as { rid: number; name: string; digest: string }[]);
    if (options?.events !== true) return found.length;
    const now = Date.now();
    const pulledManifests = new Set(manifests.map((m) => `${names.get(m.rid)}@${m.digest}`));
    const pulledTags = new Map(tags.map((t) => [`${names.get(t.rid)}#${t.name}`, t.digest]));
    for (const { repo, digest, tag, count } of pullEvents(batch, pulledManifests, pulledTags)) {
      recordEvent(cx, '', now, 'PULL', 'MANIFEST', `${repo}@${digest}`, { repository: repo, digest, tag, count });
    }
    return found.length;
  });
}

/** See Store.namespaceUsage. */
export function namespaceUsage(cx: StoreContext, prefix: string): NamespaceRepository[] {
  return cx.read(() => usageOf(cx.sql.pulls.namespaceUsage.all(namespaceBounds(prefix)) as UsageRow[]));
}
