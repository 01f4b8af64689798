// Blobs: known once per digest, linked into the repositories that may read
// them. A registry places a blob's file in linkBlob and removes it only
// while no row names the digest, both under the digest's lock (locks.ts):
// inside the write transaction for an action that finishes at once, across
// its awaits for one that returns a promise (the asynchronous face only).

import type Database from 'better-sqlite3';
import { prepareAll } from './connection.js';
import { actorOf, pageOf } from '../arguments.js';
import type { StoreContext } from './context.js';
import { NotFoundError, StoreError } from '../errors.js';
import { recordEvent } from './events.js';
import { refuseIfLocked, runLocked, runLockedSync, startAction, type Outcome } from './locks.js';
import { toBlob, type BlobRow } from '../rows.js';
import { ensureRepository, requireRepository } from './repositories.js';
import { refuseOverQuota } from './sizes.js';
import type { BlobInfo, Context, PageOptions } from '../types.js';
import type { LockedAction } from '../contract.js';

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

/** See Store.linkBlob: the synchronous face, whose `place` must not return a promise. */
export function linkBlob(
  cx: StoreContext,
  repo: string,
  blob: { digest: string; size: number },
  ctx?: Context,
  options: { place?: () => void } = {},
): void {
  const actor = actorOf(ctx);
  runLockedSync(cx, blob.digest, () => linkStep(cx, repo, blob, actor, options.place, false));
}

/** See Store.linkBlob: the asynchronous face, whose `place` may return a promise. */
export function linkBlobAwaiting(
  cx: StoreContext,
  repo: string,
  blob: { digest: string; size: number },
  ctx?: Context,
  options: { place?: LockedAction } = {},
): Promise<void> {
  const actor = actorOf(ctx);
  return runLocked(cx, blob.digest, () => linkStep(cx, repo, blob, actor, options.place, true));
}

/**
 * linkBlob in its transaction: the size checked before anything is placed;
 * the digest's lock respected when a file is placed, and when no row names
 * the digest yet (a whileBlobUnknown may be removing a file of that name);
 * the rows written once `place` has succeeded.
 */
function linkStep(
  cx: StoreContext,
  repo: string,
  blob: { digest: string; size: number },
  actor: string,
  place: LockedAction | undefined,
  mayAwait: boolean,
): Outcome<void> {
  const known = knownSize(cx, blob);
  // Before the file is placed: a refused blob is never moved into place.
  refuseOverQuota(cx, repo, blob.digest, blob.size);
  if (place !== undefined || known === undefined) refuseIfLocked(cx, blob.digest);
  const lock = place && startAction(cx, blob.digest, place, mayAwait);
  // After an action that awaited, the size is read again (the row may have
  // been collected meanwhile), and the quota (another link may have used it).
  const finish = () => {
    refuseOverQuota(cx, repo, blob.digest, blob.size);
    writeLink(cx, repo, blob, actor, knownSize(cx, blob));
  };
  if (lock) return { lock, finish };
  return { value: writeLink(cx, repo, blob, actor, known) };
}

/** The size recorded for the blob's digest, if any. @throws StoreError SIZE_INVALID when it is not the blob's. */
function knownSize(cx: StoreContext, { digest, size }: { digest: string; size: number }): number | undefined {
  const known = cx.sql.blobs.blobSize.get({ digest }) as number | undefined;
  if (known !== undefined && known !== size) {
    throw new StoreError('SIZE_INVALID', `blob ${digest} has size ${known}, not ${size}`, { size: known });
  }
  return known;
}

/** The repository (created on first use), the blob's row unless `known`, and the link. */
function writeLink(cx: StoreContext, repo: string, { digest, size }: { digest: string; size: number }, actor: string, known: number | undefined): void {
  const sql = cx.sql.blobs;
  const now = Date.now();
  const repositoryId = ensureRepository(cx, repo, actor, now);
  if (known === undefined) sql.insertBlob.run({ digest, size, now });
  sql.linkBlob.run({ repositoryId, digest, now });
}

/** See Store.mountBlob. */
export function mountBlob(cx: StoreContext, repo: string, digest: string, from: string, ctx?: Context): BlobInfo {
  const actor = actorOf(ctx);
  const sql = cx.sql.blobs;
  return cx.write(() => {
    const row = sql.statBlob.get({ repository: from, digest }) as BlobRow | undefined;
    if (row === undefined) throw new NotFoundError('BLOB_UNKNOWN', `blob ${digest} is not known in ${from}`);
    refuseOverQuota(cx, repo, digest, row.size);
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

/** See Store.whileBlobUnknown: the synchronous face, whose `fn` must not return a promise. */
export function whileBlobUnknown(cx: StoreContext, digest: string, fn: () => void): boolean {
  // Most files have their row: a read says so without taking the write lock.
  if (blobKnown(cx, digest)) return false;
  return runLockedSync(cx, digest, () => unknownStep(cx, digest, fn, false));
}

/** See Store.whileBlobUnknown: the asynchronous face, whose `fn` may return a promise. */
export function whileBlobUnknownAwaiting(cx: StoreContext, digest: string, fn: LockedAction): Promise<boolean> {
  try {
    if (blobKnown(cx, digest)) return Promise.resolve(false);
  } catch (error) {
    return Promise.reject(error);
  }
  return runLocked(cx, digest, () => unknownStep(cx, digest, fn, true));
}

function blobKnown(cx: StoreContext, digest: string): boolean {
  return cx.read(() => cx.sql.blobs.blobSize.get({ digest })) !== undefined;
}

/** whileBlobUnknown in its transaction: `fn` only while no row names the digest, under its lock. */
function unknownStep(cx: StoreContext, digest: string, fn: LockedAction, mayAwait: boolean): Outcome<boolean> {
  if (cx.sql.blobs.blobSize.get({ digest }) !== undefined) return { value: false };
  refuseIfLocked(cx, digest);
  const lock = startAction(cx, digest, fn, mayAwait);
  return lock ? { lock, finish: () => true } : { value: true };
}
