// Durations and points in time as options give them (--grace, --since).

import { usageError } from './exit.js';
import { durationMs } from './units.js';

/**
 * A duration such as `24h`, `30m`, `1h30m`, `7d` or `0` in milliseconds.
 * @throws CliError USAGE.
 */
export function parseDuration(text: string, command: string, option: string): number {
  const ms = durationMs(text);
  if (ms === undefined) throw usageError(command, `--${option} ${JSON.stringify(text)} is not a duration like 24h, 30m or 7d`);
  return ms;
}

/** gc's and check's `--grace` when none is given. */
export const DEFAULT_GRACE = '24h';
export const GRACE_OPTION = { grace: { type: 'string' } } as const;

/**
 * The cut that `--grace` (default DEFAULT_GRACE) makes: what no row names and
 * is older is garbage; what is younger may be a push still in flight.
 * @throws CliError USAGE on a malformed duration.
 */
export function graceCutoff(values: { grace?: string }, command: string): Date {
  return new Date(Date.now() - parseDuration(values.grace ?? DEFAULT_GRACE, command, 'grace'));
}

/**
 * A point in time: an ISO 8601 date (`2026-11-26`, `2026-11-26T10:00:00Z`) or
 * a duration ago (`1h`).
 * @throws CliError USAGE.
 */
export function parseTime(text: string, command: string, option: string): Date {
  if (/^\d+(?:ms|s|m|h|d|w)/.test(text)) return new Date(Date.now() - parseDuration(text, command, option));
  const date = /^\d{4}-\d{2}-\d{2}/.test(text) ? new Date(text) : new Date(Number.NaN);
  if (Number.isNaN(date.getTime())) {
    throw usageError(command, `--${option} ${JSON.stringify(text)} is neither an ISO date (2026-11-26T10:00:00Z) nor a duration ago (1h)`);
  }
  return date;
}
