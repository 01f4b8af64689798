// One error family. Every error the store throws is a StoreError whose `code`
// is stable: the OCI distribution-spec code where the spec has one, else a
// code of ours in the same style. Callers branch on `code`, never on message.

/** The codes of the OCI distribution spec that the store uses. */
export type OciErrorCode =
  | 'BLOB_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'UNSUPPORTED'
  /** An upload session that is not known: never opened, finished, cancelled, expired or another repository's. */
  | 'BLOB_UPLOAD_UNKNOWN'
  /** A client address holds as many upload sessions as it may. */
  | 'TOOMANYREQUESTS';

/** Codes that distribution uses beyond the spec, and the store's own. */
export type StoreErrorCode =
  | OciErrorCode
  | 'TAG_INVALID'
  | 'PAGINATION_NUMBER_INVALID'
  /** A manifest that an index in the same repository lists as a child. */
  | 'MANIFEST_REFERENCED'
  /** A blob that a manifest still references. */
  | 'BLOB_REFERENCED'
  /** An event given to createEvent or a filter given to getEvents is malformed. */
  | 'EVENT_INVALID'
  /** Another argument is malformed (a Date that is not one). */
  | 'ARGUMENT_INVALID'
  /** registerStore was called twice. */
  | 'STORE_ALREADY_REGISTERED'
  /** The store was used after close(). */
  | 'STORE_CLOSED'
  /** The file is not a SQLite database, or is another program's database. */
  | 'DATABASE_INVALID'
  /** The database was written by a newer regmeta. */
  | 'DATABASE_TOO_NEW'
  /** The database is the target of a migration (regmeta migrate) that has not finished: it holds part of a registry. */
  | 'DATABASE_INCOMPLETE'
  /** SQLite reports the file damaged. */
  | 'DATABASE_CORRUPT'
  /** The disk is full. */
  | 'DATABASE_FULL'
  /** Another connection held the lock for longer than the busy timeout. */
  | 'DATABASE_BUSY'
  /**
   * The database server cannot be reached now: refused, lost, shutting down
   * or starting up, out of connections, or no connection within the timeouts.
   * Trying again later may succeed.
   */
  | 'DATABASE_UNAVAILABLE'
  /** The file or its directory cannot be written. */
  | 'DATABASE_READONLY'
  /** Any other failure of SQLite or the filesystem under it. */
  | 'DATABASE_ERROR';

/** Anything the store throws. `code` is stable; `detail` is structured context for the client. */
export class StoreError extends Error {
  override name = 'StoreError';
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    readonly detail?: unknown,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A repository, manifest, tag or blob that is not there: MANIFEST_UNKNOWN, NAME_UNKNOWN or BLOB_UNKNOWN. */
export class NotFoundError extends StoreError {
  override name = 'NotFoundError';
  constructor(code: 'MANIFEST_UNKNOWN' | 'NAME_UNKNOWN' | 'BLOB_UNKNOWN', message: string, detail?: unknown) {
    super(code, message, detail);
  }
}

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

/** Carries an exception of a caller's callback through a transaction, so that it is not translated. */
export class CallbackFailure {
  constructor(readonly error: unknown) {}
}

/**
 * Runs a caller's callback inside a transaction: what it throws aborts the
 * transaction and reaches the caller as is (the transaction unwraps it).
 */
export function runCallback(fn: () => void): void {
  try {
    fn();
  } catch (error) {
    throw new CallbackFailure(error);
  }
}
