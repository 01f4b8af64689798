// Manifests (DTR's ManifestStore): exact bytes per repository, with the
// blobs, children and subject they reference recorded as rows.

import type Database from 'better-sqlite3';
import { prepareAll } from './connection.js';
import { actorOf } from '../arguments.js';
import type { StoreContext } from './context.js';
import { StoreError } from '../errors.js';
import { recordEvent } from './events.js';
import { referenceOf, type Reference } from '../grammar.js';
import { checkManifest, type CheckedManifest, type ParsedManifest } from '../payload.js';
import { toManifest, toReferrer, type ManifestRow, type ReferrerRow } from '../rows.js';
import { ensureRepository, notFound, resolveManifest } from './repositories.js';
import { setTag, untagManifest } from './tags.js';
import type { Context, Descriptor, Manifest, ManifestInfo, PutManifestResult, StoredManifest } from '../types.js';

const MANIFEST_SQL = {
  manifestInfo: `
    SELECT
      m.digest,
      m.media_type,
      m.size,
      m.created_at
    FROM repository r
    JOIN manifest m ON m.repository_id = r.id AND m.digest = :digest
    WHERE r.name = :repository`,
  manifestWithPayload: `
    SELECT
      m.digest,
      m.media_type,
      m.size,
      m.created_at,
      p.payload
    FROM repository r
    JOIN manifest m ON m.repository_id = r.id AND m.digest = :digest
    JOIN manifest_payload p ON p.manifest_id = m.id
    WHERE r.name = :repository`,
  // By tag in one statement: a tag moved, and its old manifest deleted,
  // between reading the tag and reading the manifest cannot be observed.
  manifestInfoByTag: `
    SELECT
      m.digest,
      m.media_type,
      m.size,
      m.created_at
    FROM repository r
    JOIN tag t ON t.repository_id = r.id AND t.name = :tag
    JOIN manifest m ON m.id = t.manifest_id
    WHERE r.name = :repository`,
  manifestWithPayloadByTag: `
    SELECT
      m.digest,
      m.media_type,
      m.size,
      m.created_at,
      p.payload
    FROM repository r
    JOIN tag t ON t.repository_id = r.id AND t.name = :tag
    JOIN manifest m ON m.id = t.manifest_id
    JOIN manifest_payload p ON p.manifest_id = m.id
    WHERE r.name = :repository`,
  manifestId: 'SELECT id FROM manifest WHERE repository_id = :repositoryId AND digest = :digest',
  insertManifest: `
    INSERT INTO manifest (
      repository_id,
      digest,
      media_type,
      artifact_type,
      annotations,
      subject,
      size,
      created_at,
      pushed_at
    ) VALUES (
      :repositoryId,
      :digest,
      :mediaType,
      :artifactType,
      :annotations,
      :subject,
      :size,
      :now,
      :now
    )
    RETURNING id`,
  touchManifest: 'UPDATE manifest SET pushed_at = :now WHERE id = :manifestId',
  insertPayload: 'INSERT INTO manifest_payload (manifest_id, payload) VALUES (:manifestId, :payload)',
  insertManifestBlob: 'INSERT OR IGNORE INTO manifest_blob (manifest_id, digest) VALUES (:manifestId, :digest)',
  insertManifestChild: `
    INSERT OR IGNORE INTO manifest_child (repository_id, parent_id, digest)
    VALUES (:repositoryId, :manifestId, :digest)`,
  // A parent in the same repository that lists the digest as a child.
  parentOf: `
    SELECT p.digest
    FROM manifest_child c
    JOIN manifest p ON p.id = c.parent_id
    WHERE c.repository_id = :repositoryId AND c.digest = :digest
    LIMIT 1`,
  deleteManifest: 'DELETE FROM manifest WHERE id = :manifestId',
  referrers: `
    SELECT
      media_type,
      digest,
      size,
      artifact_type,
      annotations
    FROM manifest
    WHERE repository_id = :repositoryId
      AND subject = :digest
      AND (:artifactType IS NULL OR artifact_type = :artifactType)
    ORDER BY id`,
};

/** @internal */
export function prepareManifestStatements(db: Database.Database): Record<keyof typeof MANIFEST_SQL, Database.Statement> {
  return prepareAll(db, MANIFEST_SQL, ['manifestId', 'insertManifest', 'parentOf']);
}

// --- inside a transaction -----------------------------------------------------

/** Inserts a manifest with the rows of what it references and its CREATE event. */
function insertManifest(cx: StoreContext, repo: string, repositoryId: number, manifest: CheckedManifest, actor: string, now: number): number {
  const sql = cx.sql.manifests;
  const { digest, mediaType, bytes, parsed } = manifest;
  const manifestId = sql.insertManifest.get({
    repositoryId,
    digest,
    mediaType,
    artifactType: parsed.artifactType,
    annotations: parsed.annotations,
    subject: parsed.subject,
    size: bytes.byteLength,
    now,
  }) as number;
  sql.insertPayload.run({ manifestId, payload: bytes });
  for (const blob of parsed.blobs) sql.insertManifestBlob.run({ manifestId, digest: blob });
  for (const child of parsed.children) sql.insertManifestChild.run({ repositoryId, manifestId, digest: child });
  recordEvent(cx, actor, now, 'CREATE', 'MANIFEST', `${repo}@${digest}`, { repository: repo, digest });
  return manifestId;
}

/** @throws StoreError MANIFEST_BLOB_UNKNOWN for the first blob not linked or child not present in `repo`. */
function checkReferences(cx: StoreContext, repo: string, repositoryId: number, parsed: ParsedManifest): void {
  const missing = (what: string, digest: string) =>
    new StoreError('MANIFEST_BLOB_UNKNOWN', `${what} ${digest} is not in ${repo}`, { digest });
  for (const digest of parsed.blobs) {
    if (cx.sql.blobs.blobLinked.get({ repositoryId, digest }) === undefined) throw missing('blob', digest);
  }
  for (const digest of parsed.children) {
    if (cx.sql.manifests.manifestId.get({ repositoryId, digest }) === undefined) throw missing('manifest', digest);
  }
}

/** @throws StoreError MANIFEST_REFERENCED while an index in the repository lists the manifest. */
export function refuseIfChild(cx: StoreContext, repo: string, repositoryId: number, digest: string): void {
  const parent = cx.sql.manifests.parentOf.get({ repositoryId, digest }) as string | undefined;
  if (parent !== undefined) {
    throw new StoreError('MANIFEST_REFERENCED', `${repo}@${digest} is a child of ${parent}`, { parent });
  }
}

/** Deletes a manifest and every tag of it, with their events (the manifest's with `reason`, when given). */
export function removeManifest(cx: StoreContext, repo: string, manifest: { id: number; digest: string }, actor: string, admin = false, reason?: string): void {
  const now = Date.now();
  untagManifest(cx, repo, manifest, actor, now, admin);
  cx.sql.manifests.deleteManifest.run({ manifestId: manifest.id });
  recordEvent(cx, actor, now, 'DELETE', 'MANIFEST', `${repo}@${manifest.digest}`, { repository: repo, digest: manifest.digest, reason });
}

// --- the store's methods ------------------------------------------------------

/** See Store.putManifest. */
export function putManifest(
  cx: StoreContext,
  repo: string,
  given: string | undefined,
  manifest: Manifest,
  ctx?: Context,
  options: { tag?: string; requireReferences?: boolean } = {},
): PutManifestResult {
  const tag = options.tag;
  const actor = actorOf(ctx);
  // Parsing and hashing happen before the write lock is taken.
  const checked = checkManifest(cx.limits.maxManifestSize, given, manifest);
  const { digest, parsed } = checked;
  cx.write(() => {
    const now = Date.now();
    const repositoryId = ensureRepository(cx, repo, actor, now);
    let manifestId = cx.sql.manifests.manifestId.get({ repositoryId, digest }) as number | undefined;
    if (manifestId === undefined) {
      if (options.requireReferences) checkReferences(cx, repo, repositoryId, parsed);
      manifestId = insertManifest(cx, repo, repositoryId, checked, actor, now);
    } else {
      // No event and no new row; only the garbage collector's clock restarts.
      cx.sql.manifests.touchManifest.run({ manifestId, now });
    }
    if (tag !== undefined) setTag(cx, { repo, repositoryId, manifestId, digest }, tag, actor, now, ctx?.admin === true);
  });
  return parsed.subject === null ? { digest } : { digest, subject: parsed.subject };
}

function readManifest(cx: StoreContext, repo: string, digest: string, statement: Database.Statement): ManifestInfo {
  return cx.read(() => {
    const row = statement.get({ repository: repo, digest }) as ManifestRow | undefined;
    if (row === undefined) notFound(cx, repo, `manifest ${repo}@${digest} is not known`);
    return toManifest(repo, row);
  });
}

/** See Store.getManifest. */
export function getManifest(cx: StoreContext, repo: string, digest: string): StoredManifest {
  return readManifest(cx, repo, digest, cx.sql.manifests.manifestWithPayload) as StoredManifest;
}

/** See Store.statManifest. */
export function statManifest(cx: StoreContext, repo: string, digest: string): ManifestInfo {
  return readManifest(cx, repo, digest, cx.sql.manifests.manifestInfo);
}

/** See Store.getManifestByReference. */
export function getManifestByReference(
  cx: StoreContext,
  repo: string,
  reference: string | Reference,
  options: { head?: boolean } = {},
): ManifestInfo | StoredManifest {
  const { tag, digest } = referenceOf(reference);
  const sql = cx.sql.manifests;
  if (digest !== undefined) return readManifest(cx, repo, digest, options.head ? sql.manifestInfo : sql.manifestWithPayload);
  const statement = options.head ? sql.manifestInfoByTag : sql.manifestWithPayloadByTag;
  return cx.read(() => {
    const row = statement.get({ repository: repo, tag }) as ManifestRow | undefined;
    if (row === undefined) notFound(cx, repo, `tag ${repo}:${tag} is not known`);
    return toManifest(repo, row);
  });
}

/** See Store.deleteManifest. */
export function deleteManifest(cx: StoreContext, repo: string, digest: string, ctx?: Context): void {
  const actor = actorOf(ctx);
  cx.write(() => {
    const { repositoryId, manifestId } = resolveManifest(cx, repo, digest);
    refuseIfChild(cx, repo, repositoryId, digest);
    removeManifest(cx, repo, { id: manifestId, digest }, actor, ctx?.admin === true);
  });
}

/** See Store.referrers. */
export function referrers(cx: StoreContext, repo: string, digest: string, filter: { artifactType?: string } = {}): Descriptor[] {
  const artifactType = filter.artifactType;
  return cx.snapshot(() => {
    const repositoryId = cx.sql.repositories.repositoryId.get({ repository: repo });
    if (repositoryId === undefined) return [];
    const rows = cx.sql.manifests.referrers.all({ repositoryId, digest, artifactType: artifactType ?? null }) as ReferrerRow[];
    return rows.map(toReferrer);
  });
}
