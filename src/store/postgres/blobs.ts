// Blobs on PostgreSQL. A blob's file is placed (linkBlob's `place`) and
// removed (whileBlobUnknown's `fn`, collectBlob's `removeFile`) only under a
// transaction-level advisory lock on its digest, which every replica takes:
// a lock on a row cannot guard a digest that has no row yet. Every linkBlob
// takes it, with a file to place or not: one that writes the digest's first
// row must wait for a whileBlobUnknown removing a file of that name.

import { actorOf, pageOf } from '../arguments.js';
import { toBlob, type BlobRow } from '../rows.js';
import { NotFoundError, StoreError } from '../errors.js';
import type { BlobInfo, Context, PageOptions } from '../types.js';
import type { LockedAction } from '../contract.js';
import type { PgContext, TxSql, WriteTx } from './context.js';
import { namespaceOf } from '../grammar.js';
import { ensureRepository, limitOf, lockRepository, recordCreated, repositoryCtes, requireRepository } from './repositories.js';
import { precheckQuota, refuseOverQuota } from './sizes.js';

/**
 * Waits for, then holds until commit, the lock of one digest's file (a 64-bit
 * hash of the digest). Sent at once, so that a caller may pipeline its next
 * statement behind it without awaiting it first.
 */
function lockDigest(sql: TxSql, digest: string): Promise<unknown> {
  return sql`SELECT pg_advisory_xact_lock(hashtextextended(${digest}, 0))`.execute();
}

// --- inside a transaction -----------------------------------------------------

/**
 * Deletes a blob that no manifest references, with its DELETE BLOB event.
 * `stillCollectable`, when given, is asked once the blob is known and locked.
 * @throws NotFoundError BLOB_UNKNOWN; StoreError BLOB_REFERENCED.
 */
export async function removeBlob(
  tx: WriteTx,
  digest: string,
  actor: string,
  stillCollectable?: (sql: TxSql) => Promise<boolean>,
): Promise<void> {
  // Locked first, then checked by later statements: a link committed while
  // this waited for the lock is seen, and a new one waits for this commit.
  const [known] = await tx.sql`SELECT 1 FROM blob WHERE digest = ${digest} FOR UPDATE`;
  const [{ referenced }] = await tx.sql<{ referenced: boolean }[]>`
    SELECT EXISTS (SELECT 1 FROM manifest_blob WHERE digest = ${digest}) AS referenced`;
  if (referenced) throw new StoreError('BLOB_REFERENCED', `blob ${digest} is referenced by a manifest`);
  if (known === undefined) throw new NotFoundError('BLOB_UNKNOWN', `blob ${digest} is not known`);
  if (stillCollectable && !(await stillCollectable(tx.sql))) {
    throw new StoreError('BLOB_REFERENCED', `blob ${digest} was uploaded or linked within the grace period`);
  }
  await tx.sql`DELETE FROM blob WHERE digest = ${digest}`;
  // A manifest push locks the links of its blobs (KEY SHARE), not the blob
  // row: the check above cannot see one that had locked them and commits
  // now. The delete took the links too, so it waited for such a push to
  // commit; asked again in a later statement, its references are seen, and
  // throwing rolls the delete back.
  const [{ again }] = await tx.sql<{ again: boolean }[]>`
    SELECT EXISTS (SELECT 1 FROM manifest_blob WHERE digest = ${digest}) AS again`;
  if (again) throw new StoreError('BLOB_REFERENCED', `blob ${digest} is referenced by a manifest`);
  tx.record(actor, 'DELETE', 'BLOB', digest, { digest });
}

// --- the store's methods ------------------------------------------------------

/** See Store.linkBlob. */
export async function linkBlob(
  cx: PgContext,
  repo: string,
  blob: { digest: string; size: number },
  ctx?: Context,
  options: { place?: LockedAction } = {},
): Promise<void> {
  const { digest, size } = blob;
  const actor = actorOf(ctx);
  const place = options.place;
  await cx.write(async (tx) => {
    // The lock pipelined with the read of the blob's row, which is locked KEY
    // SHARE so that a collection cannot delete it before this commits.
    const [, [existing]] = await Promise.all([
      lockDigest(tx.sql, digest),
      tx.sql<{ size: string }[]>`SELECT size FROM blob WHERE digest = ${digest} FOR KEY SHARE`.execute(),
    ]);
    if (existing !== undefined) refuseOtherSize(digest, Number(existing.size), size);
    const limit = cx.policy.quotas.get(namespaceOf(repo));
    // Checked without a lock before the file is placed, so that a refused blob is seldom moved in.
    if (limit !== undefined) await precheckQuota(tx.sql, repo, limit, size, digest);
    // Placed before any row is locked: the hot rows (a namespace's, the
    // registry's) are locked only from then to the commit, never across the
    // placing of a file (an object store's copy).
    if (place) await tx.callback(place);
    const now = Date.now();
    if (limit !== undefined) {
      // Exact, under the locks, in their order (repository, then namespace).
      // A refusal here (a concurrent link took the room) leaves the placed
      // file without a row if its digest has none: gc's sweep of such files removes it.
      await lockRepository(tx, repo, actor, now);
      await refuseOverQuota(cx, tx, repo, digest, size);
    }
    let created = false;
    let known: number | null = null;
    while (known === null) {
      const [row] = await linkStatement(tx, repo, { digest, size }, now);
      // No row: the repository, or no blob row: the blob's, committed by a concurrent transaction after this statement's snapshot.
      if (row === undefined) continue;
      created ||= row.created;
      known = row.known;
    }
    recordCreated(tx, repo, actor, created);
    refuseOtherSize(digest, Number(known), size);
  });
}

/** @throws StoreError SIZE_INVALID when the size recorded for the digest is not the blob's. */
function refuseOtherSize(digest: string, known: number, size: number): void {
  if (known !== size) throw new StoreError('SIZE_INVALID', `blob ${digest} has size ${known}, not ${size}`, { size: known });
}

/**
 * The repository (found or created), the blob's row (inserted, or found and
 * locked KEY SHARE so that a collection cannot delete it before this
 * commits) and the link, in one statement; the link only when the sizes agree.
 */
function linkStatement(tx: WriteTx, repo: string, blob: { digest: string; size: number }, now: number) {
  const { digest, size } = blob;
  return tx.sql<{ created: boolean; known: number | null }[]>`
    WITH ${repositoryCtes(tx.sql, repo, now)}, inserted AS (
      INSERT INTO blob (digest, size, created_at) VALUES (${digest}, ${size}, ${now})
      ON CONFLICT (digest) DO NOTHING
      RETURNING size
    ), existing AS (
      SELECT size FROM blob WHERE digest = ${digest} FOR KEY SHARE
    ), known AS (
      SELECT size FROM inserted UNION ALL SELECT size FROM existing LIMIT 1
    ), linked AS (
      INSERT INTO blob_link (repository_id, digest, linked_at)
      SELECT repo.id, ${digest}::text, ${now}::bigint FROM repo, known WHERE known.size = ${size}::bigint
      ON CONFLICT (repository_id, digest) DO UPDATE SET linked_at = excluded.linked_at
    )
    SELECT repo.created, (SELECT size FROM known) AS known FROM repo`;
}

/** See Store.mountBlob. */
export async function mountBlob(cx: PgContext, repo: string, digest: string, from: string, ctx?: Context): Promise<BlobInfo> {
  const actor = actorOf(ctx);
  return cx.write(async (tx) => {
    const [row] = await tx.sql<BlobRow[]>`
      SELECT b.digest, b.size, b.created_at
      FROM repository r
      JOIN blob_link l ON l.repository_id = r.id AND l.digest = ${digest}
      JOIN blob b ON b.digest = l.digest
      WHERE r.name = ${from}`;
    if (row === undefined) throw new NotFoundError('BLOB_UNKNOWN', `blob ${digest} is not known in ${from}`);
    const now = Date.now();
    // Under a quota, the repository's row is locked before the namespace's (their order everywhere).
    const quota = cx.policy.quotas.has(namespaceOf(repo));
    const repositoryId = await (quota ? lockRepository : ensureRepository)(tx, repo, actor, now);
    await refuseOverQuota(cx, tx, repo, digest, Number(row.size));
    // The link's foreign key locks the blob row: a concurrent collection waits, or wins and this runs again.
    await tx.sql`
      INSERT INTO blob_link (repository_id, digest, linked_at) VALUES (${repositoryId}, ${digest}, ${now})
      ON CONFLICT (repository_id, digest) DO UPDATE SET linked_at = excluded.linked_at`;
    return toBlob(row);
  });
}

/** See Store.statBlob. */
export async function statBlob(cx: PgContext, repo: string, digest: string): Promise<BlobInfo> {
  return cx.read(async (sql) => {
    const [row] = await sql<BlobRow[]>`
      SELECT b.digest, b.size, b.created_at
      FROM repository r
      JOIN blob_link l ON l.repository_id = r.id AND l.digest = ${digest}
      JOIN blob b ON b.digest = l.digest
      WHERE r.name = ${repo}`;
    if (row === undefined) {
      await requireRepository(sql, repo);
      throw new NotFoundError('BLOB_UNKNOWN', `blob ${digest} is not known in ${repo}`);
    }
    return toBlob(row);
  });
}

/** See Store.unlinkBlob. */
export async function unlinkBlob(cx: PgContext, repo: string, digest: string, ctx?: Context): Promise<void> {
  const actor = actorOf(ctx);
  await cx.write(async (tx) => {
    const repositoryId = await requireRepository(tx.sql, repo);
    const unlinked = await tx.sql`DELETE FROM blob_link WHERE repository_id = ${repositoryId} AND digest = ${digest} RETURNING 1`;
    if (unlinked.length === 0) throw new NotFoundError('BLOB_UNKNOWN', `blob ${digest} is not known in ${repo}`);
    // A later statement than the delete: a manifest committed while the delete waited is seen. Throwing rolls the unlink back.
    const [referenced] = await tx.sql`
      SELECT 1 FROM manifest_blob mb JOIN manifest m ON m.id = mb.manifest_id
      WHERE mb.digest = ${digest} AND m.repository_id = ${repositoryId}
      LIMIT 1`;
    if (referenced !== undefined) throw new StoreError('BLOB_REFERENCED', `blob ${digest} is referenced by a manifest of ${repo}`);
    tx.record(actor, 'DELETE', 'BLOB', `${repo}@${digest}`, { repository: repo, digest });
  });
}

/** See Store.deleteBlob. */
export async function deleteBlob(cx: PgContext, digest: string, ctx?: Context): Promise<void> {
  const actor = actorOf(ctx);
  await cx.write((tx) => removeBlob(tx, digest, actor));
}

/** See Store.allBlobs. */
export async function allBlobs(cx: PgContext, page?: PageOptions): Promise<BlobInfo[]> {
  const { limit, last } = pageOf(page);
  const rows = await cx.read((sql) => sql<BlobRow[]>`
    SELECT digest, size, created_at FROM blob WHERE digest > ${last} ORDER BY digest LIMIT ${limitOf(limit)}`);
  return rows.map(toBlob);
}

/** See Store.whileBlobUnknown. */
export async function whileBlobUnknown(cx: PgContext, digest: string, fn: LockedAction): Promise<boolean> {
  // Most files have their row: a read says so without taking the lock.
  const [known] = await cx.read((sql) => sql`SELECT 1 FROM blob WHERE digest = ${digest}`);
  if (known !== undefined) return false;
  return cx.write(async (tx) => {
    await lockDigest(tx.sql, digest);
    const [again] = await tx.sql`SELECT 1 FROM blob WHERE digest = ${digest}`;
    if (again !== undefined) return false;
    await tx.callback(fn);
    return true;
  });
}
