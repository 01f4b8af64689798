// Access rules applied to requests: what each route needs (pull, push or
// delete in a repository), the answer when it is missing, who is an admin,
// and who sees which event (the catalog's filter is in catalog.ts). Only the
// admin and event rules are reached without access rules: without them no
// other request pays for any of this.

import type { Store, Event, EventPage, EventQuery } from '../store/index.js';
import type { Access, Action } from './access.js';
import { unauthorized } from './auth.js';
import { HttpError } from './errors.js';
import type { RequestContext } from './http.js';
import type { Route } from './routes.js';

/** The (action, repository) pairs a route needs; [] for routes that need none or filter instead. */
function needs(method: string, route: Route, url: URL): Array<[Action, string]> {
  const read = method === 'GET' || method === 'HEAD';
  switch (route.kind) {
    case 'tags':
    case 'tagDetails':
    case 'referrers':
      return [['pull', route.name]];
    case 'manifest':
    case 'blob':
      return [[read ? 'pull' : method === 'DELETE' ? 'delete' : 'push', route.name]];
    case 'upload':
      // Status and cancel are part of a push, not a pull or a delete.
      return [['push', route.name]];
    case 'uploadStart': {
      // A mount reads the source: it needs pull there, as distribution
      // requires (an access record for `from`). It is refused rather than
      // turned into an upload session, so that a missing grant shows at once
      // instead of as a slow re-upload.
      const from = url.searchParams.get('from');
      const mount = url.searchParams.get('mount') !== null && from !== null && from !== '';
      return mount ? [['push', route.name], ['pull', from]] : [['push', route.name]];
    }
    default:
      return [];
  }
}

/**
 * Refuses a request the rules do not allow: 401 UNAUTHORIZED with a
 * challenge for an anonymous client (credentials may help), 403 DENIED for
 * an authenticated user (they would not). `/v2/` is the login check: with an
 * htpasswd file it challenges anonymous clients, so that `docker login`
 * verifies credentials, even when anonymous clients may pull.
 * @throws HttpError UNAUTHORIZED or DENIED.
 */
export function authorize(c: RequestContext, access: Access, method: string, route: Route, withLogins: boolean): void {
  if (route.kind === 'base' && c.actor === '' && withLogins) throw unauthorized();
  for (const [action, repository] of needs(method, route, c.url)) {
    if (access.allows(c.actor, action, repository)) continue;
    if (c.actor === '') throw unauthorized(`anonymous clients may not ${action} in ${repository}`);
    throw new HttpError('DENIED', `user ${JSON.stringify(c.actor)} may not ${action} in ${repository}`);
  }
}

/**
 * Who is an admin: with access rules, their admins (`admins` added to them);
 * else, with logins, the users `admins` names; with no logins, everyone (the
 * registry is a developer's own).
 */
export function adminRule(access: Access | undefined, logins: boolean, admins: readonly string[]): (user: string) => boolean {
  if (access !== undefined) return (user) => access.isAdmin(user);
  if (!logins) return () => true;
  const named = new Set(admins);
  return (user) => named.has(user);
}

/**
 * Which namespaces `actor` sees the usage of: an admin all of them; anyone
 * else those holding a repository they may pull, or could (a rule's
 * pattern's first segment matches the namespace). Without access rules whoever is let in may pull
 * everything. Undefined when `actor` sees every namespace.
 */
export function namespaceVisibility(registry: { access?: Access; isAdmin(user: string): boolean }, actor: string): ((namespace: string) => boolean) | undefined {
  const { access } = registry;
  if (registry.isAdmin(actor) || access === undefined) return undefined;
  return (namespace) => access.reaches(actor, 'pull', namespace);
}

/** Store pages one events request reads before answering a short page. */
const EVENT_ROUNDS = 20;

/** Whether an event is one to show; see eventVisibility. */
type EventVisibility = (event: Event) => boolean;

/**
 * The one rule of who sees which event, for the event list and the stream
 * alike: an admin every event; anyone else every event of the repositories
 * they may pull, whoever its actor (as a project's members see its audit
 * log in Harbor and GitLab). Without access rules whoever is let in may pull
 * every repository, so they see every event that names one. Undefined when
 * `actor` sees every event.
 */
export function eventVisibility(registry: { access?: Access; isAdmin(user: string): boolean }, actor: string): EventVisibility | undefined {
  if (registry.isAdmin(actor)) return undefined;
  const { access } = registry;
  return (event) => event.repository !== undefined && (access === undefined || access.allows(actor, 'pull', event.repository));
}

/**
 * A page of the events `visible` admits, filtered while paging. The store's
 * cursor is opaque and marks the end of a page it read, so each read asks
 * for no more than the page still lacks: every event up to the cursor
 * returned was either kept or filtered out. After EVENT_ROUNDS reads the
 * page is answered short, with its `next`.
 * @throws StoreError as getEvents does: EVENT_INVALID, NAME_INVALID, PAGINATION_NUMBER_INVALID.
 */
export async function visibleEvents(store: Store, visible: EventVisibility, query: EventQuery): Promise<EventPage> {
  const perPage = query.perPage ?? 100;
  const events: Event[] = [];
  let page: string | undefined = query.page;
  for (let round = 0; round < EVENT_ROUNDS; round++) {
    const read = await store.getEvents({ ...query, perPage: perPage - events.length, page });
    for (const event of read.events) if (visible(event)) events.push(event);
    page = read.next;
    if (page === undefined || events.length === perPage) break;
  }
  return page === undefined ? { events } : { events, next: page };
}
