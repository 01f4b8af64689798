// The storage in use over HTTP, beside the event log: GET /api/v0/usage,
// read from the sizes the store keeps (no scan). Who sees which namespace
// is namespaceVisibility's to decide; the registry's total is an admin's.

import { isNamespace, type Usage } from '../../store/index.js';
import { unauthorized } from '../auth.js';
import { namespaceVisibility } from '../authorize.js';
import { HttpError } from '../errors.js';
import { sendJson, type RequestContext } from '../http.js';

/**
 * GET /api/v0/usage[?namespace=<ns>] — `{"total":{blobs,bytes},
 * "namespaces":[{namespace,bytes,repositories,quota?}]}` (Store.usage);
 * with `namespace`, that one and its `repositories` ([{repository,bytes}]).
 * A user who is no admin gets no total, the namespaces they may pull
 * from, and of a namespace the repositories they may pull.
 * @throws HttpError NAME_INVALID (not a namespace), UNAUTHORIZED or DENIED (a namespace they may not pull from).
 */
export async function getUsage(c: RequestContext): Promise<void> {
  const namespace = c.url.searchParams.get('namespace') || undefined;
  if (namespace !== undefined && !isNamespace(namespace)) {
    throw new HttpError('NAME_INVALID', 'namespace must be a repository name of one component, like acme');
  }
  const visible = namespaceVisibility(c.registry, c.actor);
  if (namespace !== undefined && visible !== undefined && !visible(namespace)) {
    if (c.actor === '') throw unauthorized(`anonymous clients may not pull from ${namespace}`);
    throw new HttpError('DENIED', `user ${JSON.stringify(c.actor)} may not pull from ${namespace}`);
  }
  const found = await c.registry.store.usage(namespace === undefined ? {} : { namespace, repositories: true });
  sendJson(c, 200, visible === undefined ? found : visibleUsage(c, found, visible));
}

/** What a user who is no admin sees of `usage`: no total, the namespaces `visible` admits, the repositories they may pull. */
function visibleUsage(c: RequestContext, usage: Usage, visible: (namespace: string) => boolean): Omit<Usage, 'total'> {
  const shown: Omit<Usage, 'total'> = { namespaces: usage.namespaces.filter((n) => visible(n.namespace)) };
  const { access } = c.registry;
  if (usage.repositories !== undefined) {
    shown.repositories = usage.repositories.filter((r) => access === undefined || access.allows(c.actor, 'pull', r.repository));
  }
  return shown;
}
