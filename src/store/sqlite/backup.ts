// An online copy of the SQLite file through SQLite's backup API, while this
// and other connections keep writing, then quick_check on the copy.

import { closeSync, openSync, rmSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { BackupOptions, BackupResult } from '../types.js';
import { StoreError } from '../errors.js';
import { sqlitePrimaryCode, translateError } from './errors.js';
import { DEFAULT_BACKUP_PAGES_PER_STEP } from '../limits.js';
import type { StoreContext } from './context.js';

/** What a failed step says about the source database rather than the target file. */
const SOURCE_FAILURES = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB', 'SQLITE_BUSY', 'SQLITE_LOCKED']);

/** See MetadataStore.backup. */
export async function backup(cx: StoreContext, target: string, options: BackupOptions = {}): Promise<BackupResult> {
  const step = options.pagesPerStep ?? DEFAULT_BACKUP_PAGES_PER_STEP;
  if (!Number.isSafeInteger(step) || step < 1) throw new StoreError('ARGUMENT_INVALID', 'pagesPerStep must be a positive integer');
  cx.read(() => undefined);
  if (options.replace) rmSync(target, { force: true });
  createTarget(target);
  let pages: number;
  try {
    pages = await copy(cx.db, target, step, options.onProgress);
  } catch (error) {
    rmSync(target, { force: true });
    // Damage or a lock on the source is the database's error; the rest
    // (cannot open, write or fill the target) is the copy's.
    if (SOURCE_FAILURES.has(sqlitePrimaryCode(error) ?? '')) throw translateError(error, cx.file);
    throw new StoreError('BACKUP_FAILED', `backup to ${target} failed: ${(error as Error).message}`, { target }, { cause: error });
  }
  let verdict: string;
  try {
    verdict = quickCheck(target);
  } catch (error) {
    throw new StoreError('BACKUP_FAILED', `cannot check the copy at ${target}: ${(error as Error).message}`, { target }, { cause: error });
  }
  if (verdict !== 'ok') throw new StoreError('BACKUP_FAILED', `the copy at ${target} fails quick_check: ${verdict}`, { target, check: verdict });
  return { target, pages, bytes: statSync(target).size };
}

/**
 * Creates the target empty, refusing one that exists: unless told to
 * replace it, a backup never writes over a file it did not make.
 * @throws StoreError BACKUP_FAILED.
 */
function createTarget(target: string): void {
  try {
    closeSync(openSync(target, 'wx'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new StoreError('BACKUP_FAILED', `cannot create ${target}: ${code === 'EEXIST' ? 'it exists' : code}`, { target }, { cause: error });
  }
}

async function copy(db: Database.Database, target: string, step: number, onProgress?: (done: number, total: number) => void): Promise<number> {
  let previous = Infinity;
  const done = await db.backup(target, {
    progress({ totalPages, remainingPages }) {
      onProgress?.(totalPages - remainingPages, totalPages);
      // A write by another connection restarts the backup from the first
      // page; were the steps small, a steady writer would restart it
      // forever. After a restart, copy the rest in one step, which is one
      // read transaction and so cannot be interrupted.
      const restarted = remainingPages > previous;
      previous = remainingPages;
      return restarted ? totalPages : step;
    },
  });
  onProgress?.(done.totalPages, done.totalPages);
  return done.totalPages;
}

/** SQLite's quick_check of the copy: 'ok', or what it found first. */
function quickCheck(target: string): string {
  const copy = new Database(target, { readonly: true, fileMustExist: true });
  try {
    return copy.pragma('quick_check', { simple: true }) as string;
  } finally {
    copy.close();
  }
}
