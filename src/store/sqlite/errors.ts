// What SQLite and better-sqlite3 throw, translated into the StoreError
// family.

import { StoreError, type StoreErrorCode } from '../errors.js';

// Primary result codes (SqliteError.code without the extended suffix) to ours.
const SQLITE_CODES: Record<string, StoreErrorCode> = {
  SQLITE_BUSY: 'DATABASE_BUSY',
  SQLITE_LOCKED: 'DATABASE_BUSY',
  SQLITE_NOTADB: 'DATABASE_INVALID',
  SQLITE_CORRUPT: 'DATABASE_CORRUPT',
  SQLITE_FULL: 'DATABASE_FULL',
  SQLITE_READONLY: 'DATABASE_READONLY',
  SQLITE_CANTOPEN: 'DATABASE_ERROR',
  SQLITE_IOERR: 'DATABASE_ERROR',
};

/** The SqliteError code, extended codes folded to their primary (SQLITE_BUSY_SNAPSHOT → SQLITE_BUSY). */
export function sqlitePrimaryCode(error: unknown): string | undefined {
  if (!(error instanceof Error) || error.name !== 'SqliteError') return undefined;
  const code = (error as Error & { code?: unknown }).code;
  if (typeof code !== 'string') return undefined;
  const second = code.indexOf('_', 'SQLITE_'.length);
  return second === -1 ? code : code.slice(0, second);
}

/**
 * Translates whatever a database call threw into the StoreError family, by
 * SqliteError.code and never by message text. StoreErrors pass through.
 */
export function translateError(error: unknown, file: string): StoreError {
  if (error instanceof StoreError) return error;
  const primary = sqlitePrimaryCode(error);
  if (primary !== undefined) {
    const code = SQLITE_CODES[primary] ?? 'DATABASE_ERROR';
    const sqliteCode = (error as Error & { code: string }).code;
    const why =
      code === 'DATABASE_INVALID'
        ? `${file} is not a SQLite database`
        : `${file}: ${(error as Error).message} (${sqliteCode})`;
    return new StoreError(code, why, { sqliteCode }, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new StoreError('DATABASE_ERROR', `${file}: ${message}`, undefined, { cause: error });
}
