// Tags (DTR's TagStore): names pointing at manifests of their repository,
// with the history of every target a tag has had.

import type Database from 'better-sqlite3';
import { prepareAll } from './connection.js';
import { actorOf, pageOf } from '../arguments.js';
import type { StoreContext } from './context.js';
import { NotFoundError } from '../errors.js';
import { recordEvent } from './events.js';
import { guardTag, guardTags } from '../immutable.js';
import { toDescriptor, toHistoryEntry, type TagRow } from '../rows.js';
import { notFound, requireRepository, resolveManifest } from './repositories.js';
import type { Context, Descriptor, PageOptions, TagHistoryEntry } from '../types.js';

const TAG_SQL = {
  getTag: `
    SELECT
      m.media_type,
      m.digest,
      m.size
    FROM repository r
    JOIN tag t ON t.repository_id = r.id AND t.name = :tag
    JOIN manifest m ON m.id = t.manifest_id
    WHERE r.name = :repository`,
  currentTag: `
    SELECT
      m.id AS manifest_id,
      m.digest
    FROM tag t
    JOIN manifest m ON m.id = t.manifest_id
    WHERE t.repository_id = :repositoryId AND t.name = :tag`,
  upsertTag: `
    INSERT INTO tag (repository_id, name, manifest_id, created_at, updated_at)
    VALUES (:repositoryId, :tag, :manifestId, :now, :now)
    ON CONFLICT (repository_id, name) DO UPDATE SET
      manifest_id = excluded.manifest_id,
      updated_at = excluded.updated_at`,
  deleteTag: 'DELETE FROM tag WHERE repository_id = :repositoryId AND name = :tag',
  insertTagHistory: `
    INSERT INTO tag_history (repository_id, tag, digest, tagged_at)
    VALUES (:repositoryId, :tag, :digest, :now)`,
  tagHistory: `
    SELECT
      digest,
      tagged_at
    FROM tag_history
    WHERE repository_id = :repositoryId AND tag = :tag
    ORDER BY id DESC`,
  allTags: `
    SELECT name
    FROM tag
    WHERE repository_id = (SELECT id FROM repository WHERE name = :repository)
      AND name > :last
    ORDER BY name
    LIMIT :limit`,
  tagDescriptors: `
    SELECT
      t.name AS tag,
      m.media_type,
      m.digest,
      m.size
    FROM tag t
    JOIN manifest m ON m.id = t.manifest_id
    WHERE t.repository_id = (SELECT id FROM repository WHERE name = :repository)
      AND t.name > :last
    ORDER BY t.name
    LIMIT :limit`,
  lookupTags: `
    SELECT t.name
    FROM repository r
    JOIN manifest m ON m.repository_id = r.id AND m.digest = :digest
    JOIN tag t ON t.manifest_id = m.id
    WHERE r.name = :repository
    ORDER BY t.name`,
  tagsOfManifest: 'SELECT name FROM tag WHERE manifest_id = :manifestId ORDER BY name',
  tagsOfRepository: `
    SELECT
      t.name,
      m.digest
    FROM tag t
    JOIN manifest m ON m.id = t.manifest_id
    WHERE t.repository_id = :repositoryId
    ORDER BY t.name`,
  deleteTagsOfManifest: 'DELETE FROM tag WHERE manifest_id = :manifestId',
  deleteTagsOfRepository: 'DELETE FROM tag WHERE repository_id = :repositoryId',
};

/** @internal */
export function prepareTagStatements(db: Database.Database): Record<keyof typeof TAG_SQL, Database.Statement> {
  return prepareAll(db, TAG_SQL, ['allTags', 'lookupTags', 'tagsOfManifest']);
}

// --- inside a transaction -----------------------------------------------------

/**
 * Points `tag` at a manifest: one upsert, a history row and an event, or
 * nothing when it points there already. A move of an immutable tag is
 * refused unless `admin` (its event then carries the reason).
 * @throws StoreError DENIED.
 */
export function setTag(
  cx: StoreContext,
  target: { repo: string; repositoryId: number; manifestId: number; digest: string },
  tag: string,
  actor: string,
  now: number,
  admin = false,
): void {
  const sql = cx.sql.tags;
  const { repo, repositoryId, manifestId, digest } = target;
  const current = sql.currentTag.get({ repositoryId, tag }) as { manifest_id: number; digest: string } | undefined;
  if (current?.manifest_id === manifestId) return;
  const reason = current === undefined ? undefined : guardTag(cx.policy, repo, tag, admin);
  sql.upsertTag.run({ repositoryId, tag, manifestId, now });
  sql.insertTagHistory.run({ repositoryId, tag, digest, now });
  recordEvent(cx, actor, now, current ? 'UPDATE' : 'CREATE', 'TAG', `${repo}:${tag}`, {
    repository: repo,
    tag,
    digest,
    previousDigest: current?.digest,
    reason,
  });
}

/**
 * Deletes every tag of a manifest, with a DELETE TAG event each; none when
 * one is immutable and the actor no admin.
 * @throws StoreError DENIED.
 */
export function untagManifest(cx: StoreContext, repo: string, manifest: { id: number; digest: string }, actor: string, now: number, admin = false): void {
  const sql = cx.sql.tags;
  const tags = sql.tagsOfManifest.all({ manifestId: manifest.id }) as string[];
  const reasons = guardTags(cx.policy, repo, tags, admin);
  sql.deleteTagsOfManifest.run({ manifestId: manifest.id });
  tags.forEach((tag, i) => {
    recordEvent(cx, actor, now, 'DELETE', 'TAG', `${repo}:${tag}`, { repository: repo, tag, digest: manifest.digest, reason: reasons[i] });
  });
}

// --- the store's methods ------------------------------------------------------

/** See Store.putTag. */
export function putTag(
  cx: StoreContext,
  repo: string,
  tag: string,
  descriptor: Pick<Descriptor, 'digest'> & Partial<Descriptor>,
  ctx?: Context,
): void {
  const digest = descriptor.digest;
  const actor = actorOf(ctx);
  cx.write(() => {
    const { repositoryId, manifestId } = resolveManifest(cx, repo, digest);
    setTag(cx, { repo, repositoryId, manifestId, digest }, tag, actor, Date.now(), ctx?.admin === true);
  });
}

/** See Store.getTag. */
export function getTag(cx: StoreContext, repo: string, tag: string): Descriptor {
  return cx.read(() => {
    const row = cx.sql.tags.getTag.get({ repository: repo, tag }) as TagRow | undefined;
    if (row === undefined) notFound(cx, repo, `tag ${repo}:${tag} is not known`);
    return toDescriptor(row);
  });
}

/** See Store.deleteTag. */
export function deleteTag(cx: StoreContext, repo: string, tag: string, ctx?: Context): void {
  const actor = actorOf(ctx);
  cx.write(() => {
    const repositoryId = requireRepository(cx, repo);
    const current = cx.sql.tags.currentTag.get({ repositoryId, tag }) as { digest: string } | undefined;
    if (current === undefined) throw new NotFoundError('MANIFEST_UNKNOWN', `tag ${repo}:${tag} is not known`);
    const reason = guardTag(cx.policy, repo, tag, ctx?.admin === true);
    cx.sql.tags.deleteTag.run({ repositoryId, tag });
    recordEvent(cx, actor, Date.now(), 'DELETE', 'TAG', `${repo}:${tag}`, { repository: repo, tag, digest: current.digest, reason });
  });
}

/** See Store.allTags. */
export function allTags(cx: StoreContext, repo: string, page?: PageOptions): string[] {
  const { limit, last } = pageOf(page);
  return cx.read(() => {
    const tags = cx.sql.tags.allTags.all({ repository: repo, last, limit }) as string[];
    if (tags.length === 0) requireRepository(cx, repo);
    return tags;
  });
}

/** See Store.tagDescriptors. */
export function tagDescriptors(cx: StoreContext, repo: string, page?: PageOptions): (Descriptor & { tag: string })[] {
  const { limit, last } = pageOf(page);
  return cx.read(() => {
    const rows = cx.sql.tags.tagDescriptors.all({ repository: repo, last, limit }) as TagRow[];
    if (rows.length === 0) requireRepository(cx, repo);
    return rows.map((row) => ({ tag: row.tag, ...toDescriptor(row) }));
  });
}

/** See Store.lookupTags. */
export function lookupTags(cx: StoreContext, repo: string, descriptorOrDigest: string | Pick<Descriptor, 'digest'>): string[] {
  const digest = typeof descriptorOrDigest === 'string' ? descriptorOrDigest : descriptorOrDigest.digest;
  return cx.read(() => {
    const tags = cx.sql.tags.lookupTags.all({ repository: repo, digest }) as string[];
    if (tags.length === 0) requireRepository(cx, repo);
    return tags;
  });
}

/** See Store.tagHistory. */
export function tagHistory(cx: StoreContext, repo: string, tag: string): TagHistoryEntry[] {
  return cx.snapshot(() => {
    const repositoryId = requireRepository(cx, repo);
    return (cx.sql.tags.tagHistory.all({ repositoryId, tag }) as { digest: string; tagged_at: number }[]).map(toHistoryEntry);
  });
}
