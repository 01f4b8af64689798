// The event log over HTTP, after Docker Trusted Registry's /api/v0/events:
// pages of past events, and a live stream of new ones as server-sent events.
//
// Who may read what is decided in one place, eventVisibility: an admin
// reads every event, anyone else every event of the repositories they may
// pull, whoever its actor; `actorId` filters within that. With no htpasswd
// the registry is a developer's own: everyone is anonymous and an admin.
// With an htpasswd, the users named by --admin are admins.

import { finished } from 'node:stream';
import type { EventObjectType, EventQuery, EventType } from '../../store/index.js';
import { eventVisibility, visibleEvents } from '../authorize.js';
import { HttpError } from '../errors.js';
import type { RequestContext } from '../http.js';

function time(value: string | null, field: string): Date | undefined {
  if (value === null || value === '') return undefined;
  // Epoch milliseconds or any date Date.parse reads (RFC 3339 in practice).
  const date = /^\d+$/.test(value) ? new Date(Number(value)) : new Date(value);
  if (Number.isNaN(date.getTime())) throw new HttpError('EVENT_INVALID', `${field} is not a date`);
  return date;
}

function upper<T extends string>(value: string | null): T | undefined {
  return value === null || value === '' ? undefined : (value.toUpperCase() as T);
}

/**
 * The query parameters shared by both endpoints: the store's filters. Who
 * sees which of the events they select is eventVisibility's to decide.
 */
function eventQuery(c: RequestContext): EventQuery {
  const params = c.url.searchParams;
  const limit = params.get('limit');
  if (limit !== null && !/^\d{1,9}$/.test(limit)) {
    throw new HttpError('PAGINATION_NUMBER_INVALID', 'limit must be a positive integer');
  }
  return {
    actor: params.get('actorId') ?? undefined,
    type: upper<EventType>(params.get('eventType')),
    objectType: upper<EventObjectType>(params.get('objectType')),
    repository: params.get('repository') || undefined,
    publishedBefore: time(params.get('publishedBefore'), 'publishedBefore'),
    publishedAfter: time(params.get('publishedAfter'), 'publishedAfter'),
    perPage: limit === null ? undefined : Number(limit),
    page: params.get('start') || undefined,
  };
}

/**
 * GET /api/v0/events — DTR's event list: `start` (the previous page's
 * `next`), `limit`, `publishedBefore` (exclusive), `publishedAfter`
 * (inclusive), `actorId`, `eventType`, plus `objectType` and `repository`.
 * Newest first; `{"events":[…],"next":…}` with a Link to the next page.
 */
export async function listEvents(c: RequestContext): Promise<void> {
  const query = eventQuery(c);
  const visible = eventVisibility(c.registry, c.actor);
  const { store } = c.registry;
  const page = await (visible === undefined ? store.getEvents(query) : visibleEvents(store, visible, query));
  const headers: Record<string, string> = {};
  if (page.next !== undefined) {
    const next = new URLSearchParams(c.url.searchParams);
    next.set('start', page.next);
    headers.Link = `<${c.url.pathname}?${next}>; rel="next"`;
  }
  const body = JSON.stringify(page);
  c.res.writeHead(200, { ...headers, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  c.res.end(body);
}

/**
 * GET /api/v0/events/stream — every event committed from now on that the
 * caller may see and the filters admit, as server-sent events (`id` the
 * event id, `event` its type, `data` the event as JSON). Resolves when the
 * client goes away or the server shuts the stream.
 */
export async function streamEvents(c: RequestContext): Promise<void> {
  // The stream admits what the list would (the store applies the filters and
  // refuses a bad query before anything is sent, eventVisibility the rule);
  // the time bounds and paging are the list's alone.
  const query = { ...eventQuery(c), publishedAfter: undefined, publishedBefore: undefined };
  const { res, registry } = c;
  const visible = eventVisibility(registry, c.actor);
  const unsubscribe = await registry.store.subscribe(
    (event) => {
      if (res.destroyed || res.writableEnded) return;
      if (visible !== undefined && !visible(event)) return;
      res.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
    },
    { query },
  );
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache',
    'X-Accel-Buffering': 'no',
  });
  res.write(': events\n\n');
  const heartbeat = setInterval(() => {
    if (!res.destroyed && !res.writableEnded) res.write(': keep-alive\n\n');
  }, registry.heartbeatInterval);
  registry.streams.add(res);
  try {
    // finished(), not a 'close' listener: a client gone during authentication
    // has closed the response already, and its stream must end at once.
    await new Promise<void>((resolve) => finished(res, () => resolve()));
  } finally {
    clearInterval(heartbeat);
    unsubscribe();
    registry.streams.delete(res);
  }
}
