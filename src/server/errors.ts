// Errors on the wire: one table from error codes to HTTP statuses, and one
// function that writes the OCI error envelope.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes

import type { IncomingMessage, ServerResponse } from 'node:http';
import { BlobStoreError } from '../blobstore/index.js';
import { StoreError } from '../store/index.js';

/**
 * An error the server raises itself (as opposed to one from the store):
 * an OCI error code, an optional status where the table's default does not
 * fit, and headers the response must carry (WWW-Authenticate, Range).
 */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly code: string,
    message: string,
    readonly options: { status?: number; detail?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message);
  }
}

// The spec's codes with the statuses its endpoint table gives them; the
// store's own codes with the closest fit. A code missing here is a server
// fault (500).
const STATUS: Record<string, number> = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_UNKNOWN: 404,
  MANIFEST_UNKNOWN: 404,
  NAME_UNKNOWN: 404,
  NOT_FOUND: 404,
  BLOB_UPLOAD_INVALID: 400,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  NAME_INVALID: 400,
  SIZE_INVALID: 400,
  TAG_INVALID: 400,
  PAGINATION_NUMBER_INVALID: 400,
  EVENT_INVALID: 400,
  ARGUMENT_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  // A byte range a blob cannot satisfy (distribution's code).
  RANGE_INVALID: 416,
  // An index still lists the manifest, a manifest still references the blob:
  // the request is well-formed but conflicts with the repository's state.
  MANIFEST_REFERENCED: 409,
  BLOB_REFERENCED: 409,
  TOOMANYREQUESTS: 429,
  // The database is locked for longer than the busy timeout, cannot be
  // reached now, or is shut: the client may retry (Retry-After).
  DATABASE_BUSY: 503,
  DATABASE_UNAVAILABLE: 503,
  STORE_CLOSED: 503,
  // A blob's lock taken over while its file was placed: nothing was written.
  LOCK_LOST: 503,
  // The blobs' object storage is unreachable, timed out, throttling or failing.
  STORAGE_UNAVAILABLE: 503,
  // A mirror's upstream is unreachable, timed out, throttling or failing, and nothing cached can answer.
  UPSTREAM_UNAVAILABLE: 503,
  DATABASE_FULL: 507,
};

/** How much of a refused body the server still reads so the client can hear the answer. */
const LINGER_BYTES = 8 * 1024 * 1024;

/** The Retry-After of a 503: when a client may try again, in seconds. */
export const RETRY_AFTER_SECONDS = 1;

/** The HTTP status of an error code; 500 for anything the table does not know. */
export function statusOf(code: string): number {
  return STATUS[code] ?? 500;
}

/** What the client sees of an error: status, envelope and extra headers. */
interface WireError {
  status: number;
  code: string;
  message: string;
  detail?: unknown;
  headers?: Record<string, string>;
}

// A full disk, whether the database's or the blobs': the client may retry
// once an operator has made room. The message names no path.
const STORAGE_FULL: WireError = { status: statusOf('DATABASE_FULL'), code: 'UNAVAILABLE', message: "the registry's storage is full" };

/** The store's DATABASE_FULL, or a filesystem error that says the disk or the user's quota is full. */
function isStorageFull(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return error instanceof Error && (code === 'DATABASE_FULL' || code === 'ENOSPC' || code === 'EDQUOT');
}

/**
 * Maps anything a handler threw to what goes on the wire. Store, blob store
 * and server errors keep their code; a 5xx hides its message (it may name
 * paths) and unknown errors become a generic 500.
 */
export function toWireError(error: unknown): WireError {
  if (error instanceof HttpError) {
    return {
      status: error.options.status ?? statusOf(error.code),
      code: error.code,
      message: error.message,
      detail: error.options.detail,
      headers: error.options.headers,
    };
  }
  if (isStorageFull(error)) return STORAGE_FULL;
  if (error instanceof BlobStoreError) return blobStoreWireError(error);
  if (error instanceof StoreError) {
    const status = statusOf(error.code);
    if (status >= 500) {
      const headers: Record<string, string> | undefined = status === 503 ? { 'Retry-After': String(RETRY_AFTER_SECONDS) } : undefined;
      return { status, code: 'UNAVAILABLE', message: 'the registry cannot serve this request now', headers };
    }
    return { status, code: error.code, message: error.message, detail: error.detail };
  }
  return { status: 500, code: 'UNKNOWN', message: 'internal server error' };
}

// A blob over the size limit is the spec's SIZE_INVALID with HTTP's 413, as
// for a manifest over its limit; a client held at its session cap hears when
// to try again.
function blobStoreWireError(error: BlobStoreError): WireError {
  const status = error.limit !== undefined ? 413 : statusOf(error.code);
  if (status === 503) {
    const retryAfter = String(error.retryAfter ?? RETRY_AFTER_SECONDS);
    return { status, code: 'UNAVAILABLE', message: 'the registry cannot serve this request now', headers: { 'Retry-After': retryAfter } };
  }
  if (status >= 500) return { status: 500, code: 'UNKNOWN', message: 'internal server error' };
  const headers = error.retryAfter !== undefined ? { 'Retry-After': String(error.retryAfter) } : undefined;
  return { status, code: error.code, message: error.message, detail: error.detail, headers };
}

/**
 * Writes `error` as the OCI error envelope `{"errors":[{code,message,detail}]}`
 * and returns the status written. When the response has already started
 * (a blob half sent) the socket is destroyed instead: a truncated body must
 * not look complete. `report` receives server faults, with their detail, for the log.
 */
export function sendError(
  req: IncomingMessage,
  res: ServerResponse,
  error: unknown,
  report: (error: unknown) => void,
): number {
  const wire = toWireError(error);
  if (wire.status >= 500) report(error);
  if (res.headersSent) {
    res.destroy();
    return res.statusCode;
  }
  const entry: Record<string, unknown> = { code: wire.code, message: wire.message };
  if (wire.detail !== undefined) entry.detail = wire.detail;
  const body = JSON.stringify({ errors: [entry] });
  res.statusCode = wire.status;
  for (const [name, value] of Object.entries(wire.headers ?? {})) res.setHeader(name, value);
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  // A body the handler did not read (an upload refused up front, a
  // manifest over the limit) is read and dropped so that the client, still
  // sending, hears this answer: closing now would reset the connection and
  // lose it. Bodies too large to drain are cut off.
  if (!req.complete) {
    if (!discardBody(req)) res.setHeader('Connection', 'close');
  }
  res.end(req.method === 'HEAD' ? undefined : body);
  return wire.status;
}

/**
 * Reads and discards the rest of a request body the server refused, so that
 * the client, still sending, reads the answer instead of a connection reset.
 * Past LINGER_BYTES the connection is dropped: draining gigabytes is worse.
 * @returns false when the body is declared too long to drain: the caller
 * closes the connection after the answer.
 */
function discardBody(req: IncomingMessage): boolean {
  if (req.complete || req.destroyed) return true;
  const declared = req.headers['content-length'];
  if (declared !== undefined && !(Number(declared) <= LINGER_BYTES)) {
    req.resume();
    return false;
  }
  let seen = 0;
  req.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > LINGER_BYTES) req.destroy();
  });
  req.on('error', () => {});
  req.resume();
  return true;
}
