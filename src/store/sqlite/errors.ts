// What SQLite and better-sqlite3 throw, translated into the StoreError
// family, and a caller's callback run inside a SQLite transaction.

import { CallbackFailure, StoreError, type StoreErrorCode } from '../errors.js';

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

/**
 * Runs a caller's callback inside a transaction: what it throws aborts the
 * transaction and reaches the caller as is (the transaction unwraps it).
 * SQLite's transaction is synchronous: a callback that returns a promise
 * would go on outside it, so it is refused, ARGUMENT_INVALID, and the
 * transaction rolls back.
 */
export function runCallback(fn: () => void): void {
  let result: unknown;
  try {
    result = fn();
  } catch (error) {
    throw new CallbackFailure(error);
  }
  if (typeof (result as Promise<void> | undefined)?.then === 'function') {
    // Unhandled otherwise: what it settles with no longer matters.
    (result as Promise<void>).then(undefined, () => {});
    throw new CallbackFailure(new StoreError('ARGUMENT_INVALID', 'a callback run inside a SQLite transaction must be synchronous'));
  }
}
