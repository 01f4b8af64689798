// The connection that holds a replica's upload claims. A claim records the
// backend pid of this connection (upload_session.holder), and the connection
// holds a session advisory lock on its own pid for as long as it lives. When
// the replica dies, PostgreSQL ends its backends at once (the socket closes)
// and the lock goes with them: any replica sees that in pg_locks and takes
// the claim without waiting out its lease. A holder connection that is lost
// while the replica lives is replaced by another, with another pid: its
// claims are then dead to everyone, and renewing one tells its writer so.

import type postgres from 'postgres';
import type { Sql } from './context.js';
import { sqlState } from './errors.js';

/** The advisory lock class ('uphd') under which a holder connection locks its own backend pid. */
export const HOLDER_LOCK = 0x75706864;

type Reserved = postgres.ReservedSql;

/** Whether `error` leaves the connection it came from usable: an error PostgreSQL reported for a statement, not a lost session. */
function sessionIntact(error: unknown): boolean {
  const state = sqlState(error);
  return state !== undefined && !state.startsWith('08') && !state.startsWith('57P');
}

/** One store's holder connection: reserved from the pool at the first claim, kept until the store closes. */
export class ClaimHolder {
  #connection: Promise<Reserved> | undefined;

  constructor(private readonly sql: Sql) {}

  /**
   * Runs `fn` on the holder connection (a statement there sees its pid as
   * pg_backend_pid()). A lost connection is dropped; the next call reserves another.
   * @throws what `fn` or the reservation throws (untranslated).
   */
  async run<T>(fn: (sql: Reserved) => Promise<T>): Promise<T> {
    const pending = this.#reserve();
    const connection = await pending;
    try {
      return await fn(connection);
    } catch (error) {
      if (!sessionIntact(error) && this.#connection === pending) {
        this.#connection = undefined;
        connection.release();
      }
      throw error;
    }
  }

  /** Gives the connection back to the pool (which closes it when the store closes): its claims die with it. */
  async close(): Promise<void> {
    const pending = this.#connection;
    this.#connection = undefined;
    (await pending?.catch(() => undefined))?.release();
  }

  #reserve(): Promise<Reserved> {
    if (this.#connection !== undefined) return this.#connection;
    const pending = (async () => {
      const connection = await this.sql.reserve();
      try {
        await connection`SELECT pg_advisory_lock(${HOLDER_LOCK}::int, pg_backend_pid())`;
      } catch (error) {
        connection.release();
        throw error;
      }
      return connection;
    })();
    this.#connection = pending;
    pending.catch(() => {
      if (this.#connection === pending) this.#connection = undefined;
    });
    return pending;
  }
}
