// A mirror's cache on SQLite: when its repositories were last pulled, and
// what a namespace's repositories link, for regmeta gc's eviction.

import type Database from 'better-sqlite3';
import { prepareAll } from './connection.js';
import type { StoreContext } from './context.js';
import { namespaceBounds } from '../grammar.js';
import { usageOf, type UsageRow } from '../usage.js';
import type { NamespaceRepository, Pull } from '../types.js';

const PULL_SQL = {
  // max() of two arguments is NULL when either is: a first pull takes `at` as it is.
  recordPull: 'UPDATE repository SET pulled_at = max(coalesce(pulled_at, :at), :at) WHERE name = :repository',
  // One range on the name's index; each repository's links by their key, in digest order.
  namespaceUsage: `
    SELECT r.name, r.created_at AS createdAt, r.pulled_at AS pulledAt, l.digest, b.size
    FROM repository r
    LEFT JOIN blob_link l ON l.repository_id = r.id
    LEFT JOIN blob b ON b.digest = l.digest
    WHERE r.name >= :low AND r.name < :high
    ORDER BY r.name, l.digest`,
};

/** @internal */
export function preparePullStatements(db: Database.Database): Record<keyof typeof PULL_SQL, Database.Statement> {
  return prepareAll(db, PULL_SQL);
}

/** See Store.recordPulls. */
export function recordPulls(cx: StoreContext, pulls: readonly Pull[]): number {
  return cx.write(() => {
    const recorded = new Set<string>();
    for (const { repo, at } of pulls) {
      if (cx.sql.pulls.recordPull.run({ repository: repo, at: at.getTime() }).changes > 0) recorded.add(repo);
    }
    return recorded.size;
  });
}

/** See Store.namespaceUsage. */
export function namespaceUsage(cx: StoreContext, prefix: string): NamespaceRepository[] {
  return cx.read(() => usageOf(cx.sql.pulls.namespaceUsage.all(namespaceBounds(prefix)) as UsageRow[]));
}
