// What PostgreSQL and the client throw, translated into the store's one error
// family in one function, by SQLSTATE (and the client's connection codes),
// never by message text; and which of them a transaction retries.

import { StoreError, type StoreErrorCode } from '../errors.js';

/**
 * The SQLSTATEs that mean "lost a race with a concurrent transaction": a
 * serialization failure, a deadlock, and the unique and foreign-key
 * violations that a concurrent insert or delete causes between a check and a
 * write. Running the transaction again, on fresh data, settles each of them
 * (into success, or into the not-found or conflict a retry then sees).
 */
const RETRIED: ReadonlySet<string> = new Set(['40001', '40P01', '23505', '23503']);

/** SQLSTATEs (whole, then by class) to our codes; anything else is DATABASE_ERROR. */
const CODES: Record<string, StoreErrorCode> = {
  '40001': 'DATABASE_BUSY',
  '40P01': 'DATABASE_BUSY',
  '23505': 'DATABASE_BUSY',
  '23503': 'DATABASE_BUSY',
  // lock_timeout (the store's busyTimeout) and statement_timeout ran out.
  '55P03': 'DATABASE_BUSY',
  '57014': 'DATABASE_BUSY',
  '53100': 'DATABASE_FULL',
  '25006': 'DATABASE_READONLY',
  XX001: 'DATABASE_CORRUPT',
  XX002: 'DATABASE_CORRUPT',
};

// The server's answers that it cannot take the session now: class 08 (a
// connection exception, by prefix), the server shutting down (administrator,
// crash), starting up or recovering, a session ended for idling, and no
// connection slot free. Another connection, later, may succeed.
const UNAVAILABLE_STATES: ReadonlySet<string> = new Set(['57P01', '57P02', '57P03', '57P05', '53300']);

// The client's own codes for a connection that could not be made, was lost
// or was not had within the pool's timeouts, and Node's for a socket that
// failed: the database is unavailable.
const CONNECTION_CODES: ReadonlySet<string> = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  'QUEUE_TIMEOUT',
  'QUERY_TIMEOUT',
  'CANCEL_UNANSWERED',
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

/** The SQLSTATE of a PostgreSQL error, or undefined for anything else. */
export function sqlState(error: unknown): string | undefined {
  if (!(error instanceof Error) || error.name !== 'PostgresError') return undefined;
  const code = (error as Error & { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** Thrown by the store itself when a concurrent commit changed what a transaction read: it runs again. */
export class RaceLost extends Error {
  override name = 'RaceLost';
}

/** Whether running the transaction again may succeed: see RETRIED. */
export function isRetried(error: unknown): boolean {
  if (error instanceof RaceLost) return true;
  const state = sqlState(error);
  return state !== undefined && RETRIED.has(state);
}

/**
 * Translates whatever a database call threw into the StoreError family, by
 * SQLSTATE or connection code: a server that cannot be reached or cannot
 * take the session now is DATABASE_UNAVAILABLE. StoreErrors pass through;
 * `location` (the URL, password masked) goes into the message.
 */
export function translatePgError(error: unknown, location: string): StoreError {
  if (error instanceof StoreError) return error;
  if (error instanceof RaceLost) return new StoreError('DATABASE_BUSY', `${location}: ${error.message}`, undefined, { cause: error });
  const state = sqlState(error);
  const message = error instanceof Error ? error.message : String(error);
  if (state !== undefined) {
    if (state.startsWith('08') || UNAVAILABLE_STATES.has(state)) {
      return new StoreError('DATABASE_UNAVAILABLE', `${location} is unavailable: ${message} (SQLSTATE ${state})`, { sqlState: state }, { cause: error });
    }
    // Class 22, a data exception, is a value the database refused (text PostgreSQL cannot hold).
    const code = CODES[state] ?? (state.startsWith('22') ? 'ARGUMENT_INVALID' : 'DATABASE_ERROR');
    return new StoreError(code, `${location}: ${message} (SQLSTATE ${state})`, { sqlState: state }, { cause: error });
  }
  const connection = (error as { code?: unknown } | null)?.code;
  if (typeof connection === 'string' && CONNECTION_CODES.has(connection)) {
    return new StoreError('DATABASE_UNAVAILABLE', `${location} is unavailable: ${message}`, { connection }, { cause: error });
  }
  return new StoreError('DATABASE_ERROR', `${location}: ${message}`, undefined, { cause: error });
}

/** The URL with its password masked, for messages and `store.location`. */
export function maskedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'postgres://(an invalid URL)';
  }
}
