// check and stats on PostgreSQL, each in one REPEATABLE READ snapshot, with
// the rules of inspection.ts. PostgreSQL enforces foreign keys on every
// write; its integrity check is a full read of every table, and amcheck's
// index verification where that extension is installed.

import { topOf } from '../arguments.js';
import { StoreError } from '../errors.js';
import { emptyCheck, manifestProblems, referenceProblems, type CheckedManifestRow, type ReferenceRows } from '../inspection.js';
import type { DatabaseCheck, StoreStats } from '../types.js';
import type { PgContext, TxSql } from './context.js';
import { sizeProblems } from './sizes.js';

/** The reference checks' statements: a tag, a blob reference, a child that points outside its repository. */
async function referenceRows(sql: TxSql): Promise<ReferenceRows> {
  const badTags = await sql<ReferenceRows['badTags']>`
    SELECT r.name AS repository, t.name AS tag, m.id AS "manifestId"
    FROM tag t
    JOIN repository r ON r.id = t.repository_id
    LEFT JOIN manifest m ON m.id = t.manifest_id
    WHERE m.id IS NULL OR m.repository_id <> t.repository_id`;
  const unlinkedBlobs = await sql<ReferenceRows['unlinkedBlobs']>`
    SELECT r.name AS repository, m.digest AS manifest, mb.digest AS blob
    FROM manifest_blob mb
    JOIN manifest m ON m.id = mb.manifest_id
    JOIN repository r ON r.id = m.repository_id
    WHERE NOT EXISTS (SELECT 1 FROM blob_link l WHERE l.repository_id = m.repository_id AND l.digest = mb.digest)
    ORDER BY r.name, m.digest, mb.digest`;
  const missingChildren = await sql<ReferenceRows['missingChildren']>`
    SELECT r.name AS repository, p.digest AS parent, c.digest AS child
    FROM manifest_child c
    JOIN manifest p ON p.id = c.parent_id
    JOIN repository r ON r.id = p.repository_id
    WHERE NOT EXISTS (SELECT 1 FROM manifest m WHERE m.repository_id = c.repository_id AND m.digest = c.digest)
    ORDER BY r.name, p.digest, c.digest`;
  const [counts] = await sql<{ tags: number; blobReferences: number }[]>`
    SELECT (SELECT count(*) FROM tag) AS tags, (SELECT count(*) FROM manifest_blob) AS "blobReferences"`;
  return { badTags, unlinkedBlobs, missingChildren, ...counts };
}

// The store's tables, each read whole by the integrity check.
const TABLES = ['repository', 'manifest', 'manifest_payload', 'tag', 'tag_history', 'blob', 'blob_link', 'manifest_blob', 'manifest_child', 'event', 'event_head', 'notification_cursor'];

/**
 * PostgreSQL's own reading of the store: every table scanned whole (a damaged
 * page stops the scan with data_corrupted, or a checksum failure where data
 * checksums are on), and every B-tree index verified by amcheck's
 * bt_index_check where the extension is installed.
 */
async function checkIntegrity(sql: TxSql): Promise<void> {
  for (const table of TABLES) {
    // `ctid IS NOT NULL` keeps the planner on the table's pages rather than an index-only count.
    await sql`SELECT count(*) FROM ${sql(table)} WHERE ctid IS NOT NULL`;
  }
  const [{ amcheck }] = await sql<{ amcheck: boolean }[]>`SELECT to_regproc('bt_index_check') IS NOT NULL AS amcheck`;
  if (!amcheck) return;
  await sql`
    SELECT bt_index_check(i.indexrelid)
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_am a ON a.oid = c.relam AND a.amname = 'btree'
    WHERE i.indrelid = ANY(${TABLES.map((table) => `${table}`)}::regclass[])`;
}

/** See Store.check. */
export async function check(cx: PgContext, options: { onProgress?: (done: number, total: number) => void } = {}): Promise<DatabaseCheck> {
  let result = emptyCheck();
  try {
    await cx.snapshot(async (sql) => {
      result = emptyCheck();
      await checkIntegrity(sql);
      result.checked.integrity = true;
      // Enforced by PostgreSQL on every write: nothing can break them.
      result.checked.foreignKeys = true;
      await checkManifests(sql, result, options.onProgress);
      referenceProblems(result, await referenceRows(sql));
      result.problems.push(...(await sizeProblems(sql)));
    });
  } catch (error) {
    // Damage that stops PostgreSQL reading is what a check is for: a problem
    // found. Anything else says nothing about the data and is the caller's error.
    if (!(error instanceof StoreError) || error.code !== 'DATABASE_CORRUPT') throw error;
    result.problems.push({ kind: 'integrity', subject: 'database', detail: `PostgreSQL stopped reading: ${error.message}` });
    result.complete = false;
  }
  return result;
}

/** Every stored manifest re-hashed against its digest and size, read through a cursor a batch at a time. */
async function checkManifests(sql: TxSql, result: DatabaseCheck, onProgress?: (done: number, total: number) => void): Promise<void> {
  const [{ total }] = await sql<{ total: number }[]>`SELECT count(*) AS total FROM manifest`;
  onProgress?.(0, total);
  const rows = sql<CheckedManifestRow[]>`
    SELECT r.name AS repository, m.digest, m.size, p.payload
    FROM manifest m
    JOIN repository r ON r.id = m.repository_id
    LEFT JOIN manifest_payload p ON p.manifest_id = m.id
    ORDER BY m.id`.cursor(100);
  for await (const batch of rows) {
    for (const row of batch) {
      result.checked.manifests++;
      onProgress?.(result.checked.manifests, total);
      result.problems.push(...manifestProblems(row));
    }
  }
}

/** See Store.stats. */
export async function stats(cx: PgContext, options: { top?: number } = {}): Promise<StoreStats> {
  const top = topOf(options.top);
  return cx.snapshot(async (sql) => {
    const [counts] = await sql<StoreStats['counts'][]>`
      SELECT
        (SELECT count(*) FROM repository) AS repositories,
        (SELECT count(*) FROM manifest) AS manifests,
        (SELECT coalesce(sum(size), 0)::bigint FROM manifest) AS "manifestBytes",
        (SELECT count(*) FROM tag) AS tags,
        (SELECT count(*) FROM blob) AS blobs,
        (SELECT coalesce(sum(size), 0)::bigint FROM blob) AS "blobBytes",
        (SELECT count(*) FROM blob_link) AS "blobLinks",
        (SELECT count(*) FROM event) AS events`;
    const largestRepositories = await sql<StoreStats['largestRepositories']>`
      SELECT
        r.name AS repository,
        (SELECT count(*) FROM manifest m WHERE m.repository_id = r.id) AS manifests,
        (SELECT count(*) FROM tag t WHERE t.repository_id = r.id) AS tags,
        (SELECT count(*) FROM blob_link l WHERE l.repository_id = r.id) AS blobs,
        (SELECT coalesce(sum(b.size), 0)::bigint FROM blob_link l JOIN blob b ON b.digest = l.digest WHERE l.repository_id = r.id) AS "blobBytes"
      FROM repository r
      ORDER BY "blobBytes" DESC, manifests DESC, r.name
      LIMIT ${top}`;
    const [size] = await sql<{ bytes: number; pageSize: number }[]>`
      SELECT pg_database_size(current_database()) AS bytes, current_setting('block_size')::int AS "pageSize"`;
    const database = {
      file: cx.location,
      fileBytes: size.bytes,
      walBytes: 0,
      pageSize: size.pageSize,
      pages: Math.ceil(size.bytes / size.pageSize),
      freePages: 0,
      server: 'PostgreSQL',
    };
    return { counts: { ...counts }, database, largestRepositories: [...largestRepositories] };
  });
}
