// Tags on PostgreSQL. A move locks the tag's row (FOR UPDATE) before it reads
// the target it replaces, so concurrent moves of one tag from any replica
// queue up: each records the previous one's target in its history and event,
// and the tag ends where the last event says.

import { actorOf, pageOf } from '../arguments.js';
import { NotFoundError } from '../errors.js';
import { guardTag } from '../immutable.js';
import { toDescriptor, toHistoryEntry, type TagRow } from '../rows.js';
import type { Context, Descriptor, PageOptions, TagHistoryEntry } from '../types.js';
import type { PgContext, WriteTx } from './context.js';
import { limitOf, notFound, requireRepository } from './repositories.js';

// --- inside a transaction -----------------------------------------------------

/**
 * Points `tag` at a manifest: an insert or an update, a history row and an
 * event; nothing when it points there already. `locked`, when given, is what
 * the caller's statement found (and locked) of the tag: its target's id, or
 * null for no row. A new tag costs one statement, which inserts it or, when
 * it is there, locks it (FOR UPDATE returns its latest version once a
 * concurrent move commits); a move costs a second. A move of an immutable
 * tag is refused unless `admin` (its event then carries the reason).
 * @throws StoreError DENIED.
 */
export async function setTag(
  tx: WriteTx,
  target: { repo: string; repositoryId: number; manifestId: number; digest: string },
  tag: string,
  actor: string,
  now: number,
  locked?: { manifestId: number | null },
  admin = false,
): Promise<void> {
  const { repo, repositoryId, manifestId, digest } = target;
  const fields = { repository: repo, tag, digest };
  let current = locked?.manifestId ?? null;
  while (current === null) {
    const [row] = await tx.sql<{ created: number; current: number | null }[]>`
      WITH created AS (
        INSERT INTO tag (repository_id, name, manifest_id, created_at, updated_at)
        VALUES (${repositoryId}, ${tag}, ${manifestId}, ${now}, ${now})
        ON CONFLICT (repository_id, name) DO NOTHING
        RETURNING 1
      ), history AS (
        INSERT INTO tag_history (repository_id, tag, digest, tagged_at)
        SELECT ${repositoryId}::bigint, ${tag}::text, ${digest}::text, ${now}::bigint FROM created
      )
      SELECT (SELECT count(*) FROM created) AS created, cur.manifest_id AS current
      FROM (VALUES (1)) AS one
      LEFT JOIN LATERAL (
        SELECT manifest_id FROM tag WHERE repository_id = ${repositoryId} AND name = ${tag} FOR UPDATE
      ) cur ON true`;
    if (row.created > 0) {
      tx.record(actor, 'CREATE', 'TAG', `${repo}:${tag}`, fields);
      return;
    }
    // Neither inserted nor found: created by a transaction that committed after this statement's snapshot; the next one sees and locks it.
    current = row.current;
  }
  if (current === manifestId) return;
  // Checked under the tag's lock: no concurrent move slips between the check and this one.
  const reason = guardTag(tx.policy, repo, tag, admin);
  // The previous target is read after the lock: it is committed, and cannot go while the tag names it.
  const [previous] = await tx.sql<{ digest: string }[]>`
    WITH moved AS (
      UPDATE tag SET manifest_id = ${manifestId}, updated_at = ${now}
      WHERE repository_id = ${repositoryId} AND name = ${tag}
    ), history AS (
      INSERT INTO tag_history (repository_id, tag, digest, tagged_at) VALUES (${repositoryId}, ${tag}, ${digest}, ${now})
    )
    SELECT digest FROM manifest WHERE id = ${current}`;
  tx.record(actor, 'UPDATE', 'TAG', `${repo}:${tag}`, { ...fields, previousDigest: previous.digest, reason });
}

/** Deletes every tag of a manifest (locked by the caller). @returns their names; the caller records the events. */
export async function untagManifest(tx: WriteTx, manifest: { id: number }): Promise<string[]> {
  const rows = await tx.sql<{ name: string }[]>`DELETE FROM tag WHERE manifest_id = ${manifest.id} RETURNING name`;
  return rows.map((row) => row.name);
}

// --- the store's methods ------------------------------------------------------

/** See Store.putTag. */
export async function putTag(
  cx: PgContext,
  repo: string,
  tag: string,
  descriptor: Pick<Descriptor, 'digest'> & Partial<Descriptor>,
  ctx?: Context,
): Promise<void> {
  const digest = descriptor.digest;
  const actor = actorOf(ctx);
  await cx.write(async (tx) => {
    // The repository, the manifest and the tag's row, locked, in one statement (FOR UPDATE in the lateral
    // subquery returns the tag's latest version once a concurrent move commits). No lock on the manifest:
    // the tag's foreign key locks it (KEY SHARE), so a concurrent delete waits or wins.
    const [row] = await tx.sql<{ repositoryId: number; manifestId: number | null; current: number | null }[]>`
      SELECT r.id AS "repositoryId", m.id AS "manifestId", cur.manifest_id AS current
      FROM repository r
      LEFT JOIN manifest m ON m.repository_id = r.id AND m.digest = ${digest}
      LEFT JOIN LATERAL (
        SELECT t.manifest_id FROM tag t WHERE t.repository_id = r.id AND t.name = ${tag} FOR UPDATE
      ) cur ON true
      WHERE r.name = ${repo}`;
    if (row === undefined) throw new NotFoundError('NAME_UNKNOWN', `repository ${repo} is not known`);
    if (row.manifestId === null) throw new NotFoundError('MANIFEST_UNKNOWN', `manifest ${repo}@${digest} is not known`);
    const target = { repo, repositoryId: row.repositoryId, manifestId: row.manifestId, digest };
    await setTag(tx, target, tag, actor, Date.now(), { manifestId: row.current }, ctx?.admin === true);
  });
}

/** See Store.getTag. */
export async function getTag(cx: PgContext, repo: string, tag: string): Promise<Descriptor> {
  return cx.read(async (sql) => {
    const [row] = await sql<TagRow[]>`
      SELECT m.media_type, m.digest, m.size
      FROM repository r
      JOIN tag t ON t.repository_id = r.id AND t.name = ${tag}
      JOIN manifest m ON m.id = t.manifest_id
      WHERE r.name = ${repo}`;
    if (row === undefined) return notFound(sql, repo, `tag ${repo}:${tag} is not known`);
    return toDescriptor(row);
  });
}

/** See Store.deleteTag. */
export async function deleteTag(cx: PgContext, repo: string, tag: string, ctx?: Context): Promise<void> {
  const actor = actorOf(ctx);
  await cx.write(async (tx) => {
    const repositoryId = await requireRepository(tx.sql, repo);
    const [deleted] = await tx.sql<{ manifest_id: number }[]>`
      DELETE FROM tag WHERE repository_id = ${repositoryId} AND name = ${tag} RETURNING manifest_id`;
    if (deleted === undefined) throw new NotFoundError('MANIFEST_UNKNOWN', `tag ${repo}:${tag} is not known`);
    // After the delete, which locked the row: a refusal rolls it back.
    const reason = guardTag(tx.policy, repo, tag, ctx?.admin === true);
    // A separate statement: the target may have been committed after the delete's snapshot, just before its lock.
    const [target] = await tx.sql<{ digest: string }[]>`SELECT digest FROM manifest WHERE id = ${deleted.manifest_id}`;
    tx.record(actor, 'DELETE', 'TAG', `${repo}:${tag}`, { repository: repo, tag, digest: target.digest, reason });
  });
}

/** See Store.allTags. */
export async function allTags(cx: PgContext, repo: string, page?: PageOptions): Promise<string[]> {
  const { limit, last } = pageOf(page);
  return cx.read(async (sql) => {
    const rows = await sql<{ name: string }[]>`
      SELECT name FROM tag
      WHERE repository_id = (SELECT id FROM repository WHERE name = ${repo}) AND name > ${last}
      ORDER BY name
      LIMIT ${limitOf(limit)}`;
    if (rows.length === 0) await requireRepository(sql, repo);
    return rows.map((row) => row.name);
  });
}

/** See Store.tagDescriptors. */
export async function tagDescriptors(cx: PgContext, repo: string, page?: PageOptions): Promise<(Descriptor & { tag: string })[]> {
  const { limit, last } = pageOf(page);
  return cx.read(async (sql) => {
    const rows = await sql<TagRow[]>`
      SELECT t.name AS tag, m.media_type, m.digest, m.size
      FROM tag t
      JOIN manifest m ON m.id = t.manifest_id
      WHERE t.repository_id = (SELECT id FROM repository WHERE name = ${repo}) AND t.name > ${last}
      ORDER BY t.name
      LIMIT ${limitOf(limit)}`;
    if (rows.length === 0) await requireRepository(sql, repo);
    return rows.map((row) => ({ tag: row.tag, ...toDescriptor(row) }));
  });
}

/** See Store.lookupTags. */
export async function lookupTags(cx: PgContext, repo: string, descriptorOrDigest: string | Pick<Descriptor, 'digest'>): Promise<string[]> {
  const digest = typeof descriptorOrDigest === 'string' ? descriptorOrDigest : descriptorOrDigest.digest;
  return cx.read(async (sql) => {
    const rows = await sql<{ name: string }[]>`
      SELECT t.name
      FROM repository r
      JOIN manifest m ON m.repository_id = r.id AND m.digest = ${digest}
      JOIN tag t ON t.manifest_id = m.id
      WHERE r.name = ${repo}
      ORDER BY t.name`;
    if (rows.length === 0) await requireRepository(sql, repo);
    return rows.map((row) => row.name);
  });
}

/** See Store.tagHistory. */
export async function tagHistory(cx: PgContext, repo: string, tag: string): Promise<TagHistoryEntry[]> {
  // One statement: the repository (or NAME_UNKNOWN) and its history read together.
  const rows = await cx.read((sql) => sql<{ digest: string | null; tagged_at: number | null }[]>`
    SELECT h.digest, h.tagged_at
    FROM repository r
    LEFT JOIN tag_history h ON h.repository_id = r.id AND h.tag = ${tag}
    WHERE r.name = ${repo}
    ORDER BY h.id DESC`);
  if (rows.length === 0) throw new NotFoundError('NAME_UNKNOWN', `repository ${repo} is not known`);
  if (rows[0].digest === null) return [];
  return (rows as { digest: string; tagged_at: number }[]).map(toHistoryEntry);
}
