// What every handler shares: the request context and small helpers for
// bounded bodies, JSON answers and header parsing.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context, MetadataStore } from '../index.js';
import type { BlobFiles } from './blobs.js';
import { HttpError } from './errors.js';

/** The registry's parts and switches, as the handlers see them. */
export interface Registry {
  store: MetadataStore;
  blobs: BlobFiles;
  readOnly: boolean;
  deletes: boolean;
  /** Users who may read everyone's events; with no htpasswd, everyone. */
  isAdmin(user: string): boolean;
  /** Server-sent event streams open now, ended at shutdown. */
  streams: Set<ServerResponse>;
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
}

/** The largest manifest accepted: the spec's suggested floor for what registries must take. */
export const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;

/**
 * Reads a request body of at most `limit` bytes.
 * @throws HttpError SIZE_INVALID with status 413 when it is longer.
 */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = contentLength(req);
  const tooLarge = () => new HttpError('SIZE_INVALID', `body is larger than ${limit} bytes`, { status: 413 });
  if (declared !== undefined && declared > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
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

/** The path of a repository's sub-resource, each name component escaped. */
export function repoPath(name: string, ...rest: string[]): string {
  return `/v2/${name}/${rest.join('/')}`;
}
