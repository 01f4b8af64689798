// Manifests on PostgreSQL: exact bytes per repository, with the blobs,
// children and subject they reference recorded as rows. The rules (what a
// manifest must be, the digest, the size limit) are payload.ts's.

import { actorOf } from '../arguments.js';
import { StoreError } from '../errors.js';
import { checkDigest, checkReference, checkRepository, checkTag, parseReference, type Reference } from '../grammar.js';
import { checkManifest, type CheckedManifest } from '../payload.js';
import type { Context, Descriptor, Manifest, ManifestInfo, PutManifestResult, StoredManifest } from '../types.js';
import { toManifest, toReferrer, type ManifestRow, type ReferrerRow } from '../manifests.js';
import type { PgContext, Sql, WriteTx } from './context.js';
import { ensureRepository, notFound, resolveManifest } from './repositories.js';
import { setTag, untagManifest } from './tags.js';

// --- inside a transaction -----------------------------------------------------

/** Inserts a manifest, or restarts the garbage collector's clock of one already there. @returns its id and whether it is new. */
async function upsertManifest(tx: WriteTx, repositoryId: number, m: CheckedManifest, now: number): Promise<{ id: number; inserted: boolean }> {
  const { parsed } = m;
  // xmax = 0 only on a row this statement inserted; a conflict locks and updates the existing one.
  const [row] = await tx.sql<{ id: number; inserted: boolean }[]>`
    INSERT INTO manifest (repository_id, digest, media_type, artifact_type, annotations, subject, size, created_at, pushed_at)
    VALUES (${repositoryId}, ${m.digest}, ${m.mediaType}, ${parsed.artifactType}, ${parsed.annotations}, ${parsed.subject},
      ${m.bytes.byteLength}, ${now}, ${now})
    ON CONFLICT (repository_id, digest) DO UPDATE SET pushed_at = excluded.pushed_at
    RETURNING id, (xmax = 0) AS inserted`;
  return row;
}

/** The payload and the rows of what a new manifest references, in one statement. */
async function insertReferences(tx: WriteTx, repositoryId: number, manifestId: number, m: CheckedManifest): Promise<void> {
  await tx.sql`
    WITH payload AS (
      INSERT INTO manifest_payload (manifest_id, payload) VALUES (${manifestId}, ${m.bytes})
    ), blobs AS (
      INSERT INTO manifest_blob (manifest_id, digest)
      SELECT DISTINCT ${manifestId}::bigint, d FROM unnest(${m.parsed.blobs}::text[]) AS d
    )
    INSERT INTO manifest_child (repository_id, parent_id, digest)
    SELECT DISTINCT ${repositoryId}::bigint, ${manifestId}::bigint, d FROM unnest(${m.parsed.children}::text[]) AS d`;
}

/**
 * Every blob linked and every child present in the repository, locked (KEY
 * SHARE) so that no concurrent unlink or delete takes them before this commits.
 * @throws StoreError MANIFEST_BLOB_UNKNOWN for the first one missing, in the manifest's order.
 */
async function checkReferences(tx: WriteTx, repo: string, repositoryId: number, m: CheckedManifest): Promise<void> {
  const missing = (what: string, digest: string) => new StoreError('MANIFEST_BLOB_UNKNOWN', `${what} ${digest} is not in ${repo}`, { digest });
  const { blobs, children } = m.parsed;
  if (blobs.length > 0) {
    const rows = await tx.sql<{ digest: string }[]>`
      SELECT digest FROM blob_link WHERE repository_id = ${repositoryId} AND digest = ANY(${blobs}::text[]) FOR KEY SHARE`;
    const linked = new Set(rows.map((row) => row.digest));
    const first = blobs.find((digest) => !linked.has(digest));
    if (first !== undefined) throw missing('blob', first);
  }
  if (children.length > 0) {
    const rows = await tx.sql<{ digest: string }[]>`
      SELECT digest FROM manifest WHERE repository_id = ${repositoryId} AND digest = ANY(${children}::text[]) FOR KEY SHARE`;
    const present = new Set(rows.map((row) => row.digest));
    const first = children.find((digest) => !present.has(digest));
    if (first !== undefined) throw missing('manifest', first);
  }
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
  await untagManifest(tx, repo, manifest, actor);
  await tx.sql`DELETE FROM manifest WHERE id = ${manifest.id}`;
  tx.record(actor, 'DELETE', 'MANIFEST', `${repo}@${manifest.digest}`, { repository: repo, digest: manifest.digest });
}

// --- the store's methods ------------------------------------------------------

/** See MetadataStore.putManifest. */
export async function putManifest(
  cx: PgContext,
  repo: string,
  given: string | undefined,
  manifest: Manifest,
  ctx?: Context,
  options: { tag?: string; requireReferences?: boolean } = {},
): Promise<PutManifestResult> {
  checkRepository(repo);
  const tag = options.tag === undefined ? undefined : checkTag(options.tag);
  const actor = actorOf(ctx);
  // Parsing and hashing happen before the transaction.
  const checked = checkManifest(cx.limits.maxManifestSize, given, manifest);
  const { digest, parsed } = checked;
  await cx.write(async (tx) => {
    const now = Date.now();
    const repositoryId = await ensureRepository(tx, repo, actor, now);
    const { id, inserted } = await upsertManifest(tx, repositoryId, checked, now);
    if (inserted) {
      if (options.requireReferences) await checkReferences(tx, repo, repositoryId, checked);
      await insertReferences(tx, repositoryId, id, checked);
      tx.record(actor, 'CREATE', 'MANIFEST', `${repo}@${digest}`, { repository: repo, digest });
    }
    if (tag !== undefined) await setTag(tx, { repo, repositoryId, manifestId: id, digest }, tag, actor, now);
  });
  return parsed.subject === null ? { digest } : { digest, subject: parsed.subject };
}

async function readByDigest(cx: PgContext, repo: string, digest: string, withPayload: boolean): Promise<ManifestInfo> {
  checkRepository(repo);
  checkDigest(digest);
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

/** See MetadataStore.getManifest. */
export async function getManifest(cx: PgContext, repo: string, digest: string): Promise<StoredManifest> {
  return (await readByDigest(cx, repo, digest, true)) as StoredManifest;
}

/** See MetadataStore.statManifest. */
export function statManifest(cx: PgContext, repo: string, digest: string): Promise<ManifestInfo> {
  return readByDigest(cx, repo, digest, false);
}

/** See MetadataStore.getManifestByReference. */
export async function getManifestByReference(
  cx: PgContext,
  repo: string,
  reference: string | Reference,
  options: { head?: boolean } = {},
): Promise<ManifestInfo | StoredManifest> {
  checkRepository(repo);
  const { tag, digest } = typeof reference === 'string' ? parseReference(reference) : checkReference(reference);
  if (digest !== undefined) return readByDigest(cx, repo, digest, !options.head);
  return cx.read(async (sql) => {
    const row = await readByTag(sql, repo, tag, !options.head);
    if (row === undefined) return notFound(sql, repo, `tag ${repo}:${tag} is not known`);
    return toManifest(repo, row);
  });
}

/** See MetadataStore.deleteManifest. */
export async function deleteManifest(cx: PgContext, repo: string, digest: string, ctx?: Context): Promise<void> {
  checkRepository(repo);
  checkDigest(digest);
  const actor = actorOf(ctx);
  await cx.write(async (tx) => {
    const { repositoryId, manifestId } = await resolveManifest(tx.sql, repo, digest, true);
    await refuseIfChild(tx, repo, repositoryId, digest);
    await removeManifest(tx, repo, { id: manifestId, digest }, actor);
  });
}

/** See MetadataStore.referrers. */
export async function referrers(cx: PgContext, repo: string, digest: string, filter: { artifactType?: string } = {}): Promise<Descriptor[]> {
  checkRepository(repo);
  checkDigest(digest);
  const artifactType = filter.artifactType;
  if (artifactType !== undefined && typeof artifactType !== 'string') {
    throw new StoreError('MANIFEST_INVALID', 'artifactType must be a string');
  }
  // A repository that is not there has no referrers: the join finds none.
  const rows = await cx.read((sql) => sql<ReferrerRow[]>`
    SELECT m.media_type, m.digest, m.size, m.artifact_type, m.annotations
    FROM repository r
    JOIN manifest m ON m.repository_id = r.id AND m.subject = ${digest}
    WHERE r.name = ${repo} AND (${artifactType ?? null}::text IS NULL OR m.artifact_type = ${artifactType ?? null})
    ORDER BY m.id`);
  return rows.map(toReferrer);
}

