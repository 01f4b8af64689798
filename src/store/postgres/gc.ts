// What the garbage collector may take on PostgreSQL, and its deletes, by the
// rules of the SQLite store's gc.ts. Each collect method locks its row, then
// checks the listing's rule again in a later statement (one that sees what
// committed while it waited), so a manifest tagged or a blob linked on
// another replica between the listing and the delete stays.

import { actorOf, timeOf } from '../arguments.js';
import { toBlob, type BlobRow } from '../rows.js';
import { StoreError } from '../errors.js';
import type { BlobInfo, Context, UntaggedManifest } from '../types.js';
import type { LockedAction } from '../contract.js';
import { removeBlob, whileBlobUnknown } from './blobs.js';
import type { PgContext, Sql, TxSql } from './context.js';
import { refuseIfChild, removeManifest } from './manifests.js';
import { resolveManifest } from './repositories.js';

// The rules as fragments, shared by each listing and the re-check inside its
// delete, so that the two cannot drift (the same rules as gc.ts's SQL).
// A manifest: last pushed before `before`, and no tag, no index in its
// repository and no present subject keeps it alive.
export const collectableManifest = (sql: Sql | TxSql, before: number) => sql`
  m.pushed_at < ${before}
  AND NOT EXISTS (SELECT 1 FROM tag t WHERE t.manifest_id = m.id)
  AND NOT EXISTS (SELECT 1 FROM manifest_child c WHERE c.repository_id = m.repository_id AND c.digest = m.digest)
  AND NOT EXISTS (SELECT 1 FROM manifest s WHERE s.repository_id = m.repository_id AND s.digest = m.subject)`;
// A blob: known before `before`, linked nowhere since, referenced by no manifest.
const collectableBlob = (sql: Sql | TxSql, before: number) => sql`
  b.created_at < ${before}
  AND NOT EXISTS (SELECT 1 FROM manifest_blob mb WHERE mb.digest = b.digest)
  AND NOT EXISTS (SELECT 1 FROM blob_link l WHERE l.digest = b.digest AND l.linked_at >= ${before})`;

/** See Store.untaggedManifests. */
export async function untaggedManifests(cx: PgContext, options: { olderThan?: Date } = {}): Promise<UntaggedManifest[]> {
  const before = timeOf(options.olderThan);
  const rows = await cx.read((sql) => sql<{ repository: string; digest: string; created_at: number }[]>`
    SELECT r.name AS repository, m.digest, m.created_at
    FROM manifest m
    JOIN repository r ON r.id = m.repository_id
    WHERE ${collectableManifest(sql, before)}
    ORDER BY r.name, m.digest`);
  return rows.map((row) => ({ repository: row.repository, digest: row.digest, createdAt: new Date(row.created_at) }));
}

/** See Store.unreferencedBlobs. */
export async function unreferencedBlobs(cx: PgContext, options: { olderThan?: Date } = {}): Promise<BlobInfo[]> {
  const before = timeOf(options.olderThan);
  const rows = await cx.read((sql) => sql<BlobRow[]>`
    SELECT b.digest, b.size, b.created_at FROM blob b WHERE ${collectableBlob(sql, before)} ORDER BY b.digest`);
  return rows.map(toBlob);
}

/** See Store.collectManifest. */
export async function collectManifest(
  cx: PgContext,
  repo: string,
  digest: string,
  ctx?: Context,
  options: { olderThan?: Date } = {},
): Promise<void> {
  const actor = actorOf(ctx);
  const before = timeOf(options.olderThan);
  await cx.write(async (tx) => {
    // Locked: a tag write (its foreign key) or a delete elsewhere waits for this commit.
    const { repositoryId, manifestId } = await resolveManifest(tx.sql, repo, digest, true);
    await refuseIfChild(tx, repo, repositoryId, digest);
    // The collectable rule covers tags too; checked first for a message that names them.
    const tags = await tx.sql<{ name: string }[]>`SELECT name FROM tag WHERE manifest_id = ${manifestId} ORDER BY name`;
    if (tags.length > 0) {
      const names = tags.map((row) => row.name);
      throw new StoreError('MANIFEST_REFERENCED', `${repo}@${digest} is tagged ${names.join(', ')}`, { tags: names });
    }
    const [collectable] = await tx.sql`SELECT 1 FROM manifest m WHERE m.id = ${manifestId} AND ${collectableManifest(tx.sql, before)}`;
    if (collectable === undefined) {
      throw new StoreError('MANIFEST_REFERENCED', `${repo}@${digest} is kept alive by its subject, or is too recent`);
    }
    await removeManifest(tx, repo, { id: manifestId, digest }, actor);
  });
}

/** See Store.collectBlob. */
export async function collectBlob(
  cx: PgContext,
  digest: string,
  ctx?: Context,
  options: { olderThan?: Date; removeFile?: LockedAction } = {},
): Promise<void> {
  const actor = actorOf(ctx);
  const before = timeOf(options.olderThan);
  await cx.write((tx) =>
    removeBlob(tx, digest, actor, async (sql) => {
      const [row] = await sql`SELECT 1 FROM blob b WHERE b.digest = ${digest} AND ${collectableBlob(sql, before)}`;
      return row !== undefined;
    }),
  );
  // A second transaction, after the row's delete has committed, under the digest's lock.
  if (options.removeFile) await whileBlobUnknown(cx, digest, options.removeFile);
}
