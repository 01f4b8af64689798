// The event log on PostgreSQL: events appended by callers, the getEvents
// query (its filters and page cursor are events.ts's), and live delivery to
// subscribers, woken by LISTEN/NOTIFY from whichever replica committed.

import { deliverEvent, eventFilter, eventPage, eventPageParams, eventParams, type Subscriber } from '../events.js';
import { toEvent, type EventRow } from '../rows.js';
import { MAX_PAGE_SIZE } from '../limits.js';
import type { Event, EventPage, EventQuery, NewEvent } from '../types.js';
import { EVENT_CHANNEL, type PgContext, type Sql } from './context.js';

/** See Store.createEvent. */
export async function createEvent(cx: PgContext, event: NewEvent): Promise<Event> {
  const p = eventParams(event);
  const fields = {
    repository: p.repository ?? undefined,
    tag: p.tag ?? undefined,
    digest: p.digest ?? undefined,
    previousDigest: p.previousDigest ?? undefined,
    count: p.count ?? undefined,
    reason: p.reason ?? undefined,
  };
  const { events } = await cx.writeWithEvents(async (tx) => tx.record(p.actor, p.type, p.objectType, p.objectId, fields));
  return toEvent(events[0]);
}

/** The WHERE of a getEvents query: fixed fragments, one per filter given, values as parameters. */
function eventConditions(sql: Sql, p: ReturnType<typeof eventPageParams>) {
  const conditions = [sql`true`];
  if (p.actor !== null) conditions.push(sql`actor = ${p.actor}`);
  if (p.type !== null) conditions.push(sql`type = ${p.type}`);
  if (p.objectType !== null) conditions.push(sql`object_type = ${p.objectType}`);
  if (p.repository !== null) conditions.push(sql`repository = ${p.repository}`);
  if (p.before !== null) conditions.push(sql`published_at < ${p.before}`);
  if (p.after !== null) conditions.push(sql`published_at >= ${p.after}`);
  if (p.cursorAt !== null) {
    conditions.push(sql`(published_at < ${p.cursorAt} OR (published_at = ${p.cursorAt} AND seq < ${p.cursorSeq}))`);
  }
  return conditions.reduce((all, condition) => sql`${all} AND ${condition}`);
}

/** See Store.getEvents. */
export async function getEvents(cx: PgContext, query: EventQuery): Promise<EventPage> {
  const p = eventPageParams(query);
  const rows = await cx.read((sql) => sql<EventRow[]>`
    SELECT * FROM event WHERE ${eventConditions(sql, p)} ORDER BY published_at DESC, seq DESC LIMIT ${p.limit}`);
  return eventPage(rows, p.limit - 1);
}

/**
 * The subscribers of one store and the delivery to them. Seq order is
 * commit order (see flushEvents in context.ts), so reading `seq > delivered`
 * after each wake-up misses nothing and repeats nothing. Wake-ups: this
 * store's own commits at once; other connections' and replicas' by NOTIFY on
 * a listening connection (and once more whenever it reconnects).
 */
export class PgSubscriptions {
  readonly #cx: PgContext;
  readonly #subscribers = new Set<Subscriber>();
  #delivered = 0;
  #pumping = false;
  #again = false;
  #listening: Promise<{ unlisten(): Promise<void> }> | undefined;

  constructor(cx: PgContext) {
    this.#cx = cx;
  }

  /** See Store.subscribe. */
  async subscribe(fn: (event: Event) => void, options: { query?: EventQuery; onError?: (error: unknown) => void } = {}): Promise<() => void> {
    const cx = this.#cx;
    const filter = options.query === undefined ? undefined : eventFilter(options.query);
    // Listening before the head is read: nothing committed after it goes unheard.
    this.#listening ??= cx.read((sql) =>
      sql.listen(
        EVENT_CHANNEL,
        () => void this.#pump(),
        () => void this.#pump(),
      ),
    );
    try {
      await this.#listening;
    } catch (error) {
      this.#listening = undefined;
      throw error;
    }
    const [head] = await cx.read((sql) => sql<{ seq: number }[]>`SELECT seq FROM event_head`);
    if (this.#subscribers.size === 0) this.#delivered = head.seq;
    const subscriber: Subscriber = { fn, onError: options.onError, filter, after: head.seq };
    this.#subscribers.add(subscriber);
    cx.afterWrite = () => void this.#pump();
    return () => {
      this.#subscribers.delete(subscriber);
      if (this.#subscribers.size === 0) void this.close();
    };
  }

  /** Stops delivery to everyone and stops listening. */
  async close(): Promise<void> {
    this.#cx.afterWrite = undefined;
    this.#subscribers.clear();
    const listening = this.#listening;
    this.#listening = undefined;
    if (listening) await listening.then((l) => l.unlisten()).catch(() => {});
  }

  /** Delivers committed events past #delivered, in seq order; wake-ups during a run make it read again. */
  async #pump(): Promise<void> {
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#again = false;
        for (;;) {
          if (this.#subscribers.size === 0 || !this.#cx.open) return;
          const rows = await this.#cx.sql<EventRow[]>`SELECT * FROM event WHERE seq > ${this.#delivered} ORDER BY seq LIMIT ${MAX_PAGE_SIZE}`;
          if (rows.length === 0) break;
          for (const row of rows) {
            this.#delivered = row.seq;
            this.#deliver(row);
          }
        }
      } while (this.#again);
    } catch {
      // The database is unreachable or the store closed: the next wake-up (a
      // commit, a notification, the listener's reconnection) reads again from #delivered.
    } finally {
      this.#pumping = false;
    }
  }

  #deliver(row: EventRow): void {
    deliverEvent(this.#subscribers, row);
  }
}
