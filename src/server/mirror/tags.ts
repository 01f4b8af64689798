// The tag list and the referrers of a repository in a mirror's namespace:
// the upstream's, or what is cached when the upstream cannot answer.

import { MediaType, NotFoundError } from '../../store/index.js';
import type { RequestContext } from '../http.js';
import type { Route } from '../routes.js';
import { ask, failed, isUpstreamFailure, readAnswer, serveStale, type PullResult } from './calls.js';
import type { MirrorParts, MirrorTarget, Next } from './types.js';

/** The largest tag list or referrers index read from an upstream (Docker Hub's largest tag lists are a few hundred KiB). */
const MAX_LIST_BYTES = 16 * 1024 * 1024;

/**
 * GET /v2/<name>/tags/list in a mirror's namespace: the upstream's list
 * (with the client's `n` and `last`), named by the local name, its Link to
 * the next page made local; the cached tags, with a Warning, when the
 * upstream cannot answer.
 * @throws NotFoundError NAME_UNKNOWN (the upstream has no such repository);
 * HttpError UPSTREAM_UNAVAILABLE (it cannot answer and nothing is cached);
 * what the registry's handler throws.
 */
export async function listTags(parts: MirrorParts, c: RequestContext, target: MirrorTarget, route: Route & { kind: 'tags' }, next: Next): Promise<void> {
  const { mirror, remote } = target;
  let result: PullResult = 'miss';
  try {
    const query = forwarded(c.url, ['n', 'last']);
    const answer = await ask(parts, mirror, 'GET', remote, `tags/list${query}`, { Accept: 'application/json' });
    if (answer.status === 404) {
      answer.body.resume();
      throw new NotFoundError('NAME_UNKNOWN', `repository ${remote} is not at ${mirror.upstream.origin}`);
    }
    if (answer.status !== 200) {
      answer.body.resume();
      throw failed(parts, mirror, `it answered ${answer.status} to GET tags/list`);
    }
    const list = parsed(await readAnswer(parts, mirror, answer, MAX_LIST_BYTES)) as { tags?: unknown } | undefined;
    if (list === undefined || !(list.tags === null || list.tags === undefined || Array.isArray(list.tags))) {
      throw failed(parts, mirror, 'its tag list is not one');
    }
    const { tags, link } = paged(list.tags ?? [], c.url, answer.headers.link);
    const body = JSON.stringify({ name: route.name, tags });
    send(c, 'application/json', Buffer.from(body), link === undefined ? [] : ['Link', link]);
  } catch (error) {
    if (!isUpstreamFailure(error)) throw error;
    result = await serveStale(parts, c, mirror, `the tags of ${route.name}`, error, () => next(route));
  }
  parts.counters.pull(mirror.options.prefix, 'tags', result);
}

/**
 * GET /v2/<name>/referrers/<digest> in a mirror's namespace: the upstream's
 * index when it has the referrers API, else the cached referrers (with a
 * Warning when the upstream could not answer).
 * @throws HttpError UPSTREAM_UNAVAILABLE (it cannot answer and nothing is
 * cached); what the registry's handler throws.
 */
export async function referrers(parts: MirrorParts, c: RequestContext, target: MirrorTarget, route: Route & { kind: 'referrers' }, next: Next): Promise<void> {
  const { mirror, remote } = target;
  let result: PullResult = 'miss';
  try {
    const query = forwarded(c.url, ['artifactType']);
    const answer = await ask(parts, mirror, 'GET', remote, `referrers/${route.digest}${query}`, { Accept: MediaType.OciIndex });
    if (answer.status === 404) {
      // An upstream without the API (or without the subject): what is cached.
      answer.body.resume();
      await next(route);
      result = 'hit';
    } else if (answer.status !== 200) {
      answer.body.resume();
      throw failed(parts, mirror, `it answered ${answer.status} to GET referrers/${route.digest}`);
    } else {
      const payload = await readAnswer(parts, mirror, answer, MAX_LIST_BYTES);
      const index = parsed(payload) as { manifests?: unknown } | undefined;
      if (index === undefined || !Array.isArray(index.manifests)) throw failed(parts, mirror, 'its referrers answer is not an image index');
      const filtered = answer.headers['oci-filters-applied'];
      send(c, MediaType.OciIndex, payload, typeof filtered === 'string' ? ['OCI-Filters-Applied', filtered] : []);
    }
  } catch (error) {
    if (!isUpstreamFailure(error)) throw error;
    result = await serveStale(parts, c, mirror, `the referrers of ${route.name}@${route.digest}`, error, () => next(route));
  }
  parts.counters.pull(mirror.options.prefix, 'referrers', result);
}

/** The query the upstream gets: those of `names` the client gave. */
function forwarded(url: URL, names: string[]): string {
  const query = new URLSearchParams();
  for (const name of names) {
    const value = url.searchParams.get(name);
    if (value !== null) query.set(name, value);
  }
  const text = query.toString();
  return text === '' ? '' : `?${text}`;
}

function parsed(payload: Buffer): unknown {
  try {
    const value: unknown = JSON.parse(payload.toString('utf8'));
    return typeof value === 'object' && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The page the client asked for (`n` tags after `last`) of the upstream's
 * list, which an upstream without pagination (distribution 2.8) sends
 * whole; and the Link to the next page, on the path the client asked (its
 * `ns` kept), when there is one.
 */
function paged(all: unknown[], url: URL, upstreamLink: string | string[] | undefined): { tags: unknown[]; link?: string } {
  const last = url.searchParams.get('last');
  const rawN = url.searchParams.get('n');
  const n = rawN !== null && /^\d{1,9}$/.test(rawN) ? Number(rawN) : undefined;
  let tags = last === null || last === '' ? all : all.filter((tag) => typeof tag === 'string' && tag > last);
  let next: { n: string; last: string } | undefined;
  if (n !== undefined && tags.length > n) {
    tags = tags.slice(0, n);
    if (n > 0) next = { n: String(n), last: String(tags[n - 1]) };
  } else {
    next = linkedPage(upstreamLink);
  }
  if (next === undefined) return { tags };
  const query = new URLSearchParams(next);
  const ns = url.searchParams.get('ns');
  if (ns !== null) query.set('ns', ns);
  return { tags, link: `<${url.pathname}?${query}>; rel="next"` };
}

/** The `n` and `last` of an upstream's `Link: <…?n=…&last=…>; rel="next"`, or undefined. */
function linkedPage(link: string | string[] | undefined): { n: string; last: string } | undefined {
  const match = typeof link === 'string' ? /^\s*<([^>]*)>/.exec(link) : null;
  if (match === null || !URL.canParse(match[1], 'http://upstream')) return undefined;
  const query = new URL(match[1], 'http://upstream').searchParams;
  const [n, last] = [query.get('n'), query.get('last')];
  return n === null || last === null ? undefined : { n, last };
}

/** Answers 200 with `body` (none for HEAD): the head in one go, the registry's common headers with it. */
function send(c: RequestContext, contentType: string, body: Buffer, headers: string[]): void {
  c.writeHead(200, ['Content-Type', contentType, 'Content-Length', String(body.length), ...headers]);
  c.res.end(c.req.method === 'HEAD' ? undefined : body);
}
