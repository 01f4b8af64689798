// What every handler shares: the request context and small helpers for
// bounded bodies, JSON answers and header parsing.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { finished } from 'node:stream';
import type { Store, Context } from '../store/index.js';
import type { BlobStore } from '../blobstore/index.js';
import { HttpError } from './errors.js';
import type { Access } from './access.js';
import type { FaultsOnce } from './faults.js';
import type { Readiness } from './readiness.js';
import type { RegistryMetrics } from './metrics.js';
import type { PullRecorder } from './pulls.js';

/** The registry's parts and switches, as the handlers see them. */
export interface Registry {
  store: Store;
  blobs: BlobStore;
  /** Faults the client hears nothing of (a linked blob whose file is gone), for the operator, once per subject. */
  faults: FaultsOnce;
  readOnly: boolean;
  deletes: boolean;
  /** Blob GETs answer 307 to the storage's pre-signed URL, where it has one. */
  redirect: boolean;
  /** Users who may read everyone's events; with no htpasswd and no access rules, everyone. */
  isAdmin(user: string): boolean;
  /** The access rules, when configured: routes check them, the catalog and events filter by them. */
  access?: Access;
  /** Server-sent event streams open now, ended at shutdown. */
  streams: Set<ServerResponse>;
  /** Milliseconds between an event stream's keep-alive comments: below the idle timeout. */
  heartbeatInterval: number;
  /** The checks of GET /readyz. */
  readiness: Readiness;
  /** Whether clients log in (an htpasswd file is configured). */
  logins: boolean;
  /** The metrics, when they are on: the store above is then the timed one. */
  metrics?: RegistryMetrics;
  /** Where clients reach the registry (scheme://host[:port]), when it is set: Location headers are absolute under it. */
  publicUrl?: string;
  /** Notes each manifest pull for the statistics, when they are on. */
  pulls?: PullRecorder;
  /** The rule that makes a tag immutable (the store's policy), when the store has any: an admin's override is logged. */
  immutable?: (repo: string, tag: string) => string | undefined;
  /** Tells the operator what is wrong but not fatal (RegistryOptions.onWarning). */
  warn(message: string): void;
}

/** One request as the handlers see it. */
export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  registry: Registry;
  /** The authenticated user; '' when anonymous. */
  actor: string;
  /** What store writes are attributed to. */
  ctx: Context;
  /** The request's id (X-Request-Id): in its log line, its faults and its response. */
  requestId: string;
  /**
   * Writes the head with `status`, the headers every answer carries and
   * `headers` (name, value, …). Only for a handler that dispatch lets write
   * its head itself; the others find the common headers set already.
   */
  writeHead(status: number, headers: (string | number)[]): void;
}

/**
 * Reads a request body of at most `limit` bytes.
 * @throws HttpError SIZE_INVALID with status 413 when it is longer, and
 * with 400 when it ends early (the client went away).
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () => new HttpError('SIZE_INVALID', `body is larger than ${limit} bytes`, { status: 413 });
  const declared = contentLength(req);
  if (declared !== undefined && declared > limit) return Promise.reject(tooLarge());
  // Events rather than for-await: leaving a for-await loop early destroys
  // the request, and with it the socket the answer must go out on.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      req.off('data', onData);
      req.pause();
      reject(tooLarge());
    };
    req.on('data', onData);
    // finished() and not an 'end' listener: the body may be read after an
    // await (authentication), when a client that went away has already
    // closed the request; finished() reports that, a listener would wait forever.
    finished(req, { writable: false }, (error) =>
      error ? reject(new HttpError('SIZE_INVALID', 'the body ended before it was complete')) : resolve(Buffer.concat(chunks, size)),
    );
  });
}

/**
 * The Content-Length header as a number, or undefined when absent.
 * @throws HttpError SIZE_INVALID when it is not a non-negative integer.
 */
export function contentLength(req: IncomingMessage): number | undefined {
  const header = req.headers['content-length'];
  if (header === undefined) return undefined;
  if (!/^\d{1,16}$/.test(header)) throw new HttpError('SIZE_INVALID', 'invalid Content-Length');
  return Number(header);
}

/** True when the request may carry a body: a length above 0, or chunked encoding. */
export function hasBody(req: IncomingMessage): boolean {
  const length = contentLength(req);
  return length !== undefined ? length > 0 : req.headers['transfer-encoding'] !== undefined;
}

/** Answers `status` with a JSON body (none for HEAD). */
export function sendJson(
  { req, res }: RequestContext,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify(value);
  res.statusCode = status;
  for (const [name, v] of Object.entries(headers)) res.setHeader(name, v);
  if (!res.hasHeader('Content-Type')) res.setHeader('Content-Type', 'application/json');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Answers `status` with no body. */
export function sendEmpty({ res }: RequestContext, status: number, headers: Record<string, string> = {}): void {
  res.statusCode = status;
  for (const [name, v] of Object.entries(headers)) res.setHeader(name, v);
  res.setHeader('Content-Length', 0);
  res.end();
}

/**
 * The page options `n` and `last` of a list endpoint. `n` is capped at
 * `max` (the caller then answers with a Link to the rest).
 * @throws HttpError PAGINATION_NUMBER_INVALID.
 */
export function pageQuery(url: URL, max: number): { n: number; last?: string } {
  const rawN = url.searchParams.get('n');
  let n = max;
  if (rawN !== null && rawN !== '') {
    if (!/^\d{1,9}$/.test(rawN)) throw new HttpError('PAGINATION_NUMBER_INVALID', 'n must be a non-negative integer');
    n = Math.min(Number(rawN), max);
  }
  const last = url.searchParams.get('last');
  return { n, last: last === null || last === '' ? undefined : last };
}

/** The `Link: <…>; rel="next"` value for the page after `last`. */
export function nextLink(pathname: string, n: number, last: string): string {
  const query = new URLSearchParams({ n: String(n), last });
  return `<${pathname}?${query}>; rel="next"`;
}

/**
 * A public URL as the registry uses it: the origin (scheme://host[:port]) of
 * an http or https URL with no credentials, path, query or fragment (the
 * distribution API lives at /v2/ of a host); undefined for anything else.
 */
export function publicOrigin(text: string): string | undefined {
  if (!URL.canParse(text)) return undefined;
  const url = new URL(text);
  const bare = url.username === '' && url.password === '' && url.pathname === '/' && url.search === '' && url.hash === '';
  return bare && (url.protocol === 'http:' || url.protocol === 'https:') ? url.origin : undefined;
}

/** A Location header's value for `path`: absolute under the public URL when one is set, else the path (relative to the request). */
export function location(registry: Pick<Registry, 'publicUrl'>, path: string): string {
  return registry.publicUrl === undefined ? path : `${registry.publicUrl}${path}`;
}

/** The path of a repository's sub-resource; names and digests passed the grammar, so nothing needs escaping. */
export function repoPath(name: string, ...rest: string[]): string {
  return `/v2/${name}/${rest.join('/')}`;
}
