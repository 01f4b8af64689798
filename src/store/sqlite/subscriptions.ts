// Live delivery of the event log (DTR's Subscribe): this connection's events
// right after each commit, other processes' within a poll interval, in commit
// order and once each.

import type Database from 'better-sqlite3';
import { prepareAll } from './connection.js';
import type { StoreContext } from './context.js';
import { deliverEvent, eventFilter, type Subscriber } from '../events.js';
import type { EventRow } from '../rows.js';
import { MAX_PAGE_SIZE } from '../limits.js';
import type { Event, EventQuery } from '../types.js';

const SUBSCRIPTION_SQL = {
  eventsAfter: `
    SELECT *
    FROM event
    WHERE seq > :seq
    ORDER BY seq
    LIMIT :limit`,
  lastEventSeq: 'SELECT coalesce(max(seq), 0) FROM event',
  // Changes whenever another connection commits: a cheap "anything new?".
  dataVersion: 'PRAGMA data_version',
};

/** @internal */
export function prepareSubscriptionStatements(db: Database.Database): Record<keyof typeof SUBSCRIPTION_SQL, Database.Statement> {
  return prepareAll(db, SUBSCRIPTION_SQL, ['lastEventSeq', 'dataVersion']);
}

/** The subscribers of one store and the delivery to them. */
export class Subscriptions {
  readonly #cx: StoreContext;
  readonly #pollInterval: number;
  readonly #subscribers = new Set<Subscriber>();
  #delivered = 0;
  #dataVersion = 0;
  #pumping = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(cx: StoreContext, pollInterval: number) {
    this.#cx = cx;
    this.#pollInterval = pollInterval;
  }

  /** See Store.subscribe. */
  subscribe(fn: (event: Event) => void, options: { query?: EventQuery; onError?: (error: unknown) => void } = {}): () => void {
    const cx = this.#cx;
    const sql = cx.sql.subscriptions;
    const filter = options.query === undefined ? undefined : eventFilter(options.query);
    const after = cx.read(() => {
      if (this.#subscribers.size === 0) {
        this.#dataVersion = sql.dataVersion.get() as number;
        this.#delivered = sql.lastEventSeq.get() as number;
        return this.#delivered;
      }
      return sql.lastEventSeq.get() as number;
    });
    const subscriber: Subscriber = { fn, onError: options.onError, filter, after };
    this.#subscribers.add(subscriber);
    // This connection's commits are delivered as soon as they are made.
    cx.afterWrite = () => this.#pump();
    this.#timer ??= setInterval(() => this.#poll(), this.#pollInterval).unref();
    return () => {
      this.#subscribers.delete(subscriber);
      if (this.#subscribers.size === 0) this.close();
    };
  }

  /** Stops delivery to everyone. */
  close(): void {
    this.#cx.afterWrite = undefined;
    this.#subscribers.clear();
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #poll(): void {
    if (!this.#cx.open) return this.close();
    try {
      const version = this.#cx.sql.subscriptions.dataVersion.get() as number;
      if (version === this.#dataVersion) return;
      this.#dataVersion = version;
    } catch {
      return; // A busy or failing read now is retried at the next tick.
    }
    this.#pump();
  }

  /** Delivers committed events past #delivered, in seq order; re-entrant calls fold into the running one. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      for (;;) {
        const rows = this.#cx.sql.subscriptions.eventsAfter.all({ seq: this.#delivered, limit: MAX_PAGE_SIZE }) as EventRow[];
        if (rows.length === 0) break;
        for (const row of rows) {
          this.#delivered = row.seq;
          this.#deliver(row);
        }
      }
    } catch {
      // The database went away (closed) mid-delivery: nothing left to deliver to.
    } finally {
      this.#pumping = false;
    }
  }

  #deliver(row: EventRow): void {
    deliverEvent(this.#subscribers, row);
  }
}
