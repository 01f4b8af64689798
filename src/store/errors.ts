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
  | 'TOOMANYREQUESTS'
  /** A write the store's policy refuses: an immutable tag moved or deleted by someone who is no admin. */
  | 'DENIED';

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
  /** Not a regmeta database: a file that is no SQLite database, or another program's database. */
  | 'DATABASE_INVALID'
  /** The database was written by a newer regmeta. */
  | 'DATABASE_TOO_NEW'
  /** The database is the target of a migration (regmeta migrate) that has not finished: it holds part of a registry. */
  | 'DATABASE_INCOMPLETE'
  /** The database reports its data damaged. */
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
  /**
   * A blob's file was placed or removed under its digest's lock for longer
   * than the lock's lease (the process stalled), and another process took
   * the lock meanwhile: the call wrote nothing, and may be tried again.
   */
  | 'LOCK_LOST'
  /** A backup's copy could not be written, or fails its check; the source is untouched. */
  | 'BACKUP_FAILED'
    /** Any other failure of the database or the filesystem under it. */
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

/** Carries an exception of a caller's callback through a transaction, so that it is not translated. */
export class CallbackFailure {
  constructor(readonly error: unknown) {}
}
