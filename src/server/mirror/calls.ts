// What the mirror's manifest, tag and referrer handlers share: a request to
// the upstream with its failures counted, a bounded read of its answer, one
// upstream request for many concurrent pulls, the cache as a fallback, and
// the stale answer (with its Warning) when the upstream cannot answer.

import { NotFoundError, type Context } from '../../store/index.js';
import { HttpError } from '../errors.js';
import type { RequestContext } from '../http.js';
import type { Route } from '../routes.js';
import type { Mirror, MirrorParts, Next } from './types.js';
import { upstreamUnavailable } from './auth.js';
import type { UpstreamAnswer } from './upstream.js';

/** What the cache's writes are attributed to (events, webhooks). */
export const MIRROR_CTX: Context = { actor: 'mirror' };

/** RFC 7234's warning for an answer served without the check it is due. */
const STALE_WARNING = '110 - "Response is Stale"';

/** What a pull counts as: from the cache, from the upstream, checked unchanged, or unchecked for want of an upstream. */
export type PullResult = 'hit' | 'miss' | 'revalidated' | 'stale';

/**
 * GET or HEAD of `/v2/<remote>/<path>` on the mirror's upstream, a failure counted.
 * @throws HttpError UPSTREAM_UNAVAILABLE (as Upstream.fetch).
 */
export async function ask(
  parts: MirrorParts,
  mirror: Mirror,
  method: 'GET' | 'HEAD',
  remote: string,
  path: string,
  headers: Record<string, string>,
): Promise<UpstreamAnswer> {
  try {
    return await mirror.upstream.fetch(method, remote, path, headers);
  } catch (error) {
    parts.counters.upstreamError(mirror.options.prefix);
    throw error;
  }
}

/** An upstream answer this registry cannot use (a wrong digest, a body too large or cut), counted: UPSTREAM_UNAVAILABLE. */
export function failed(parts: MirrorParts, mirror: Mirror, why: string): HttpError {
  parts.counters.upstreamError(mirror.options.prefix);
  return upstreamUnavailable(mirror.upstream.origin, why);
}

/** Whether `error` says the upstream could not answer (unreachable, slow, failing, or its answer unusable). */
export function isUpstreamFailure(error: unknown): error is HttpError {
  return error instanceof HttpError && error.code === 'UPSTREAM_UNAVAILABLE';
}

/**
 * The body of an upstream answer, at most `limit` bytes, complete; its
 * bytes counted.
 * @throws HttpError UPSTREAM_UNAVAILABLE (longer than `limit`, cut, or silent past the timeout).
 */
export async function readAnswer(parts: MirrorParts, mirror: Mirror, answer: UpstreamAnswer, limit: number): Promise<Buffer> {
  const { body } = answer;
  const declared = Number(answer.headers['content-length'] ?? 0);
  const tooLarge = () => failed(parts, mirror, `its answer is larger than ${limit} bytes`);
  if (declared > limit) {
    body.destroy();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) break;
      chunks.push(chunk);
    }
  } catch (error) {
    body.destroy();
    if (isUpstreamFailure(error)) {
      parts.counters.upstreamError(mirror.options.prefix);
      throw error;
    }
    throw failed(parts, mirror, 'its answer ended before it was complete');
  }
  if (size > limit) {
    body.destroy();
    throw tooLarge();
  }
  if (!body.complete) throw failed(parts, mirror, 'its answer ended before it was complete');
  parts.counters.upstreamBytes(mirror.options.prefix, size);
  return Buffer.concat(chunks, size);
}

/**
 * Answers `route` from the cache when it holds it.
 * @returns false when the cache has no such manifest or repository (nothing sent).
 * @throws what `next` throws otherwise.
 */
export async function fromCache(c: RequestContext, route: Route, next: Next): Promise<boolean> {
  try {
    await next(route);
    return true;
  } catch (error) {
    if (error instanceof NotFoundError && error.code !== 'BLOB_UNKNOWN' && !c.res.headersSent) return false;
    throw error;
  }
}

/** `work`'s promise, shared by every caller asking for `key` while it runs: one upstream request for many pulls. */
export function once<T>(flights: Map<string, Promise<unknown>>, key: string, work: () => Promise<T>): Promise<T> {
  let flight = flights.get(key) as Promise<T> | undefined;
  if (flight === undefined) {
    flight = work().finally(() => flights.delete(key));
    flights.set(key, flight);
  }
  return flight;
}

/**
 * Answers from the cache because the upstream could not (`failure`), with
 * a Warning header and one warning line naming `what` and the upstream.
 * @throws `failure` when the cache has nothing either; what `serve` throws otherwise.
 */
export async function serveStale(
  parts: MirrorParts,
  c: RequestContext,
  mirror: Mirror,
  what: string,
  failure: HttpError,
  serve: () => void | Promise<void>,
): Promise<'stale'> {
  c.res.setHeader('Warning', STALE_WARNING);
  try {
    await serve();
  } catch (error) {
    if (c.res.headersSent) throw error;
    c.res.removeHeader('Warning');
    throw error instanceof NotFoundError ? failure : error;
  }
  parts.onWarning(`mirror ${mirror.options.prefix}: served ${what} from the cache, unchecked: ${failure.message}`);
  return 'stale';
}
