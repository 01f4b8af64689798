// check and stats on PostgreSQL, each in one REPEATABLE READ snapshot, with
// the rules of inspection.ts. PostgreSQL enforces foreign keys on every write
// and has no integrity_check of SQLite's kind (amcheck is the operator's).

import { topOption } from '../arguments.js';
import { emptyCheck, manifestProblems, referenceProblems, type ManifestRow, type ReferenceRows } from '../inspection.js';
import type { DatabaseCheck, StoreStats } from '../types.js';
import type { PgContext, TxSql } from './context.js';

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

/** See MetadataStore.check. */
export async function check(cx: PgContext, options: { onProgress?: (done: number, total: number) => void } = {}): Promise<DatabaseCheck> {
  return cx.snapshot(async (sql) => {
    const result = emptyCheck();
    result.checked.foreignKeys = true;
    const [{ total }] = await sql<{ total: number }[]>`SELECT count(*) AS total FROM manifest`;
    options.onProgress?.(0, total);
    // A cursor: the payloads are read a batch at a time, never all at once.
    const rows = sql<ManifestRow[]>`
      SELECT r.name AS repository, m.digest, m.size, p.payload
      FROM manifest m
      JOIN repository r ON r.id = m.repository_id
      LEFT JOIN manifest_payload p ON p.manifest_id = m.id
      ORDER BY m.id`.cursor(100);
    for await (const batch of rows) {
      for (const row of batch) {
        result.checked.manifests++;
        options.onProgress?.(result.checked.manifests, total);
        result.problems.push(...manifestProblems(row));
      }
    }
    referenceProblems(result, await referenceRows(sql));
    return result;
  });
}

/** See MetadataStore.stats. */
export async function stats(cx: PgContext, options: { top?: number } = {}): Promise<StoreStats> {
  const top = topOption(options.top);
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
    };
    return { counts: { ...counts }, database, largestRepositories: [...largestRepositories] };
  });
}
