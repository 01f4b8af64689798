// What an operator asks of the whole database: is it sound and does it agree
// with itself (check), and how much does it hold (stats). Each reads in one
// snapshot, so that its figures agree with each other on a live database.

import { statSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { topOf } from '../arguments.js';
import { prepareAll } from './connection.js';
import type { StoreContext } from './context.js';
import { StoreError } from '../errors.js';
import { emptyCheck, manifestProblems, referenceProblems, type CheckedManifestRow, type ReferenceRows } from '../inspection.js';
import type { DatabaseCheck, StoreStats } from '../types.js';
import { sizeProblems } from './sizes.js';

const INSPECTION_SQL = {
  integrityCheck: 'PRAGMA integrity_check',
  foreignKeyCheck: 'PRAGMA foreign_key_check',
  manifestCount: 'SELECT count(*) FROM manifest',
  // LEFT JOIN: a manifest row without its bytes is a problem to report.
  manifests: `
    SELECT
      r.name AS repository,
      m.digest,
      m.size,
      p.payload
    FROM manifest m
    JOIN repository r ON r.id = m.repository_id
    LEFT JOIN manifest_payload p ON p.manifest_id = m.id
    ORDER BY m.id`,
  // A tag must point at a manifest of its own repository.
  badTags: `
    SELECT
      r.name AS repository,
      t.name AS tag,
      m.id AS manifestId
    FROM tag t
    JOIN repository r ON r.id = t.repository_id
    LEFT JOIN manifest m ON m.id = t.manifest_id
    WHERE m.id IS NULL OR m.repository_id <> t.repository_id`,
  tagCount: 'SELECT count(*) FROM tag',
  // The registry accepts a manifest only when its config and layers are linked
  // in the repository; a reference without a link is an inconsistency.
  unlinkedBlobs: `
    SELECT
      r.name AS repository,
      m.digest AS manifest,
      mb.digest AS blob
    FROM manifest_blob mb
    JOIN manifest m ON m.id = mb.manifest_id
    JOIN repository r ON r.id = m.repository_id
    WHERE NOT EXISTS (
      SELECT 1 FROM blob_link l WHERE l.repository_id = m.repository_id AND l.digest = mb.digest)
    ORDER BY r.name, m.digest, mb.digest`,
  blobReferenceCount: 'SELECT count(*) FROM manifest_blob',
  // Likewise an index's children must be in its repository.
  missingChildren: `
    SELECT
      r.name AS repository,
      p.digest AS parent,
      c.digest AS child
    FROM manifest_child c
    JOIN manifest p ON p.id = c.parent_id
    JOIN repository r ON r.id = p.repository_id
    WHERE NOT EXISTS (SELECT 1 FROM manifest m WHERE m.repository_id = c.repository_id AND m.digest = c.digest)
    ORDER BY r.name, p.digest, c.digest`,
  counts: `
    SELECT
      (SELECT count(*) FROM repository) AS repositories,
      (SELECT count(*) FROM manifest) AS manifests,
      (SELECT coalesce(sum(size), 0) FROM manifest) AS manifestBytes,
      (SELECT count(*) FROM tag) AS tags,
      (SELECT count(*) FROM blob) AS blobs,
      (SELECT coalesce(sum(size), 0) FROM blob) AS blobBytes,
      (SELECT count(*) FROM blob_link) AS blobLinks,
      (SELECT count(*) FROM event) AS events`,
  // Largest by the bytes of the blobs linked there, then by manifests.
  largestRepositories: `
    SELECT
      r.name AS repository,
      (SELECT count(*) FROM manifest m WHERE m.repository_id = r.id) AS manifests,
      (SELECT count(*) FROM tag t WHERE t.repository_id = r.id) AS tags,
      (SELECT count(*) FROM blob_link l WHERE l.repository_id = r.id) AS blobs,
      (SELECT coalesce(sum(b.size), 0) FROM blob_link l JOIN blob b ON b.digest = l.digest
        WHERE l.repository_id = r.id) AS blobBytes
    FROM repository r
    ORDER BY blobBytes DESC, manifests DESC, r.name
    LIMIT :top`,
  pageSize: 'PRAGMA page_size',
  pageCount: 'PRAGMA page_count',
  freePages: 'PRAGMA freelist_count',
};

/** @internal */
export function prepareInspectionStatements(db: Database.Database): Record<keyof typeof INSPECTION_SQL, Database.Statement> {
  return prepareAll(db, INSPECTION_SQL, ['manifestCount', 'tagCount', 'blobReferenceCount', 'pageSize', 'pageCount', 'freePages']);
}

type Statements = ReturnType<typeof prepareInspectionStatements>;

// --- check ----------------------------------------------------------------------

/** See Store.check. */
export function check(cx: StoreContext, options: { onProgress?: (done: number, total: number) => void } = {}): DatabaseCheck {
  const sql = cx.sql.inspection;
  let result = emptyCheck();
  try {
    cx.snapshot(() => {
      result = emptyCheck(); // afresh, should a busy read make the snapshot start over
      checkStructure(sql, result);
      checkManifests(sql, result, options.onProgress);
      checkReferences(sql, result);
      result.problems.push(...sizeProblems(cx));
    });
  } catch (error) {
    // Damage that stops SQLite reading is what a check is for: a problem
    // found, listed with the rest. Anything else (busy, i/o) says nothing
    // about the data and is the caller's error.
    if (!(error instanceof StoreError) || error.code !== 'DATABASE_CORRUPT') throw error;
    const reason = error.cause instanceof Error ? error.cause.message : error.message;
    result.problems.push({ kind: 'integrity', subject: 'database', detail: `SQLite stopped reading: ${reason}` });
    result.complete = false;
  }
  return result;
}

/** SQLite's own checks of the file and of the schema's foreign keys. */
function checkStructure(sql: Statements, { checked, problems }: DatabaseCheck): void {
  for (const row of sql.integrityCheck.all() as { integrity_check: string }[]) {
    if (row.integrity_check !== 'ok') problems.push({ kind: 'integrity', subject: 'database', detail: row.integrity_check });
  }
  checked.integrity = true;
  for (const row of sql.foreignKeyCheck.all() as { table: string; rowid: number | null; parent: string }[]) {
    problems.push({ kind: 'foreign-key', subject: `${row.table} row ${row.rowid ?? '?'}`, detail: `refers to a missing ${row.parent}` });
  }
  checked.foreignKeys = true;
}

/** Every stored manifest re-hashed against its digest and size, each on its own: a damaged row must not stop the rest. */
function checkManifests(sql: Statements, { checked, problems }: DatabaseCheck, onProgress?: (done: number, total: number) => void): void {
  const total = sql.manifestCount.get() as number;
  onProgress?.(0, total);
  for (const row of sql.manifests.iterate() as Iterable<CheckedManifestRow>) {
    checked.manifests++;
    onProgress?.(checked.manifests, total);
    problems.push(...manifestProblems(row));
  }
}

/** Tags, blob references and children that point at what is not in their repository. */
function checkReferences(sql: Statements, result: DatabaseCheck): void {
  referenceProblems(result, {
    badTags: sql.badTags.all() as ReferenceRows['badTags'],
    tags: sql.tagCount.get() as number,
    unlinkedBlobs: sql.unlinkedBlobs.all() as ReferenceRows['unlinkedBlobs'],
    blobReferences: sql.blobReferenceCount.get() as number,
    missingChildren: sql.missingChildren.all() as ReferenceRows['missingChildren'],
  });
}

// --- stats ----------------------------------------------------------------------

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** See Store.stats. */
export function stats(cx: StoreContext, options: { top?: number } = {}): StoreStats {
  const top = topOf(options.top);
  const sql = cx.sql.inspection;
  const { counts, largestRepositories, pages } = cx.snapshot(() => ({
    counts: sql.counts.get() as StoreStats['counts'],
    largestRepositories: sql.largestRepositories.all({ top }) as StoreStats['largestRepositories'],
    pages: { pageSize: sql.pageSize.get() as number, pages: sql.pageCount.get() as number, freePages: sql.freePages.get() as number },
  }));
  const file = cx.file;
  const database = { file, fileBytes: fileSize(file), walBytes: fileSize(`${file}-wal`), ...pages };
  return { counts, database, largestRepositories };
}
