// Checks of the arguments that several concerns take: who acts, a page of
// names, a point in time. Like the grammar, they run before any transaction.

import { StoreError } from './errors.js';
import { checkText } from './limits.js';
import type { Context, PageOptions } from './types.js';

/** The actor of `ctx`; '' when anonymous. @throws StoreError EVENT_INVALID. */
export function actorOf(ctx: Context | undefined): string {
  return checkText(ctx?.actor ?? '', 'the actor') as string;
}

/**
 * The statement parameters of a page request: `limit` -1 is "all".
 * @throws StoreError PAGINATION_NUMBER_INVALID, or what `checkLast` throws for `last`.
 */
export function pageParams(options: PageOptions | undefined, checkLast: (last: unknown) => string): { limit: number; last: string } {
  const n = options?.n;
  if (n !== undefined && (!Number.isSafeInteger(n) || n < 0)) {
    throw new StoreError('PAGINATION_NUMBER_INVALID', 'n must be a non-negative integer');
  }
  return { limit: n ?? -1, last: options?.last === undefined ? '' : checkLast(options.last) };
}

/** A Date option as epoch ms; now when absent. @throws StoreError ARGUMENT_INVALID. */
export function timeOption(value: Date | undefined, field = 'olderThan'): number {
  if (value === undefined) return Date.now();
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new StoreError('ARGUMENT_INVALID', `${field} must be a valid Date`);
  }
  return value.getTime();
}
