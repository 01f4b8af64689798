// Manifests on PostgreSQL: exact bytes per repository, with the blobs,
// children and subject they reference recorded as rows. The rules (what a
// manifest must be, the digest, the size limit) are payload.ts's.

import { actorOf } from '../arguments.js';
import { StoreError } from '../errors.js';
import { guardTags } from '../immutable.js';
import { referenceOf, type Reference } from '../grammar.js';
import { checkManifest, type CheckedManifest } from '../payload.js';
import type { Context, Descriptor, Manifest, ManifestInfo, PutManifestResult, StoredManifest } from '../types.js';
import { toManifest, toReferrer, type ManifestRow, type ReferrerRow } from '../rows.js';
import type { PgContext, Sql, WriteTx } from './context.js';
import { notFound, recordCreated, repositoryCtes, resolveManifest } from './repositories.js';
import { setTag, untagManifest } from './tags.js';

// --- inside a transaction -----------------------------------------------------

/**
 * In one statement: the repository, found or created; the manifest inserted
 * or, pushed again, its garbage collector's clock restarted; and, when it is
 * new, its payload and the rows of what it references, and with `check` what
 * of those the repository holds, locked (KEY SHARE) so that no concurrent
 * unlink or delete takes them before this commits. The rows are written
 * before the check: a missing reference throws, and the transaction rolls
 * them back.
 * @returns the ids, and whether the manifest is new.
 * @throws StoreError MANIFEST_BLOB_UNKNOWN for the first reference missing, in the manifest's order.
 */
async function upsertManifest(
  tx: WriteTx,
  repo: string,
  m: CheckedManifest,
  actor: string,
  now: number,
  check: boolean,
): Promise<{ repositoryId: number; id: number; inserted: boolean }> {
  const { parsed } = m;
  const { blobs, children } = parsed;
  for (;;) {
    // xmax = 0 only on a row this statement inserted; a conflict locks and updates the existing one.
    const [row] = await tx.sql<{ repositoryId: number; created: boolean; id: number; inserted: boolean; linked: string[]; present: string[] }[]>`
      WITH ${repositoryCtes(tx.sql, repo, now)}, upserted AS (
        INSERT INTO manifest (repository_id, digest, media_type, artifact_type, annotations, subject, size, created_at, pushed_at)
        SELECT repo.id, ${m.digest}::text, ${m.mediaType}::text, ${parsed.artifactType}::text, ${parsed.annotations}::text,
          ${parsed.subject}::text, ${m.bytes.byteLength}::bigint, ${now}::bigint, ${now}::bigint
        FROM repo
        ON CONFLICT (repository_id, digest) DO UPDATE SET pushed_at = excluded.pushed_at
        RETURNING id, repository_id, (xmax = 0) AS inserted
      ), new AS (
        SELECT id, repository_id FROM upserted WHERE inserted
      ), payload AS (
        INSERT INTO manifest_payload (manifest_id, payload) SELECT id, ${m.bytes}::bytea FROM new
      ), blobs AS (
        INSERT INTO manifest_blob (manifest_id, digest)
        SELECT DISTINCT new.id, d FROM new, unnest(${blobs}::text[]) AS d
      ), children AS (
        INSERT INTO manifest_child (repository_id, parent_id, digest)
        SELECT DISTINCT new.repository_id, new.id, d FROM new, unnest(${children}::text[]) AS d
      ), linked AS (
        SELECT l.digest FROM new JOIN blob_link l ON l.repository_id = new.repository_id
        WHERE ${check}::boolean AND l.digest = ANY(${blobs}::text[])
        FOR KEY SHARE OF l
      ), present AS (
        SELECT p.digest FROM new JOIN manifest p ON p.repository_id = new.repository_id
        WHERE ${check}::boolean AND p.digest = ANY(${children}::text[])
        FOR KEY SHARE OF p
      )
      SELECT repo.id AS "repositoryId", repo.created, upserted.id, upserted.inserted,
        array(SELECT digest FROM linked) AS linked, array(SELECT digest FROM present) AS present
      FROM repo, upserted`;
    if (row === undefined) continue; // the repository was created by a transaction that committed after this statement's snapshot
    recordCreated(tx, repo, actor, row.created);
    if (row.inserted && check) refuseMissing(repo, m, row);
    return row;
  }
}

/** @throws StoreError MANIFEST_BLOB_UNKNOWN for the first blob not `linked` or child not `present`, in the manifest's order. */
function refuseMissing(repo: string, m: CheckedManifest, found: { linked: string[]; present: string[] }): void {
  const missing = (what: string, digest: string) => new StoreError('MANIFEST_BLOB_UNKNOWN', `${what} ${digest} is not in ${repo}`, { digest });
  const linked = new Set(found.linked);
  const blob = m.parsed.blobs.find((digest) => !linked.has(digest));
  if (blob !== undefined) throw missing('blob', blob);
  const present = new Set(found.present);
  const child = m.parsed.children.find((digest) => !present.has(digest));
  if (child !== undefined) throw missing('manifest', child);
}

/** @throws StoreError MANIFEST_REFERENCED while an index in the repository lists the manifest. */
export async function refuseIfChild(tx: WriteTx, repo: string, repositoryId: number, digest: string): Promise<void> {
  const [row] = await tx.sql<{ digest: string }[]>`
    SELECT p.digest FROM manifest_child c JOIN manifest p ON p.id = c.parent_id
    WHERE c.repository_id = ${repositoryId} AND c.digest = ${digest}
    LIMIT 1`;
  if (row !== undefined) throw new StoreError('MANIFEST_REFERENCED', `${repo}@${digest} is a child of ${row.digest}`, { parent: row.digest });
}

/** Deletes a manifest (locked by the caller) and every tag of it, with their events. */
export async function removeManifest(tx: WriteTx, repo: string, manifest: { id: number; digest: string }, actor: string): Promise<void> {
  const tags = await untagManifest(tx, manifest);
  await tx.sql`DELETE FROM manifest WHERE id = ${manifest.id}`;
  recordRemoved(tx, repo, manifest.digest, tags, actor, false);
}

/**
 * The events of a manifest deleted with its tags: DELETE TAG each, in byte
 * order as the SQLite store's index gives them, then DELETE MANIFEST. An
 * immutable tag among them refuses the whole delete (the transaction rolls
 * back) unless `admin`, whose events carry the reason.
 * @throws StoreError DENIED.
 */
function recordRemoved(tx: WriteTx, repo: string, digest: string, tags: string[], actor: string, admin: boolean): void {
  // Tags are ASCII: code units are bytes.
  const sorted = [...tags].sort();
  const reasons = guardTags(tx.policy, repo, sorted, admin);
  sorted.forEach((tag, i) => tx.record(actor, 'DELETE', 'TAG', `${repo}:${tag}`, { repository: repo, tag, digest, reason: reasons[i] }));
  tx.record(actor, 'DELETE', 'MANIFEST', `${repo}@${digest}`, { repository: repo, digest });
}

// --- the store's methods ------------------------------------------------------

/** See Store.putManifest. */
export async function putManifest(
  cx: PgContext,
  repo: string,
  given: string | undefined,
  manifest: Manifest,
  ctx?: Context,
  options: { tag?: string; requireReferences?: boolean } = {},
): Promise<PutManifestResult> {
  const tag = options.tag;
  const actor = actorOf(ctx);
  // Parsing and hashing happen before the transaction.
  const checked = checkManifest(cx.limits.maxManifestSize, given, manifest);
  const { digest, parsed } = checked;
  await cx.write(async (tx) => {
    const now = Date.now();
    const { repositoryId, id, inserted } = await upsertManifest(tx, repo, checked, actor, now, options.requireReferences === true);
    if (inserted) {
      tx.record(actor, 'CREATE', 'MANIFEST', `${repo}@${digest}`, { repository: repo, digest });
    }
    if (tag !== undefined) await setTag(tx, { repo, repositoryId, manifestId: id, digest }, tag, actor, now, undefined, ctx?.admin === true);
  });
  return parsed.subject === null ? { digest } : { digest, subject: parsed.subject };
}

async function readByDigest(cx: PgContext, repo: string, digest: string, withPayload: boolean): Promise<ManifestInfo> {
  return cx.read(async (sql) => {
    const [row] = withPayload
      ? await sql<ManifestRow[]>`
          SELECT m.digest, m.media_type, m.size, m.created_at, p.payload
          FROM repository r
          JOIN manifest m ON m.repository_id = r.id AND m.digest = ${digest}
          JOIN manifest_payload p ON p.manifest_id = m.id
          WHERE r.name = ${repo}`
      : await sql<ManifestRow[]>`
          SELECT m.digest, m.media_type, m.size, m.created_at
          FROM repository r
          JOIN manifest m ON m.repository_id = r.id AND m.digest = ${digest}
          WHERE r.name = ${repo}`;
    if (row === undefined) return notFound(sql, repo, `manifest ${repo}@${digest} is not known`);
    return toManifest(repo, row);
  });
}

/** By tag in one statement: a tag moved, and its old manifest deleted, in between cannot be observed. */
async function readByTag(sql: Sql, repo: string, tag: string, withPayload: boolean): Promise<ManifestRow | undefined> {
  const [row] = withPayload
    ? await sql<ManifestRow[]>`
        SELECT m.digest, m.media_type, m.size, m.created_at, p.payload
        FROM repository r
        JOIN tag t ON t.repository_id = r.id AND t.name = ${tag}
        JOIN manifest m ON m.id = t.manifest_id
        JOIN manifest_payload p ON p.manifest_id = m.id
        WHERE r.name = ${repo}`
    : await sql<ManifestRow[]>`
        SELECT m.digest, m.media_type, m.size, m.created_at
        FROM repository r
        JOIN tag t ON t.repository_id = r.id AND t.name = ${tag}
        JOIN manifest m ON m.id = t.manifest_id
        WHERE r.name = ${repo}`;
  return row;
}

/** See Store.getManifest. */
export async function getManifest(cx: PgContext, repo: string, digest: string): Promise<StoredManifest> {
  return (await readByDigest(cx, repo, digest, true)) as StoredManifest;
}

/** See Store.statManifest. */
export function statManifest(cx: PgContext, repo: string, digest: string): Promise<ManifestInfo> {
  return readByDigest(cx, repo, digest, false);
}

/** See Store.getManifestByReference. */
export async function getManifestByReference(
  cx: PgContext,
  repo: string,
  reference: string | Reference,
  options: { head?: boolean } = {},
): Promise<ManifestInfo | StoredManifest> {
  const { tag, digest } = referenceOf(reference);
  if (digest !== undefined) return readByDigest(cx, repo, digest, !options.head);
  return cx.read(async (sql) => {
    const row = await readByTag(sql, repo, tag, !options.head);
    if (row === undefined) return notFound(sql, repo, `tag ${repo}:${tag} is not known`);
    return toManifest(repo, row);
  });
}

/** See Store.deleteManifest. */
export async function deleteManifest(cx: PgContext, repo: string, digest: string, ctx?: Context): Promise<void> {
  const actor = actorOf(ctx);
  await cx.write(async (tx) => {
    const { repositoryId, manifestId } = await resolveManifest(tx.sql, repo, digest, true);
    // A statement after the lock: an index committed while it waited is seen. The tags' foreign key is
    // checked at the statement's end, when both they and the manifest are gone.
    const [row] = await tx.sql<{ parent: string | null; tags: string[] }[]>`
      WITH parent AS (
        SELECT p.digest FROM manifest_child c JOIN manifest p ON p.id = c.parent_id
        WHERE c.repository_id = ${repositoryId} AND c.digest = ${digest}
        LIMIT 1
      ), untagged AS (
        DELETE FROM tag WHERE manifest_id = ${manifestId} AND NOT EXISTS (SELECT 1 FROM parent) RETURNING name
      ), deleted AS (
        DELETE FROM manifest WHERE id = ${manifestId} AND NOT EXISTS (SELECT 1 FROM parent)
      )
      SELECT (SELECT digest FROM parent) AS parent, array(SELECT name FROM untagged) AS tags`;
    if (row.parent !== null) throw new StoreError('MANIFEST_REFERENCED', `${repo}@${digest} is a child of ${row.parent}`, { parent: row.parent });
    recordRemoved(tx, repo, digest, row.tags, actor, ctx?.admin === true);
  });
}

/** See Store.referrers. */
export async function referrers(cx: PgContext, repo: string, digest: string, filter: { artifactType?: string } = {}): Promise<Descriptor[]> {
  const artifactType = filter.artifactType;
  // A repository that is not there has no referrers: the join finds none.
  const rows = await cx.read((sql) => sql<ReferrerRow[]>`
    SELECT m.media_type, m.digest, m.size, m.artifact_type, m.annotations
    FROM repository r
    JOIN manifest m ON m.repository_id = r.id AND m.subject = ${digest}
    WHERE r.name = ${repo} AND (${artifactType ?? null}::text IS NULL OR m.artifact_type = ${artifactType ?? null})
    ORDER BY m.id`);
  return rows.map(toReferrer);
}

