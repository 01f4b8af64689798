// Blobs: known once per digest, linked into the repositories that may read
// them. A registry places a blob's file inside linkBlob's transaction and
// removes it only while no row names the digest, both under the write lock.

import type Database from 'better-sqlite3';
import { prepareAll } from './connection.js';
import { actorOf, pageOf } from '../arguments.js';
import type { StoreContext } from './context.js';
import { NotFoundError, StoreError } from '../errors.js';
import { runCallback } from './errors.js';
import { recordEvent } from './events.js';
import { toBlob, type BlobRow } from '../rows.js';
import { ensureRepository, requireRepository } from './repositories.js';
import type { BlobInfo, Context, PageOptions } from '../types.js';

const BLOB_SQL = {
  blobSize: 'SELECT size FROM blob WHERE digest = :digest',
  insertBlob: 'INSERT INTO blob (digest, size, created_at) VALUES (:digest, :size, :now)',
  linkBlob: `
    INSERT INTO blob_link (repository_id, digest, linked_at)
    VALUES (:repositoryId, :digest, :now)
    ON CONFLICT (repository_id, digest) DO UPDATE SET linked_at = excluded.linked_at`,
  statBlob: `
    SELECT
      b.digest,
      b.size,
      b.created_at
    FROM repository r
    JOIN blob_link l ON l.repository_id = r.id AND l.digest = :digest
    JOIN blob b ON b.digest = l.digest
    WHERE r.name = :repository`,
  unlinkBlob: 'DELETE FROM blob_link WHERE repository_id = :repositoryId AND digest = :digest',
  blobLinked: 'SELECT 1 FROM blob_link WHERE repository_id = :repositoryId AND digest = :digest',
  blobReferenced: 'SELECT 1 FROM manifest_blob WHERE digest = :digest LIMIT 1',
  // The same, by manifests of one repository only: what an unlink must not take from under them.
  blobReferencedIn: `
    SELECT 1
    FROM manifest_blob mb
    JOIN manifest m ON m.id = mb.manifest_id
    WHERE mb.digest = :digest AND m.repository_id = :repositoryId
    LIMIT 1`,
  deleteBlob: 'DELETE FROM blob WHERE digest = :digest',
  allBlobs: `
    SELECT
      digest,
      size,
      created_at
    FROM blob
    WHERE digest > :last
    ORDER BY digest
    LIMIT :limit`,
};

/** @internal */
export function prepareBlobStatements(db: Database.Database): Record<keyof typeof BLOB_SQL, Database.Statement> {
  return prepareAll(db, BLOB_SQL, ['blobSize', 'blobLinked', 'blobReferenced', 'blobReferencedIn']);
}

// --- inside a transaction -----------------------------------------------------

/**
 * Deletes a blob that no manifest references, with its DELETE BLOB event.
 * `stillCollectable`, when given, is asked once the blob is known to exist.
 * @throws NotFoundError BLOB_UNKNOWN; StoreError BLOB_REFERENCED.
 */
export function removeBlob(cx: StoreContext, digest: string, actor: string, stillCollectable?: () => boolean): void {
  const sql = cx.sql.blobs;
  if (sql.blobReferenced.get({ digest }) !== undefined) {
    throw new StoreError('BLOB_REFERENCED', `blob ${digest} is referenced by a manifest`);
  }
  if (stillCollectable && sql.blobSize.get({ digest }) !== undefined && !stillCollectable()) {
    throw new StoreError('BLOB_REFERENCED', `blob ${digest} was uploaded or linked within the grace period`);
  }
  if (sql.deleteBlob.run({ digest }).changes === 0) throw new NotFoundError('BLOB_UNKNOWN', `blob ${digest} is not known`);
  recordEvent(cx, actor, Date.now(), 'DELETE', 'BLOB', digest, { digest });
}

// --- the store's methods ------------------------------------------------------

/** See Store.linkBlob. */
export function linkBlob(
  cx: StoreContext,
  repo: string,
  blob: { digest: string; size: number },
  ctx?: Context,
  options: { place?: () => void } = {},
): void {
  const { digest, size } = blob;
  const actor = actorOf(ctx);
  const sql = cx.sql.blobs;
  cx.write(() => {
    const now = Date.now();
    const repositoryId = ensureRepository(cx, repo, actor, now);
    const known = sql.blobSize.get({ digest });
    if (known === undefined) sql.insertBlob.run({ digest, size, now });
    else if (known !== size) {
      throw new StoreError('SIZE_INVALID', `blob ${digest} has size ${known}, not ${size}`, { size: known });
    }
    if (options.place) runCallback(options.place);
    sql.linkBlob.run({ repositoryId, digest, now });
  });
}

/** See Store.mountBlob. */
export function mountBlob(cx: StoreContext, repo: string, digest: string, from: string, ctx?: Context): BlobInfo {
  const actor = actorOf(ctx);
  const sql = cx.sql.blobs;
  return cx.write(() => {
    const row = sql.statBlob.get({ repository: from, digest }) as BlobRow | undefined;
    if (row === undefined) throw new NotFoundError('BLOB_UNKNOWN', `blob ${digest} is not known in ${from}`);
    const now = Date.now();
    const repositoryId = ensureRepository(cx, repo, actor, now);
    sql.linkBlob.run({ repositoryId, digest, now });
    return toBlob(row);
  });
}

/** See Store.statBlob. */
export function statBlob(cx: StoreContext, repo: string, digest: string): BlobInfo {
  return cx.read(() => {
    const row = cx.sql.blobs.statBlob.get({ repository: repo, digest }) as BlobRow | undefined;
    if (row === undefined) {
      requireRepository(cx, repo);
      throw new NotFoundError('BLOB_UNKNOWN', `blob ${digest} is not known in ${repo}`);
    }
    return toBlob(row);
  });
}

/** See Store.unlinkBlob. */
export function unlinkBlob(cx: StoreContext, repo: string, digest: string, ctx?: Context): void {
  const actor = actorOf(ctx);
  const sql = cx.sql.blobs;
  cx.write(() => {
    const repositoryId = requireRepository(cx, repo);
    if (sql.unlinkBlob.run({ repositoryId, digest }).changes === 0) {
      throw new NotFoundError('BLOB_UNKNOWN', `blob ${digest} is not known in ${repo}`);
    }
    // After the not-found check, so that a blob not linked here is BLOB_UNKNOWN
    // whatever references it; throwing rolls the unlink back.
    if (sql.blobReferencedIn.get({ repositoryId, digest }) !== undefined) {
      throw new StoreError('BLOB_REFERENCED', `blob ${digest} is referenced by a manifest of ${repo}`);
    }
    recordEvent(cx, actor, Date.now(), 'DELETE', 'BLOB', `${repo}@${digest}`, { repository: repo, digest });
  });
}

/** See Store.deleteBlob. */
export function deleteBlob(cx: StoreContext, digest: string, ctx?: Context): void {
  const actor = actorOf(ctx);
  cx.write(() => removeBlob(cx, digest, actor));
}

/** See Store.allBlobs. */
export function allBlobs(cx: StoreContext, page?: PageOptions): BlobInfo[] {
  const { limit, last } = pageOf(page);
  return cx.read(() => (cx.sql.blobs.allBlobs.all({ last, limit }) as BlobRow[]).map(toBlob));
}

/** See Store.whileBlobUnknown. */
export function whileBlobUnknown(cx: StoreContext, digest: string, fn: () => void): boolean {
  const sql = cx.sql.blobs;
  // Most files have their row: a read says so without taking the write lock.
  if (cx.read(() => sql.blobSize.get({ digest })) !== undefined) return false;
  return cx.write(() => {
    if (sql.blobSize.get({ digest }) !== undefined) return false;
    runCallback(fn);
    return true;
  });
}
