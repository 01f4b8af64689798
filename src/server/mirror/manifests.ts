// Manifest pulls in a mirror's namespace: a digest fetched once and kept
// (content never changes), a tag checked against the upstream once its TTL
// is over, and served from the cache, with a Warning, while the upstream
// cannot answer. Concurrent pulls of one reference make one upstream request.

import { digestOf, isDigest, NotFoundError, pushedMediaType, StoreError, verifyDigest } from '../../store/index.js';
import type { RequestContext } from '../http.js';
import type { Route } from '../routes.js';
import { ask, failed, fromCache, isUpstreamFailure, MIRROR_CTX, once, readAnswer, serveStale, type PullResult } from './calls.js';
import type { Mirror, MirrorParts, MirrorTarget, Next } from './types.js';
import { MANIFEST_ACCEPT, type UpstreamAnswer } from './upstream.js';

type ManifestRoute = Route & { kind: 'manifest' };

/** What one mirror remembers of its tags, in this process. */
interface Memory {
  /** When each `name:tag` was last found current upstream (performance.now()). */
  checked: Map<string, number>;
  /** Upstream requests under way, by `name:tag` or `name@digest`. */
  flights: Map<string, Promise<unknown>>;
}

const memories = new WeakMap<Mirror, Memory>();

function memoryOf(mirror: Mirror): Memory {
  let memory = memories.get(mirror);
  if (memory === undefined) memories.set(mirror, (memory = { checked: new Map(), flights: new Map() }));
  return memory;
}

/**
 * GET/HEAD of a manifest in a mirror's namespace: by digest from the cache,
 * else fetched, verified and kept; by tag from the cache within the
 * mirror's TTL, else checked upstream first (HEAD, digests compared).
 * @throws NotFoundError MANIFEST_UNKNOWN (the upstream has no such
 * manifest or tag; a tag it dropped is dropped here too); HttpError
 * UPSTREAM_UNAVAILABLE (the upstream cannot answer or sent something
 * unusable, and nothing is cached); what the registry's handler throws.
 */
export async function pullManifest(parts: MirrorParts, c: RequestContext, target: MirrorTarget, route: ManifestRoute, next: Next): Promise<void> {
  const result = route.reference.digest !== undefined ? await byDigest(parts, c, target, route, next) : await byTag(parts, c, target, route, next);
  parts.counters.pull(target.mirror.options.prefix, 'manifest', result);
  parts.notePull(route.name);
}

async function byDigest(parts: MirrorParts, c: RequestContext, target: MirrorTarget, route: ManifestRoute, next: Next): Promise<PullResult> {
  if (await fromCache(c, route, next)) return 'hit';
  const digest = route.reference.digest!;
  await once(memoryOf(target.mirror).flights, `${route.name}@${digest}`, () => fetchManifest(parts, target, route.name, digest));
  await next(route);
  return 'miss';
}

async function byTag(parts: MirrorParts, c: RequestContext, target: MirrorTarget, route: ManifestRoute, next: Next): Promise<PullResult> {
  const { mirror } = target;
  const tag = route.reference.tag!;
  const memory = memoryOf(mirror);
  const key = `${route.name}:${tag}`;
  const checkedAt = memory.checked.get(key);
  // Within the TTL the cache answers; a tag gone from it meanwhile (evicted) is checked again.
  if (checkedAt !== undefined && performance.now() - checkedAt < mirror.options.ttl && (await fromCache(c, route, next))) return 'hit';
  let result: PullResult;
  try {
    result = await once(memory.flights, key, () => checkTag(parts, target, route.name, tag));
  } catch (error) {
    if (!isUpstreamFailure(error)) throw error;
    if ((await cachedTag(parts, route.name, tag)) === undefined) throw error;
    return serveStale(parts, c, mirror, `${route.name}:${tag}`, error, () => next(route));
  }
  await next(route);
  return result;
}

/**
 * Checks `tag` upstream and brings the cache in line: unchanged, noted;
 * moved or new, fetched and tagged; gone, untagged here too.
 * @throws as pullManifest.
 */
async function checkTag(parts: MirrorParts, target: MirrorTarget, name: string, tag: string): Promise<'revalidated' | 'miss'> {
  const { mirror, remote } = target;
  const { checked } = memoryOf(mirror);
  const key = `${name}:${tag}`;
  const cached = await cachedTag(parts, name, tag);
  const head = await ask(parts, mirror, 'HEAD', remote, `manifests/${tag}`, { Accept: MANIFEST_ACCEPT });
  head.body.resume();
  if (head.status === 404) {
    checked.delete(key);
    if (cached !== undefined) await parts.store.deleteTag(name, tag, MIRROR_CTX).catch(unlessNotFound);
    throw new NotFoundError('MANIFEST_UNKNOWN', `manifest ${name}:${tag} is not in ${remote} at ${mirror.upstream.origin}`);
  }
  if (head.status !== 200) throw failed(parts, mirror, `it answered ${head.status} to HEAD manifests/${tag}`);
  const digest = headerDigest(head);
  if (digest !== undefined && digest === cached) {
    checked.set(key, performance.now());
    return 'revalidated';
  }
  // A tag moved back to a manifest still here needs only the tag.
  if (digest !== undefined && (await hasManifest(parts, name, digest))) await parts.store.putTag(name, tag, { digest }, MIRROR_CTX);
  else await fetchManifest(parts, target, name, digest ?? tag, tag);
  checked.set(key, performance.now());
  return 'miss';
}

/**
 * GETs a manifest from the upstream by `reference` (a digest, or a tag when
 * the upstream named no digest), checks its bytes against the digest, and
 * keeps it (tagged `tag` when given). Its blobs and children are not
 * fetched: they come when clients ask for them.
 * @throws NotFoundError MANIFEST_UNKNOWN (upstream 404); HttpError
 * UPSTREAM_UNAVAILABLE (any other status, a body too large or cut, a digest
 * that does not match, a manifest the store refuses).
 */
async function fetchManifest(parts: MirrorParts, target: MirrorTarget, name: string, reference: string, tag?: string): Promise<void> {
  const { mirror, remote } = target;
  const answer = await ask(parts, mirror, 'GET', remote, `manifests/${reference}`, { Accept: MANIFEST_ACCEPT });
  if (answer.status === 404) {
    answer.body.resume();
    throw new NotFoundError('MANIFEST_UNKNOWN', `manifest ${reference} is not in ${remote} at ${mirror.upstream.origin}`);
  }
  if (answer.status !== 200) {
    answer.body.resume();
    throw failed(parts, mirror, `it answered ${answer.status} to GET manifests/${reference}`);
  }
  const payload = await readAnswer(parts, mirror, answer, parts.store.limits.maxManifestSize);
  const named = `${remote}${reference.includes(':') ? '@' : ':'}${reference}`;
  const digest = reference.includes(':') ? reference : (headerDigest(answer) ?? digestOf(payload));
  try {
    verifyDigest(digest, payload);
  } catch {
    throw failed(parts, mirror, `the manifest it sent for ${named} is not ${digest}`);
  }
  try {
    const mediaType = pushedMediaType(answer.headers['content-type'], payload);
    await parts.store.putManifest(name, digest, { mediaType, payload }, MIRROR_CTX, tag === undefined ? {} : { tag });
  } catch (error) {
    // What the upstream sent is wrong, not what the client asked.
    if (error instanceof StoreError && ['MANIFEST_INVALID', 'SIZE_INVALID', 'DIGEST_INVALID'].includes(error.code)) {
      throw failed(parts, mirror, `the manifest it sent for ${named} cannot be kept: ${error.message}`);
    }
    throw error;
  }
}

/** The upstream's Docker-Content-Digest, when it is a digest: it names a path of the next request. */
function headerDigest(answer: UpstreamAnswer): string | undefined {
  const digest = answer.headers['docker-content-digest'];
  return isDigest(digest) ? digest : undefined;
}

/** The digest `tag` points at in the cache, or undefined. */
async function cachedTag(parts: MirrorParts, name: string, tag: string): Promise<string | undefined> {
  try {
    return (await parts.store.getTag(name, tag)).digest;
  } catch (error) {
    unlessNotFound(error);
    return undefined;
  }
}

async function hasManifest(parts: MirrorParts, name: string, digest: string): Promise<boolean> {
  try {
    await parts.store.statManifest(name, digest);
    return true;
  } catch (error) {
    unlessNotFound(error);
    return false;
  }
}

function unlessNotFound(error: unknown): void {
  if (!(error instanceof NotFoundError)) throw error;
}
