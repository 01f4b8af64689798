// What every concern of the store runs in: one connection, its statements
// (prepared once), the effective limits, and the transactions. Each public
// method of the store is one call of write(), read() or snapshot(); the
// concerns' helpers marked "inside a transaction" assume they run in one.

import type Database from 'better-sqlite3';
import { openDatabase, retryBusy } from './connection.js';
import { CallbackFailure, StoreError } from '../errors.js';
import { translateError } from './errors.js';
import { limitsOf, type StoreLimits } from '../limits.js';
import { compilePolicy, type CompiledPolicy } from '../policy.js';
import { prepareStatements, type Statements } from './statements.js';
import type { StoreOptions } from '../types.js';

export class StoreContext {
  /** The database file, or ':memory:'. */
  readonly file: string;
  /** @internal The connection: better-sqlite3's type, which the package's users do not install. */
  readonly db: Database.Database;
  /** @internal The connection's prepared statements. */
  readonly sql: Statements;
  readonly limits: StoreLimits;
  readonly policy: CompiledPolicy;
  /** Runs after each write commits while anyone subscribes: the delivery of its events. */
  afterWrite: (() => void) | undefined;
  /** The end of the last local call queued on each digest whose lock is awaited or held across awaits (locks.ts). */
  readonly digestTurns = new Map<string, Promise<void>>();
  readonly #tx: Database.Transaction<(fn: () => unknown) => unknown>;

  /** @throws StoreError: see openStore. */
  constructor(file: string, options: StoreOptions) {
    this.file = file;
    this.limits = limitsOf(options);
    this.policy = compilePolicy(options.policy);
    this.db = openDatabase(file, options);
    try {
      this.sql = prepareStatements(this.db);
    } catch (error) {
      this.db.close();
      throw translateError(error, file);
    }
    this.#tx = this.db.transaction((fn: () => unknown) => fn());
  }

  get open(): boolean {
    return this.db.open;
  }

  /** Runs `fn` in one IMMEDIATE transaction, then delivers its events to subscribers. */
  write<T>(fn: () => T): T {
    this.#checkOpen();
    let result: T;
    try {
      // busy_timeout makes BEGIN IMMEDIATE wait for the lock; the retry covers
      // the few cases where SQLite answers BUSY without waiting.
      result = retryBusy(this.limits.busyTimeout, () => this.#tx.immediate(fn) as T);
    } catch (error) {
      if (error instanceof CallbackFailure) throw error.error;
      throw translateError(error, this.file);
    }
    this.afterWrite?.();
    return result;
  }

  /**
   * Runs a read. Reads are one statement, consistent without a transaction
   * (a second statement runs only on a miss, to tell NAME_UNKNOWN from the
   * other not-found codes); those that need two use snapshot(). A WAL reader
   * can meet SQLITE_BUSY without waiting (while another connection recovers
   * the log after a crash), hence the retry.
   */
  read<T>(fn: () => T): T {
    this.#checkOpen();
    try {
      return retryBusy(this.limits.busyTimeout, fn);
    } catch (error) {
      throw translateError(error, this.file);
    }
  }

  /** Runs a read of several statements in one (deferred) transaction: one snapshot. */
  snapshot<T>(fn: () => T): T {
    return this.read(() => this.#tx.deferred(fn) as T);
  }

  /** Closes the connection; later calls throw STORE_CLOSED. */
  close(): void {
    if (this.db.open) this.db.close();
  }

  #checkOpen(): void {
    if (!this.db.open) throw new StoreError('STORE_CLOSED', `the store on ${this.file} is closed`);
  }
}
