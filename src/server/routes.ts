// The router: a request's method and path become one typed route, with every
// repository name, tag, digest and upload id already checked against the
// grammar, before any handler can reach the filesystem or SQL.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#endpoints

import { checkDigest, checkRepository, NotFoundError, parseReference, StoreError, type Reference } from '../store/index.js';
import { HttpError } from './errors.js';

export type Route =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'tags'; name: string }
  | { kind: 'manifest'; name: string; reference: Reference }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploadStart'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'referrers'; name: string; digest: string }
  | { kind: 'events' }
  | { kind: 'tagDetails'; name: string }
  | { kind: 'eventStream' }
  | { kind: 'metrics' }
  | { kind: 'healthz' }
  | { kind: 'readyz' };

export type RouteKind = Route['kind'];

/** The methods each route answers; anything else is 405. */
const METHODS: Record<RouteKind, readonly string[]> = {
  base: ['GET', 'HEAD'],
  catalog: ['GET'],
  tags: ['GET'],
  manifest: ['GET', 'HEAD', 'PUT', 'DELETE'],
  blob: ['GET', 'HEAD', 'DELETE'],
  uploadStart: ['POST'],
  upload: ['GET', 'PATCH', 'PUT', 'DELETE'],
  referrers: ['GET'],
  events: ['GET'],
  tagDetails: ['GET'],
  eventStream: ['GET'],
  metrics: ['GET', 'HEAD'],
  healthz: ['GET', 'HEAD'],
  readyz: ['GET', 'HEAD'],
};

/** Upload ids are the server's own UUIDs; nothing else may name a file in uploads/. */
const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// Names contain slashes, so each pattern anchors on its suffix and the name is
// everything before it. The upload patterns come before the blob pattern.
// Manifests first: the most frequent requests, and a path that ends in
// /manifests/<reference> matches no other pattern.
const PATTERNS: ReadonlyArray<[RegExp, (m: RegExpExecArray, method: string) => Route]> = [
  [
    /^\/v2\/(.+)\/manifests\/([^/]+)$/,
    (m, method) => ({ kind: 'manifest', name: name(m[1]), reference: manifestReference(segment(m[2]), method) }),
  ],
  [/^\/v2\/?$/, () => ({ kind: 'base' })],
  [/^\/v2\/_catalog$/, () => ({ kind: 'catalog' })],
  [/^\/api\/v0\/events\/?$/, () => ({ kind: 'events' })],
  [/^\/api\/v0\/events\/stream$/, () => ({ kind: 'eventStream' })],
  [/^\/api\/v0\/repositories\/(.+)\/tags\/?$/, (m) => ({ kind: 'tagDetails', name: name(m[1]) })],
  [/^\/metrics$/, () => ({ kind: 'metrics' })],
  [/^\/healthz$/, () => ({ kind: 'healthz' })],
  [/^\/readyz$/, () => ({ kind: 'readyz' })],
  [/^\/v2\/(.+)\/tags\/list$/, (m) => ({ kind: 'tags', name: name(m[1]) })],
  [/^\/v2\/(.+)\/blobs\/uploads\/?$/, (m) => ({ kind: 'uploadStart', name: name(m[1]) })],
  [/^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, (m) => ({ kind: 'upload', name: name(m[1]), id: uploadId(m[2]) })],
  [/^\/v2\/(.+)\/blobs\/([^/]+)$/, (m) => ({ kind: 'blob', name: name(m[1]), digest: checkDigest(segment(m[2])) })],
  [/^\/v2\/(.+)\/referrers\/([^/]+)$/, (m) => ({ kind: 'referrers', name: name(m[1]), digest: checkDigest(segment(m[2])) })],
];

// Clients may percent-encode the colon of a digest; the grammar then refuses
// anything that decoding lets through (a '/', '..', NUL).
function segment(raw: string): string {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError('NAME_INVALID', 'malformed percent-encoding in the path');
  }
}

function name(raw: string): string {
  return checkRepository(segment(raw));
}

/**
 * A manifest reference. A pull by a reference that is neither a tag nor a
 * digest is MANIFEST_UNKNOWN (404): nothing can exist under that name, and the
 * conformance suite (v1.1.1, 01_pull_test.go "GET nonexistent manifest should
 * return 404", with the reference `.INVALID_MANIFEST_NAME`) expects a 404. A
 * push or delete by one stays TAG_INVALID/DIGEST_INVALID (400), which the
 * suite's "400 response body should contain OCI-conforming JSON message"
 * accepts (a PUT to `sha256:totallywrong` in earlier releases; in v1.1.1 a
 * GET, for which it accepts 400 or 404).
 */
function manifestReference(raw: string, method: string): Reference {
  try {
    return parseReference(raw);
  } catch (error) {
    const pull = method === 'GET' || method === 'HEAD';
    if (pull && error instanceof StoreError && (error.code === 'TAG_INVALID' || error.code === 'DIGEST_INVALID')) {
      throw new NotFoundError('MANIFEST_UNKNOWN', 'no manifest can have this reference: it is neither a tag nor a digest');
    }
    throw error;
  }
}

function uploadId(raw: string): string {
  if (!UPLOAD_ID.test(raw)) throw new HttpError('BLOB_UPLOAD_UNKNOWN', 'unknown upload session');
  return raw;
}

/**
 * Parses a request into a route.
 * @throws HttpError NOT_FOUND (no such endpoint), UNSUPPORTED (405, with Allow),
 * BLOB_UPLOAD_UNKNOWN; StoreError NAME_INVALID, TAG_INVALID, DIGEST_INVALID.
 */
export function parseRoute(method: string, pathname: string): Route {
  for (const [pattern, build] of PATTERNS) {
    const match = pattern.exec(pathname);
    if (!match) continue;
    const route = build(match, method);
    const allowed = METHODS[route.kind];
    if (!allowed.includes(method)) {
      throw new HttpError('UNSUPPORTED', `${method} is not supported here`, { headers: { Allow: allowed.join(', ') } });
    }
    return route;
  }
  throw new HttpError('NOT_FOUND', 'no such endpoint');
}

/**
 * The paths answered before authentication, to anyone: an orchestrator's
 * probes of the process, which carry no credentials and reveal nothing of
 * the repositories.
 */
export function isProbe(pathname: string): boolean {
  return pathname === '/healthz' || pathname === '/readyz';
}

/**
 * The kind of route a request is, for the log: that of parseRoute, or
 * 'none' when nothing matched (or a name did not pass the grammar). Never throws.
 */
export function routeKindOf(method: string, pathname: string): RouteKind | 'none' {
  try {
    return parseRoute(method, pathname).kind;
  } catch {
    return 'none';
  }
}

/** True for the methods that change something: refused in read-only mode. */
export function isWrite(method: string): boolean {
  return method === 'POST' || method === 'PUT' || method === 'PATCH' || method === 'DELETE';
}
