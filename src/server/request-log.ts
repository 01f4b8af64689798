// The request log's line, and the request id that ties a client's report to
// it: taken from the client's X-Request-Id when it is sane (a proxy or the
// client made one already), made here otherwise, and sent back on every
// response either way.

import { randomBytes } from 'node:crypto';
import type { RequestState } from './request.js';
import { routeKindOf, type RouteKind } from './routes.js';

/** One line of the request log; the logger adds the time (a Date formatted per request costs a microsecond). */
export interface RequestLogEntry {
  method: string;
  /** The route's kind (`manifest`, `blob`, `healthz`, …), or 'none' when no route took the request. */
  route: RouteKind | 'none';
  /** The request's path, without its query, cut at MAX_PATH characters. */
  path: string;
  /** 499 when the client went away before the answer was complete, as nginx logs it. */
  status: number;
  /** Bytes written to the socket for this response, headers included. */
  bytes: number;
  ms: number;
  /** The authenticated user; '' when anonymous. */
  actor: string;
  remoteAddress: string;
  /** The User-Agent header, cut at MAX_USER_AGENT characters; '' when absent. */
  userAgent: string;
  /** The X-Request-Id of the response. */
  requestId: string;
}

const MAX_PATH = 1024;
const MAX_USER_AGENT = 256;
/** A client's id is taken when it is 1 to 128 visible ASCII characters: nothing that could forge or break a log line. */
const SANE_ID = /^[!-~]{1,128}$/;
// A process's ids: a random prefix, so that two processes (or restarts) do not repeat each other, and a counter.
const PREFIX = randomBytes(6).toString('base64url');
let counter = 0;

/** The request's id, the client's when sane, for the response's X-Request-Id (RequestState sets it). */
export function assignRequestId(c: RequestState): void {
  const given = c.req.headers['x-request-id'];
  c.requestId = typeof given === 'string' && SANE_ID.test(given) ? given : `${PREFIX}-${(++counter).toString(36)}`;
}

/** The log line of a finished request that took `ms` and wrote `bytes` to its socket. */
export function requestLogEntry(c: RequestState, ms: number, bytes: number): RequestLogEntry {
  const { req, res } = c;
  const method = req.method ?? '';
  const target = req.url ?? '';
  const query = target.indexOf('?');
  const path = (query === -1 ? target : target.slice(0, query)).slice(0, MAX_PATH);
  return {
    method,
    // A request refused before routing (401, a path not in normal form) is routed here, for the log only.
    route: c.route ?? routeKindOf(method, path),
    path,
    status: res.writableFinished ? res.statusCode : 499,
    bytes,
    ms: Math.round(ms * 100) / 100,
    actor: c.actor,
    remoteAddress: req.socket.remoteAddress ?? '',
    userAgent: (req.headers['user-agent'] ?? '').slice(0, MAX_USER_AGENT),
    requestId: c.requestId,
  };
}
