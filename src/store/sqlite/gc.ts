// What the garbage collector may take, and its deletes. Each collect method
// checks the listing's own rule again inside the delete's transaction, so a
// manifest tagged or a blob linked between the listing and the delete stays.

import type Database from 'better-sqlite3';
import { prepareAll } from './connection.js';
import { actorOf, timeOf } from '../arguments.js';
import { removeBlob, whileBlobUnknown, whileBlobUnknownAwaiting } from './blobs.js';
import { toBlob, type BlobRow } from '../rows.js';
import type { StoreContext } from './context.js';
import { StoreError } from '../errors.js';
import { refuseIfChild, removeManifest } from './manifests.js';
import { resolveManifest } from './repositories.js';
import type { BlobInfo, Context, UntaggedManifest } from '../types.js';
import type { LockedAction } from '../contract.js';

// The rules as fixed SQL fragments, shared by each listing and the re-check
// inside its delete, so that the two cannot drift.
// A manifest: last pushed before :before, and no tag, no index in its
// repository and no present subject keeps it alive.
const COLLECTABLE_MANIFEST = `
  m.pushed_at < :before
  AND NOT EXISTS (SELECT 1 FROM tag t WHERE t.manifest_id = m.id)
  AND NOT EXISTS (
    SELECT 1 FROM manifest_child c
    WHERE c.repository_id = m.repository_id AND c.digest = m.digest)
  AND NOT EXISTS (
    SELECT 1 FROM manifest s
    WHERE s.repository_id = m.repository_id AND s.digest = m.subject)`;
// A blob: known before :before, linked nowhere since, referenced by no manifest.
const COLLECTABLE_BLOB = `
  b.created_at < :before
  AND NOT EXISTS (SELECT 1 FROM manifest_blob mb WHERE mb.digest = b.digest)
  AND NOT EXISTS (SELECT 1 FROM blob_link l WHERE l.digest = b.digest AND l.linked_at >= :before)`;

const GC_SQL = {
  untaggedManifests: `
    SELECT
      r.name AS repository,
      m.digest,
      m.created_at
    FROM manifest m
    JOIN repository r ON r.id = m.repository_id
    WHERE ${COLLECTABLE_MANIFEST}
    ORDER BY r.name, m.digest`,
  manifestCollectable: `SELECT 1 FROM manifest m WHERE m.id = :manifestId AND ${COLLECTABLE_MANIFEST}`,
  unreferencedBlobs: `
    SELECT
      b.digest,
      b.size,
      b.created_at
    FROM blob b
    WHERE ${COLLECTABLE_BLOB}
    ORDER BY b.digest`,
  blobCollectable: `SELECT 1 FROM blob b WHERE b.digest = :digest AND ${COLLECTABLE_BLOB}`,
};

/** @internal */
export function prepareGcStatements(db: Database.Database): Record<keyof typeof GC_SQL, Database.Statement> {
  return prepareAll(db, GC_SQL, ['manifestCollectable', 'blobCollectable']);
}

interface UntaggedRow {
  repository: string;
  digest: string;
  created_at: number;
}

function toUntagged(row: UntaggedRow): UntaggedManifest {
  return { repository: row.repository, digest: row.digest, createdAt: new Date(row.created_at) };
}

/** See Store.untaggedManifests. */
export function untaggedManifests(cx: StoreContext, options: { olderThan?: Date } = {}): UntaggedManifest[] {
  const before = timeOf(options.olderThan);
  return cx.read(() => (cx.sql.gc.untaggedManifests.all({ before }) as UntaggedRow[]).map(toUntagged));
}

/** See Store.unreferencedBlobs. */
export function unreferencedBlobs(cx: StoreContext, options: { olderThan?: Date } = {}): BlobInfo[] {
  const before = timeOf(options.olderThan);
  return cx.read(() => (cx.sql.gc.unreferencedBlobs.all({ before }) as BlobRow[]).map(toBlob));
}

/** See Store.collectManifest. */
export function collectManifest(cx: StoreContext, repo: string, digest: string, ctx?: Context, options: { olderThan?: Date } = {}): void {
  const actor = actorOf(ctx);
  const before = timeOf(options.olderThan);
  cx.write(() => {
    const { repositoryId, manifestId } = resolveManifest(cx, repo, digest);
    refuseIfChild(cx, repo, repositoryId, digest);
    // The collectable rule covers tags too; checked first for a message that names them.
    const tags = cx.sql.tags.tagsOfManifest.all({ manifestId }) as string[];
    if (tags.length > 0) throw new StoreError('MANIFEST_REFERENCED', `${repo}@${digest} is tagged ${tags.join(', ')}`, { tags });
    if (cx.sql.gc.manifestCollectable.get({ manifestId, before }) === undefined) {
      throw new StoreError('MANIFEST_REFERENCED', `${repo}@${digest} is kept alive by its subject, or is too recent`);
    }
    removeManifest(cx, repo, { id: manifestId, digest }, actor);
  });
}

/** See Store.collectBlob: the synchronous face, whose `removeFile` must not return a promise. */
export function collectBlob(
  cx: StoreContext,
  digest: string,
  ctx?: Context,
  options: { olderThan?: Date; removeFile?: () => void } = {},
): void {
  deleteCollectable(cx, digest, ctx, options);
  // A second transaction, after the row's delete has committed.
  if (options.removeFile) whileBlobUnknown(cx, digest, options.removeFile);
}

/** See Store.collectBlob: the asynchronous face, whose `removeFile` may return a promise. */
export async function collectBlobAwaiting(
  cx: StoreContext,
  digest: string,
  ctx?: Context,
  options: { olderThan?: Date; removeFile?: LockedAction } = {},
): Promise<void> {
  deleteCollectable(cx, digest, ctx, options);
  if (options.removeFile) await whileBlobUnknownAwaiting(cx, digest, options.removeFile);
}

function deleteCollectable(cx: StoreContext, digest: string, ctx: Context | undefined, options: { olderThan?: Date }): void {
  const actor = actorOf(ctx);
  const before = timeOf(options.olderThan);
  cx.write(() => removeBlob(cx, digest, actor, () => cx.sql.gc.blobCollectable.get({ digest, before }) !== undefined));
}
