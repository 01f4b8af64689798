// The blob store's own errors. Callers decide by `code` and the structured
// fields, never by message text: the server maps them to statuses in its one
// table, the CLI to problems and exit codes.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes

/**
 * The codes a BlobStoreError carries: the distribution spec's where it has
 * one (every code here but STORAGE_UNAVAILABLE is one of the spec's).
 */
type BlobStoreErrorCode =
  /** The upload session is not known: never opened, finished, cancelled, expired or another repository's. */
  | 'BLOB_UPLOAD_UNKNOWN'
  /** The upload's bytes did not arrive whole: the client went away mid-body. */
  | 'BLOB_UPLOAD_INVALID'
  /** A digest that does not pass the grammar, or bytes that do not hash to it. */
  | 'DIGEST_INVALID'
  /** A body longer or shorter than it claimed, or a blob above the size limit (then `limit` is set). */
  | 'SIZE_INVALID'
  /** A client holds as many upload sessions as it may (then `retryAfter` is set). */
  | 'TOOMANYREQUESTS'
  /** The storage cannot serve now: an object store unreachable, timed out, throttling or failing (then `retryAfter` is set). */
  | 'STORAGE_UNAVAILABLE';

/** What a BlobStoreError may carry besides its code and message. */
interface BlobStoreErrorOptions {
  /** Facts for the client, such as the digest the bytes actually have. */
  detail?: unknown;
  /** The size limit, in bytes, that a blob went over. */
  limit?: number;
  /** Seconds after which the same request may succeed. */
  retryAfter?: number;
  cause?: unknown;
}

/** An error of the blob store, with a stable `code`. */
export class BlobStoreError extends Error {
  override name = 'BlobStoreError';
  /** Facts for the client, such as `{ digest }`: what the bytes really hash to. */
  readonly detail?: unknown;
  /**
   * Set only when a blob is larger than the store accepts: the limit in
   * bytes. A registry answers that with 413 rather than SIZE_INVALID's 400.
   */
  readonly limit?: number;
  /** Set with TOOMANYREQUESTS and STORAGE_UNAVAILABLE: seconds after which trying again may succeed. */
  readonly retryAfter?: number;

  constructor(
    readonly code: BlobStoreErrorCode,
    message: string,
    options: BlobStoreErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    if (options.detail !== undefined) this.detail = options.detail;
    if (options.limit !== undefined) this.limit = options.limit;
    if (options.retryAfter !== undefined) this.retryAfter = options.retryAfter;
  }
}

/** SIZE_INVALID for a blob above `limit` bytes, carrying the limit, so that a registry answers 413. */
export function tooLarge(limit: number): BlobStoreError {
  return new BlobStoreError('SIZE_INVALID', 'blob is larger than the registry accepts', { limit });
}
