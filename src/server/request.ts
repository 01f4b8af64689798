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
}

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
