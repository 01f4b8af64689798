// Retention's reads and deletes on SQLite: a repository's manifests with
// what keeps them alive, and the conditional deletes of a plan's tags and
// manifests, a batch per transaction. Each delete checks the plan's premise
// again inside its transaction (the tag unchanged; the garbage collector's
// rule for a manifest), so whatever changed since the plan stays.

import type Database from 'better-sqlite3';
import { prepareAll } from './connection.js';
import { actorOf } from '../arguments.js';
import type { StoreContext } from './context.js';
import { recordEvent } from './events.js';
import { removeManifest } from './manifests.js';
import { toManifestLinks, toTagLink, type ChildRow, type ManifestLinksRow, type TagLinkRow } from '../rows.js';
import type { Context, ManifestToRetire, RepositoryLinks, TagToRetire } from '../types.js';

const RETENTION_SQL = {
  // The later of a pull by the tag and one of its manifest by digest (NULL: neither).
  tags: `
    SELECT
      t.name AS tag,
      m.digest,
      t.updated_at,
      nullif(max(coalesce(t.pulled_at, 0), coalesce(m.pulled_at, 0)), 0) AS pulled_at
    FROM tag t
    JOIN manifest m ON m.id = t.manifest_id
    WHERE t.repository_id = :repositoryId`,
  manifests: `
    SELECT
      digest,
      pushed_at,
      subject
    FROM manifest
    WHERE repository_id = :repositoryId`,
  // Through manifest_child_by_digest, whose key starts with the repository.
  children: `
    SELECT
      p.digest AS parent,
      c.digest
    FROM manifest_child c
    JOIN manifest p ON p.id = c.parent_id
    WHERE c.repository_id = :repositoryId`,
  // The tag as the plan saw it, or nothing.
  unchangedTag: `
    SELECT 1
    FROM tag t
    JOIN manifest m ON m.id = t.manifest_id
    WHERE t.repository_id = :repositoryId AND t.name = :tag
      AND m.digest = :digest AND t.updated_at = :updatedAt AND m.pushed_at = :pushedAt`,
};

/** @internal */
export function prepareRetentionStatements(db: Database.Database): Record<keyof typeof RETENTION_SQL, Database.Statement> {
  return prepareAll(db, RETENTION_SQL);
}

/** See Store.repositoryLinks. */
export function repositoryLinks(cx: StoreContext, repo: string): RepositoryLinks {
  return cx.snapshot(() => {
    const repositoryId = cx.sql.repositories.repositoryId.get({ repository: repo }) as number | undefined;
    if (repositoryId === undefined) return { tags: [], manifests: [] };
    const sql = cx.sql.retention;
    const tags = (sql.tags.all({ repositoryId }) as TagLinkRow[]).map(toTagLink);
    const rows = sql.manifests.all({ repositoryId }) as ManifestLinksRow[];
    const children = sql.children.all({ repositoryId }) as ChildRow[];
    return { tags, manifests: toManifestLinks(rows, children) };
  });
}

/** See Store.retireTags. */
export function retireTags(cx: StoreContext, repo: string, tags: readonly TagToRetire[], ctx?: Context): string[] {
  const actor = actorOf(ctx);
  return cx.write(() => {
    const repositoryId = cx.sql.repositories.repositoryId.get({ repository: repo }) as number | undefined;
    if (repositoryId === undefined) return [];
    const now = Date.now();
    const deleted: string[] = [];
    // Immutable tags are an admin's to delete, never retention's.
    const frozen = cx.policy.immutable.filter((rule) => rule.repositories.test(repo)).flatMap((rule) => rule.tags);
    for (const { tag, digest, updatedAt, pushedAt, reason } of tags) {
      if (frozen.some((pattern) => pattern.test(tag))) continue;
      const params = { repositoryId, tag, digest, updatedAt: updatedAt.getTime(), pushedAt: pushedAt.getTime() };
      if (cx.sql.retention.unchangedTag.get(params) === undefined) continue;
      cx.sql.tags.deleteTag.run({ repositoryId, tag });
      recordEvent(cx, actor, now, 'DELETE', 'TAG', `${repo}:${tag}`, { repository: repo, tag, digest, reason });
      deleted.push(tag);
    }
    return deleted;
  });
}

/** See Store.retireManifests. */
export function retireManifests(
  cx: StoreContext,
  repo: string,
  manifests: readonly ManifestToRetire[],
  ctx: Context | undefined,
  options: { olderThan: Date },
): string[] {
  const actor = actorOf(ctx);
  const before = options.olderThan.getTime();
  return cx.write(() => {
    const repositoryId = cx.sql.repositories.repositoryId.get({ repository: repo }) as number | undefined;
    if (repositoryId === undefined) return [];
    // In row order, so that a batch's deletes touch neighbouring pages.
    let left = manifests
      .map((entry) => ({ entry, id: cx.sql.manifests.manifestId.get({ repositoryId, digest: entry.digest }) as number | undefined }))
      .filter((m): m is { entry: ManifestToRetire; id: number } => m.id !== undefined)
      .sort((a, b) => a.id - b.id);
    const deleted: string[] = [];
    // Rounds until one deletes nothing: an index deleted frees its children, a subject its referrers.
    for (let progress = true; progress && left.length > 0; ) {
      progress = false;
      const kept: typeof left = [];
      for (const m of left) {
        if (cx.sql.gc.manifestCollectable.get({ manifestId: m.id, before }) === undefined) {
          kept.push(m);
          continue;
        }
        removeManifest(cx, repo, { id: m.id, digest: m.entry.digest }, actor, false, m.entry.reason);
        deleted.push(m.entry.digest);
        progress = true;
      }
      left = kept;
    }
    return deleted;
  });
}
