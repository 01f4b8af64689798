// The contract of the webhook endpoints' cursors, which every backend implements beside its Store.

import { methodList } from './methods.js';
import type { NotificationEvent, NotificationStatus } from './types.js';
import type { MissedEvents } from './maintenance.js';

/** What advance reads of each delivered event: where it is in the log. */
type Delivered = Pick<NotificationEvent, 'seq' | 'id' | 'publishedAt'>;

/** The webhook endpoints' cursors into the event log (regmeta serve --notify). Each method is one transaction. */
export interface NotificationCursors {
  /**
   * Creates the cursor of `endpoint` when it has none, at the newest event
   * committed now: a new endpoint gets what happens from now on, not the
   * whole history. An existing cursor stays where it is.
   * @throws StoreError ARGUMENT_INVALID (not a string of 1 to 2048 characters), DATABASE_*, STORE_CLOSED.
   */
  open(endpoint: string): Promise<void>;
  /**
   * Up to `limit` events committed after the cursor of `endpoint`, in commit
   * order, each with its manifest's or blob's media type and size when still stored.
   * @throws StoreError ARGUMENT_INVALID (no such cursor, or `limit` not from 1
   * to the page limit), DATABASE_*, STORE_CLOSED.
   */
  eventsAfter(endpoint: string, limit: number): Promise<NotificationEvent[]>;
  /**
   * Steps the cursor of `endpoint` over the events pruned before it got
   * them, when it is below the pruned horizon: it moves to the horizon (the
   * next eventsAfter starts at the oldest event left) and the gap is
   * recorded for status(). Writes nothing when there is no gap.
   * @returns the gap stepped over, or undefined.
   * @throws StoreError ARGUMENT_INVALID (no such cursor), DATABASE_*, STORE_CLOSED.
   */
  skipPruned(endpoint: string): Promise<MissedEvents | undefined>;
  /**
   * Records that `endpoint` acknowledged `delivered`, a batch as eventsAfter
   * returned it (in order; only each event's seq, id and publishedAt are
   * read, never the event again, which may be pruned by now): the cursor
   * moves to its last event, in one transaction, and never backwards (a
   * batch acknowledged twice only counts as a success); failures go back to
   * 0. Events between the cursor and the batch's first that were pruned
   * before eventsAfter read them (a prune between skipPruned and
   * eventsAfter) are recorded as missed, as skipPruned records them.
   * @returns the gap stepped over, or undefined.
   * @throws StoreError ARGUMENT_INVALID (no such cursor; `delivered` empty, out
   * of order, or past the newest event), DATABASE_*, STORE_CLOSED.
   */
  advance(endpoint: string, delivered: readonly Delivered[]): Promise<MissedEvents | undefined>;
  /**
   * Records a failed delivery to `endpoint` (its message, cut to 1000
   * characters); the cursor stays.
   * @throws StoreError ARGUMENT_INVALID, DATABASE_*, STORE_CLOSED.
   */
  recordFailure(endpoint: string, error: string): Promise<void>;
  /**
   * Forgets the cursor of `endpoint` (configured again, it starts anew at the newest event).
   * @returns whether there was one.
   * @throws StoreError ARGUMENT_INVALID, DATABASE_*, STORE_CLOSED.
   */
  remove(endpoint: string): Promise<boolean>;
  /**
   * Every cursor, by endpoint: position, backlog, failures, last error and success, in one snapshot.
   * @throws StoreError DATABASE_*, STORE_CLOSED.
   */
  status(): Promise<NotificationStatus[]>;
  /**
   * Whether this process may deliver to `endpoint` now. Takes the endpoint's
   * delivery lock when it is free, so that of several replicas one at a time
   * delivers to it; a process that stops or dies lets go. Always true on
   * SQLite, whose file one server serves.
   * @throws StoreError ARGUMENT_INVALID (a bad endpoint), the database's errors.
   */
  claim(endpoint: string): Promise<boolean>;
  /** Lets go of the endpoint's delivery lock, if this process holds it. Never throws. */
  release(endpoint: string): Promise<void>;
}

/** Every method of NotificationCursors. */
export const CURSOR_METHODS = methodList<NotificationCursors>()(['open', 'eventsAfter', 'skipPruned', 'advance', 'recordFailure', 'remove', 'status', 'claim', 'release']);
