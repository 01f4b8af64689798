// The one way a PostgreSQL connection pool is made, for the store and for the
// migration's loader alike: the URL checked, int8 read as a number, the
// schema brought up to date before anything else runs on it.

import postgres from 'postgres';
import { StoreError } from '../errors.js';
import { DEFAULT_POSTGRES_TIMEOUTS } from '../limits.js';
import type { Sql } from './context.js';
import { isPostgresUrl } from '../location.js';
import { maskedUrl, translatePgError } from './errors.js';
import { checkReadable, migrate } from './migrate.js';

// int8 (counts, sizes, times, ids) as a JavaScript number: every value the
// store keeps is far below 2^53, and the domain types are numbers.
const INT8_AS_NUMBER = { to: 20, from: [20], serialize: (value: number) => String(value), parse: (raw: string) => Number(raw) };

/** The name the server shows for the store's connections (pg_stat_activity), unless a pool is given another. */
export const STORE_APPLICATION_NAME = 'regmeta';

/**
 * Waits before the next attempt to connect to a server that is away (the
 * driver's `backoff`, in seconds): short at first, then
 * DEFAULT_POSTGRES_TIMEOUTS.reconnectDelay at most (the driver's own grows
 * to 20 s, which is how long writes would stay refused after the server's
 * return), jittered so that replicas do not all call at the same moment.
 */
function reconnectDelay(attempt: number): number {
  return Math.min(0.05 * 2 ** attempt, DEFAULT_POSTGRES_TIMEOUTS.reconnectDelay) * (0.5 + Math.random() / 2);
}

/**
 * How a pool is made: its size, its connect timeout (s, default
 * DEFAULT_POSTGRES_TIMEOUTS.connectTimeout), how long a call waits for a free
 * connection (s; none when not given), how long a write waits for a row lock (ms).
 */
interface PoolOptions {
  max: number;
  connectTimeout?: number;
  queueTimeout?: number;
  lockTimeout?: number;
  /** The name the server shows for the connections (pg_stat_activity). */
  applicationName?: string;
  /** Only read: the schema is checked, not created or migrated, and every transaction is read-only. */
  readOnly?: boolean;
}

/**
 * A pool on the database at `url`, whose schema is up to date (read-only:
 * which has one it can read), and its URL with the password masked (for messages).
 * @throws StoreError ARGUMENT_INVALID (not a postgres:// URL), DATABASE_TOO_NEW,
 * DATABASE_INVALID (a database with another program's tables; read-only, one
 * without a regmeta schema), DATABASE_UNAVAILABLE (unreachable, refused).
 */
export async function connect(url: string, options: PoolOptions): Promise<{ sql: Sql; location: string }> {
  if (!isPostgresUrl(url)) {
    throw new StoreError('ARGUMENT_INVALID', 'a PostgreSQL store needs a postgres:// or postgresql:// URL');
  }
  const location = maskedUrl(url);
  const connection: Record<string, string | number> = { application_name: options.applicationName ?? STORE_APPLICATION_NAME };
  // lock_timeout: a write that waits for another's row lock longer than the busy timeout fails with DATABASE_BUSY.
  if (options.lockTimeout !== undefined) connection.lock_timeout = options.lockTimeout;
  if (options.readOnly) connection.default_transaction_read_only = 'on';
  const sql = postgres(url, {
    max: options.max,
    connect_timeout: options.connectTimeout ?? DEFAULT_POSTGRES_TIMEOUTS.connectTimeout,
    queue_timeout: options.queueTimeout ?? 0,
    backoff: reconnectDelay,
    onnotice: () => {},
    types: { int8: INT8_AS_NUMBER },
    connection,
  }) as unknown as Sql;
  try {
    await (options.readOnly ? checkReadable(sql, location) : migrate(sql, location));
  } catch (error) {
    await sql.end({ timeout: 1 }).catch(() => {});
    throw translatePgError(error, location);
  }
  return { sql, location };
}
