// `regmeta events`: the event log, filtered, or followed as it grows.

import { EVENT_TYPES, OBJECT_TYPES, type Store, type Event, type EventObjectType, type EventQuery, type EventType } from '../../store/index.js';
import { JSON_OPTION, parse, type Command } from '../args.js';
import { LOCATION_HELP, LOCATION_OPTIONS, location } from '../config/location.js';
import { Exit, usageError } from '../exit.js';
import { openMetadata } from '../open.js';
import { printJson, println } from '../output.js';
import { parseTime } from '../time.js';

const options = {
  ...LOCATION_OPTIONS,
  ...JSON_OPTION,
  actor: { type: 'string' },
  type: { type: 'string' },
  object: { type: 'string' },
  repo: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  limit: { type: 'string' },
  follow: { type: 'boolean', short: 'f' },
} as const;

const TYPES = [...EVENT_TYPES];
const OBJECTS = [...OBJECT_TYPES];

export const events: Command = {
  name: 'events',
  usage: `usage: regmeta events [--actor <name>] [--type <type>] [--object <kind>] [--repo <repo>]
                      [--since <time>] [--until <time>] [--limit <n>] [--follow]
                      [--data <dir>] [--database <url>] [--json]

Prints events newest first: time, type, object kind, object, actor (- for
anonymous), and the digest (with the previous one of a tag move). With
--follow, prints instead the matching events committed from now on, in commit
order, also those of other processes, until interrupted.

options:
  --actor <name>   only this actor's events ('' for anonymous)
  --type <type>    CREATE, UPDATE, DELETE or PULL (batches of pulls, when pull events are on)
  --object <kind>  REPOSITORY, TAG, MANIFEST or BLOB
  --repo <repo>    only events of this repository
  --since <time>   from this time on, inclusive: an ISO date or a duration ago (1h)
  --until <time>   before this time, exclusive: same forms
  --limit <n>      at most n events (default 100; 0 for all); not with --follow
  --follow, -f     wait for new events and print them as they come
${LOCATION_HELP}
  --json           a JSON array; with --follow, one JSON object a line

examples:
  regmeta events --actor GARBAGE_COLLECTOR --type DELETE --since 24h
  regmeta events --follow --repo library/nginx --json
`,
  options,
  exits: {},
  async run(argv) {
    const args = parse(argv, events, options, { min: 0, max: 0 });
    if (!args) return Exit.OK;
    const v = args.values;
    const type = v.type?.toUpperCase();
    if (type !== undefined && !TYPES.includes(type)) throw usageError('events', `--type must be one of ${TYPES.join(', ')}`);
    const object = v.object?.toUpperCase();
    if (object !== undefined && !OBJECTS.includes(object)) throw usageError('events', `--object must be one of ${OBJECTS.join(', ')}`);
    const limit = v.limit === undefined ? 100 : Number(v.limit);
    if (!Number.isSafeInteger(limit) || limit < 0) throw usageError('events', '--limit must be a non-negative integer');
    const query: EventQuery = {};
    if (v.actor !== undefined) query.actor = v.actor;
    if (type !== undefined) query.type = type as EventType;
    if (object !== undefined) query.objectType = object as EventObjectType;
    if (v.repo !== undefined) query.repository = v.repo;
    if (v.since !== undefined) query.publishedAfter = parseTime(v.since, 'events', 'since');
    if (v.until !== undefined) query.publishedBefore = parseTime(v.until, 'events', 'until');

    const store = await openMetadata(location(v, 'events'));
    if (v.follow) return follow(store, query, v.json === true);
    try {
      const found: Event[] = [];
      let page: string | undefined;
      const most = store.limits.maxPageSize;
      do {
        const perPage = limit === 0 ? most : Math.min(most, limit - found.length);
        const result = await store.getEvents({ ...query, perPage, page });
        found.push(...result.events);
        page = result.next;
      } while (page !== undefined && (limit === 0 || found.length < limit));
      if (v.json) printJson(found.map(toJson));
      else for (const event of found) println(formatEvent(event));
      return Exit.OK;
    } finally {
      await store.close();
    }
  },
};

/** Prints matching events as they are committed, until SIGINT or SIGTERM. */
async function follow(store: Store, query: EventQuery, json: boolean): Promise<number> {
  let unsubscribe: () => void;
  try {
    // The store filters, and refuses a bad query before anything is waited for.
    unsubscribe = await store.subscribe((event) => println(json ? JSON.stringify(toJson(event)) : formatEvent(event)), { query });
  } catch (error) {
    await store.close();
    throw error;
  }
  return new Promise((resolve, reject) => {
    // The store's poll timer does not hold the process open; this does.
    const keepAlive = setInterval(() => undefined, 1 << 30);
    const stop = () => {
      clearInterval(keepAlive);
      unsubscribe();
      store.close().then(() => resolve(Exit.OK), reject);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

function toJson(event: Event) {
  return { ...event, publishedAt: event.publishedAt.toISOString() };
}

/** One line: time, type, object kind and id, actor, digest; a pull batch's count and why, when told. */
function formatEvent(event: Event): string {
  const parts = [event.publishedAt.toISOString(), event.type.padEnd(6), event.object.type.padEnd(10), event.object.id, event.actor || '-'];
  if (event.object.type === 'TAG' && event.digest) {
    parts.push(event.previousDigest ? `${event.digest} (was ${event.previousDigest})` : event.digest);
  }
  if (event.count !== undefined) parts.push(`${event.count} ${event.count === 1 ? 'pull' : 'pulls'}${event.tag ? ` by ${event.tag}` : ''}`);
  if (event.reason !== undefined) parts.push(`(${event.reason})`);
  return parts.join('  ');
}
