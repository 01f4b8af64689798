// What every concern of the PostgreSQL store runs in: the pool, the
// effective limits, and the transactions. Each public method is one call of
// write(), read() or snapshot(); a write runs in one READ COMMITTED
// transaction that takes row locks (or ON CONFLICT) where it reads what it
// then writes, is retried a bounded number of times when it loses a race,
// and appends its events last, just before its commit (see flushEvents).

import type postgres from 'postgres';
import { CallbackFailure, StoreError } from '../errors.js';
import { eventId, type EventFields } from '../events.js';
import type { EventRow } from '../rows.js';
import type { StoreLimits } from '../limits.js';
import type { CompiledPolicy } from '../policy.js';
import type { EventObjectType, EventType } from '../types.js';
import { isRetried, translatePgError } from './errors.js';

/** A connection pool, or a transaction on one of its connections. */
export type Sql = postgres.Sql;
export type TxSql = postgres.TransactionSql;

/** The channel NOTIFY wakes subscribers on, with the newest seq as payload. */
export const EVENT_CHANNEL = 'regmeta_events';

/** How many times a transaction runs at most when it loses races, before DATABASE_BUSY. */
const MAX_ATTEMPTS = 6;

interface PendingEvent extends EventFields {
  actor: string;
  type: EventType;
  objectType: EventObjectType;
  objectId: string;
}

/** One write transaction: its connection, and the events it will append just before it commits. */
export class WriteTx {
  readonly events: PendingEvent[] = [];
  /** Set once a caller's callback (a file placed or removed) has run: the transaction is not run again after that. */
  callbackRan = false;
  constructor(
    readonly sql: TxSql,
    /** The store's policy, which the write checks inside this transaction. */
    readonly policy: CompiledPolicy,
  ) {}

  /** Runs a caller's callback inside this transaction: what it throws reaches the caller as is. */
  async callback(fn: () => void | Promise<void>): Promise<void> {
    this.callbackRan = true;
    try {
      await fn();
    } catch (error) {
      throw new CallbackFailure(error);
    }
  }

  /** Records an event of the change this transaction makes; the arguments are already checked. */
  record(actor: string, type: EventType, objectType: EventObjectType, objectId: string, fields: EventFields = {}): void {
    this.events.push({ actor, type, objectType, objectId, ...fields });
  }
}

/**
 * Appends the events of a transaction, as its last statement. It updates the
 * one event_head row first, and so holds that row's lock until the commit:
 * event-writing transactions pass this point one at a time, each taking the
 * seqs after the previous one's, which has committed (and is visible) before
 * the lock passes on. Seq order is therefore commit order, and a reader of
 * `seq > last` never skips an event committed late. The price is that these
 * commits are serialized from this statement on: one statement and a commit.
 * The NOTIFY in the same statement is delivered when the transaction commits.
 * The statement is sent at once, so that a COMMIT pipelined after it follows it.
 */
function flushEvents(tx: WriteTx, now: number): Promise<EventRow[]> {
  const events = tx.events;
  if (events.length === 0) return Promise.resolve([]);
  const n = events.length;
  const column = (key: Exclude<keyof PendingEvent, 'count'>) => events.map((e): string | null => e[key] ?? null);
  // Sent now (execute), not when awaited: the COMMIT pipelined after it must follow it on the wire.
  return tx.sql`
    WITH head AS (
      UPDATE event_head
      SET seq = seq + ${n}, published_at = greatest(published_at, ${now})
      RETURNING seq - ${n} AS base, published_at
    ), inserted AS (
      INSERT INTO event (
        seq, id, published_at, actor, type, object_type, object_id, repository, tag, digest, previous_digest, count, reason
      )
      SELECT head.base + e.n, e.id, head.published_at, e.actor, e.type, e.object_type, e.object_id,
        e.repository, e.tag, e.digest, e.previous_digest, e.count, e.reason
      FROM head, unnest(
        ${events.map(() => eventId(now))}::text[],
        ${column('actor')}::text[],
        ${column('type')}::text[],
        ${column('objectType')}::text[],
        ${column('objectId')}::text[],
        ${column('repository')}::text[],
        ${column('tag')}::text[],
        ${column('digest')}::text[],
        ${column('previousDigest')}::text[],
        ${events.map((e) => e.count ?? null)}::bigint[],
        ${column('reason')}::text[]
      ) WITH ORDINALITY AS e(id, actor, type, object_type, object_id, repository, tag, digest, previous_digest, count, reason, n)
      RETURNING *
    )
    SELECT inserted.*, pg_notify(${EVENT_CHANNEL}, (SELECT max(seq) FROM inserted)::text) AS notified
    FROM inserted
    ORDER BY seq`.execute() as unknown as Promise<EventRow[]>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class PgContext {
  /** Runs after each write commits while anyone subscribes: the delivery of its events. */
  afterWrite: (() => void) | undefined;
  #closed = false;

  constructor(
    readonly sql: Sql,
    readonly location: string,
    readonly limits: StoreLimits,
    readonly policy: CompiledPolicy,
  ) {}

  get open(): boolean {
    return !this.#closed;
  }

  /**
   * Runs `fn` in one transaction, its events appended last, then delivers
   * them to this store's subscribers. A transaction that loses a race
   * (serialization failure, deadlock, a concurrent insert or delete) runs
   * again, after a jittered backoff, up to MAX_ATTEMPTS times; then
   * DATABASE_BUSY. `fn` must be safe to run again; a caller's callback that
   * throws is not retried.
   * @returns what `fn` returns, and the events written.
   */
  async write<T>(fn: (tx: WriteTx) => Promise<T>): Promise<T> {
    return (await this.writeWithEvents(fn)).result;
  }

  /** As write(), also returning the stored events (createEvent's answer). */
  async writeWithEvents<T>(fn: (tx: WriteTx) => Promise<T>): Promise<{ result: T; events: EventRow[] }> {
    this.#checkOpen();
    for (let attempt = 1; ; attempt++) {
      const attemptTx: { tx?: WriteTx } = {};
      try {
        const value = await this.#transaction(fn, attemptTx);
        if (value.events.length > 0) this.afterWrite?.();
        return value;
      } catch (error) {
        if (error instanceof CallbackFailure) throw error.error;
        // A callback that has run (a file moved) is not run twice: its transaction is not retried.
        const final = !isRetried(error) || attempt >= MAX_ATTEMPTS || this.#closed || attemptTx.tx?.callbackRan === true;
        if (final) throw this.#busy(error, attempt);
        // Jitter, so that the transactions that collided do not collide again.
        await sleep(Math.random() * 2 ** attempt * 5);
      }
    }
  }

  /**
   * One attempt of a write, on a connection of its own. BEGIN goes out with
   * the first statement and COMMIT with the last (the events), pipelined, so
   * a transaction costs no round trip of its own: a COMMIT that follows a
   * failed statement is answered as a ROLLBACK, so nothing half-done commits.
   */
  async #transaction<T>(fn: (tx: WriteTx) => Promise<T>, attempt: { tx?: WriteTx }): Promise<{ result: T; events: EventRow[] }> {
    const connection = await this.sql.reserve();
    let open = true;
    try {
      const begin = connection`BEGIN`.execute();
      begin.catch(() => {}); // what it rejects with, the first statement rejects with too
      const tx = (attempt.tx = new WriteTx(connection as unknown as TxSql, this.policy));
      const result = await fn(tx);
      await begin;
      const [events] = await Promise.all([flushEvents(tx, Date.now()), connection`COMMIT`.execute()]);
      open = false;
      return { result, events };
    } finally {
      if (open) await connection`ROLLBACK`.catch(() => {});
      connection.release();
    }
  }

  /** Runs a read of one statement (or a second only on a miss), consistent without a transaction. */
  async read<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    this.#checkOpen();
    try {
      return await fn(this.sql);
    } catch (error) {
      throw translatePgError(error, this.location);
    }
  }

  /** Runs a read of several statements in one REPEATABLE READ, read-only transaction: one snapshot. */
  async snapshot<T>(fn: (sql: TxSql) => Promise<T>): Promise<T> {
    this.#checkOpen();
    try {
      return (await this.sql.begin('isolation level repeatable read read only', (sql) => fn(sql as unknown as TxSql))) as T;
    } catch (error) {
      throw translatePgError(error, this.location);
    }
  }

  /** Closes the pool, letting running queries finish; later calls reject with STORE_CLOSED. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.sql.end({ timeout: 5 });
  }

  #busy(error: unknown, attempts: number): StoreError {
    const translated = translatePgError(error, this.location);
    if (!isRetried(error)) return translated;
    return new StoreError(
      'DATABASE_BUSY',
      `${this.location}: gave up after ${attempts} attempts that lost races with concurrent transactions`,
      translated.detail,
      { cause: error },
    );
  }

  #checkOpen(): void {
    if (this.#closed) throw new StoreError('STORE_CLOSED', `the store on ${this.location} is closed`);
  }
}
