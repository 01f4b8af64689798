// A request's context and its path, made without parsing the URL where the
// path is plain: URL parsing is a visible cost on the hottest requests, and
// most requests (manifests, blobs, uploads' PATCH) never read the query,
// while a plain path is its own normal form.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from '../store/index.js';
import { HttpError } from './errors.js';
import type { Registry, RequestContext } from './http.js';
import type { RouteKind } from './routes.js';

const BASE = 'http://registry.invalid';

/**
 * A path that URL parsing leaves exactly as it is: a single leading '/' (a
 * '//' would make it a host), only characters the path percent-encode set
 * and the special-scheme rules leave alone (no '\\', space, '"', '#', '<',
 * '>', '?', '`', '{', '}', '|', '^', nothing outside ASCII), and no dot
 * segment, plain or percent-encoded (no '%2e' at all).
 */
const PLAIN_PATH = /^\/(?!\/)[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/;
const DOT_SEGMENT = /(?:^|\/)\.{1,2}(?:\/|$)|%2e/i;

/** The context handlers see; `url` is parsed the first time a handler reads it. */
export class RequestState implements RequestContext {
  actor = '';
  ctx: Context = {};
  requestId = '';
  /** The route's kind once routing has passed: what the request is counted under. */
  route: RouteKind | undefined;
  /** Set while the server shuts down: the answer closes its connection. */
  closing = false;
  #headed = false;
  #url: URL | undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly registry: Registry,
  ) {}

  get url(): URL {
    return (this.#url ??= new URL(this.req.url ?? '/', BASE));
  }

  set url(url: URL) {
    this.#url = url;
  }

  /** Sets the headers every answer carries (X-Request-Id, Docker-Distribution-API-Version), once. */
  setCommonHeaders(): void {
    if (this.#headed) return;
    this.#headed = true;
    const { res } = this;
    res.setHeader('X-Request-Id', this.requestId);
    if (this.closing) res.setHeader('Connection', 'close');
    res.setHeader('Docker-Distribution-API-Version', API_VERSION);
  }

  /**
   * Writes the head: the common headers, then `headers` (name, value, …),
   * in one writeHead, which validates and lays them out in one pass where
   * a setHeader each would take several.
   */
  writeHead(status: number, headers: (string | number)[]): void {
    if (this.#headed) {
      this.res.writeHead(status, headers as string[]);
      return;
    }
    this.#headed = true;
    const common = this.closing
      ? ['X-Request-Id', this.requestId, 'Connection', 'close', 'Docker-Distribution-API-Version', API_VERSION]
      : ['X-Request-Id', this.requestId, 'Docker-Distribution-API-Version', API_VERSION];
    for (const value of headers) common.push(value as string);
    this.res.writeHead(status, common);
  }
}

const API_VERSION = 'registry/2.0';

/**
 * The request's path, which must be in normal form: URL parsing resolves
 * '.' and '..' segments (percent-encoded ones too), and a path that needed
 * that names something other than what it says.
 * @throws HttpError NAME_INVALID for a malformed target or a path not in normal form.
 */
export function requestPath(c: RequestContext): string {
  const target = c.req.url ?? '/';
  const query = target.indexOf('?');
  const rawPath = query === -1 ? target : target.slice(0, query);
  if (PLAIN_PATH.test(rawPath) && !DOT_SEGMENT.test(rawPath)) return rawPath;
  let url: URL;
  try {
    url = new URL(target, BASE);
  } catch {
    throw new HttpError('NAME_INVALID', 'malformed request target');
  }
  if (!target.startsWith('/') || rawPath !== url.pathname) {
    throw new HttpError('NAME_INVALID', 'the request path is not in normal form');
  }
  c.url = url;
  return url.pathname;
}
