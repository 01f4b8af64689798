// The rules of keeping a store in shape, the same on every backend: the
// event log's pruning (what it takes and answers) and the leases by which
// one replica at a time runs a scheduled job.

import { StoreError } from './errors.js';

/** What pruneEvents takes. */
export interface PruneOptions {
  /** Events published before this time go. */
  before: Date;
  /** At most this many (a positive integer; default: all), the oldest first: one short transaction per call. */
  limit?: number;
  /** Counts what would go and the horizon it would reach, deleting nothing. */
  dryRun?: boolean;
}

/** What pruneEvents did (or, with dryRun, would do). */
export interface PruneResult {
  /** Events deleted (or that would be). */
  pruned: number;
  /** The highest seq ever pruned, 0 when none was: the log holds only events after it. */
  horizon: number;
  /** When the event at the horizon was published; absent while none was pruned. */
  horizonAt?: Date;
}

/**
 * The events a webhook endpoint never got because they were pruned before it
 * acknowledged them (its receiver was down longer than the log keeps events).
 */
export interface MissedEvents {
  /** How many, over every gap so far: seqs are handed out one after the other, so a gap of seqs is a count. */
  count: number;
  /** The seqs of the latest gap, inclusive. */
  from: number;
  to: number;
  /** When delivery stepped over that gap; absent while it has not yet. */
  at?: Date;
}

/** The longest job name and holder a lease takes. */
const MAX_JOB_NAME = 100;
const MAX_HOLDER = 255;

/** The parameters of a checked prune: `limit` -1 is "all". */
export function pruneParams(options: PruneOptions): { before: number; limit: number; dryRun: boolean } {
  return { before: options.before.getTime(), limit: options.limit ?? -1, dryRun: options.dryRun === true };
}

/** @throws StoreError ARGUMENT_INVALID unless `options` is { before: a valid Date, limit?: a positive integer, dryRun?: boolean }. */
export function checkPrune(options: PruneOptions): void {
  if (typeof options !== 'object' || options === null) throw new StoreError('ARGUMENT_INVALID', 'pruneEvents needs { before }');
  const { before, limit, dryRun } = options;
  if (!(before instanceof Date) || Number.isNaN(before.getTime())) throw new StoreError('ARGUMENT_INVALID', 'before must be a valid Date');
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) throw new StoreError('ARGUMENT_INVALID', 'limit must be a positive integer');
  if (dryRun !== undefined && typeof dryRun !== 'boolean') throw new StoreError('ARGUMENT_INVALID', 'dryRun must be a boolean');
}

function checkName(value: unknown, field: string, max: number): void {
  if (typeof value !== 'string' || value.length < 1 || value.length > max || value.includes('\0')) {
    throw new StoreError('ARGUMENT_INVALID', `${field} must be a string of 1 to ${max} characters`);
  }
}

/** @throws StoreError ARGUMENT_INVALID (a name or holder that is not a string of 1 to 100 or 255 characters). */
export function checkRelease(name: string, holder: string): void {
  checkName(name, 'a job name', MAX_JOB_NAME);
  checkName(holder, 'a holder', MAX_HOLDER);
}

/** @throws StoreError ARGUMENT_INVALID (as checkRelease; `ttlMs` not a positive integer). */
export function checkLease(name: string, holder: string, ttlMs: number): void {
  checkRelease(name, holder);
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) throw new StoreError('ARGUMENT_INVALID', 'ttlMs must be a positive integer');
}

/** What advance reads of a delivered event (NotificationEvent's). */
interface Delivered {
  seq: number;
  id: string;
  publishedAt: Date;
}

/** @throws StoreError ARGUMENT_INVALID unless `delivered` is a non-empty batch of events in ascending seq order, each with its seq, id and publishedAt. */
export function checkDelivered(delivered: readonly Delivered[]): void {
  if (!Array.isArray(delivered) || delivered.length === 0) throw new StoreError('ARGUMENT_INVALID', 'advance needs the delivered events, at least one');
  let previous = 0;
  for (const event of delivered) {
    const { seq, id, publishedAt } = (event ?? {}) as Partial<Delivered>;
    const valid = Number.isSafeInteger(seq) && seq! > previous && typeof id === 'string' && id.length > 0 && id.length <= 255 && !id.includes('\0') && publishedAt instanceof Date && !Number.isNaN(publishedAt.getTime());
    if (!valid) throw new StoreError('ARGUMENT_INVALID', 'the delivered events must each have a seq (ascending, positive), an id and a publishedAt, as eventsAfter returns them');
    previous = seq!;
  }
}

/**
 * The events an advance steps over unseen: those after the cursor (at
 * `seq`) and before the batch's first (`first`), which eventsAfter did not
 * return because they were pruned before it read (seqs have no holes
 * otherwise), so never above the horizon. Undefined when there are none.
 */
export function gapBefore(seq: number, horizon: number, first: number): MissedEvents | undefined {
  const to = Math.min(horizon, first - 1);
  if (to <= seq) return undefined;
  return { count: to - seq, from: seq + 1, to, at: new Date() };
}

/** A cursor row's horizon columns, as the status query reads them. */
interface MissedRow {
  seq: number;
  horizon: number | null;
  missed: number | null;
  missed_from: number | null;
  missed_to: number | null;
  missed_at: number | null;
}

/**
 * What an endpoint has missed: the gaps delivery stepped over, and the one
 * ahead of it when its cursor is below the horizon now (the notifier steps
 * over it on its next look). Undefined when none.
 */
export function missedOf(row: MissedRow): MissedEvents | undefined {
  const recorded = row.missed ?? 0;
  const horizon = row.horizon ?? 0;
  if (row.seq < horizon) return { count: recorded + horizon - row.seq, from: row.seq + 1, to: horizon };
  if (recorded === 0 || row.missed_from === null || row.missed_to === null) return undefined;
  const missed: MissedEvents = { count: recorded, from: row.missed_from, to: row.missed_to };
  if (row.missed_at !== null) missed.at = new Date(row.missed_at);
  return missed;
}
