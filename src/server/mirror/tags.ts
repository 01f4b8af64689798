// The tag list and the referrers of a repository in a mirror's namespace:
// the upstream's, or what is cached when the upstream cannot answer.

import type { RequestContext } from '../http.js';
import type { Route } from '../routes.js';
import type { MirrorParts, MirrorTarget, Next } from './types.js';

/** GET /v2/<name>/tags/list in a mirror's namespace. */
export function listTags(parts: MirrorParts, c: RequestContext, target: MirrorTarget, route: Route & { kind: 'tags' }, next: Next): void | Promise<void> {
  void parts;
  void c;
  void target;
  return next(route);
}

/** GET /v2/<name>/referrers/<digest> in a mirror's namespace. */
export function referrers(parts: MirrorParts, c: RequestContext, target: MirrorTarget, route: Route & { kind: 'referrers' }, next: Next): void | Promise<void> {
  void parts;
  void c;
  void target;
  return next(route);
}
