// Checks of the arguments that several concerns take: who acts, a page of
// names, a point in time. Like the grammar, they run before any transaction.

import { StoreError } from './errors.js';
import { checkDigest } from './grammar.js';
import { checkText } from './limits.js';
import type { Context, Descriptor, PageOptions } from './types.js';

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

/**
 * The digest of what putTag is asked to point a tag at.
 * @throws StoreError DIGEST_INVALID, SIZE_INVALID (a size that is not a non-negative integer).
 */
export function checkTagTarget(descriptor: Pick<Descriptor, 'digest'> & Partial<Descriptor>): string {
  if (typeof descriptor !== 'object' || descriptor === null) throw new StoreError('DIGEST_INVALID', 'a tag needs a descriptor');
  const digest = checkDigest(descriptor.digest);
  if (descriptor.size !== undefined && (!Number.isSafeInteger(descriptor.size) || descriptor.size < 0)) {
    throw new StoreError('SIZE_INVALID', 'descriptor size must be a non-negative integer');
  }
  return digest;
}

/** The { digest, size } that linkBlob takes, checked. @throws StoreError DIGEST_INVALID, SIZE_INVALID. */
export function checkBlob(blob: { digest: string; size: number }): { digest: string; size: number } {
  if (typeof blob !== 'object' || blob === null) throw new StoreError('DIGEST_INVALID', 'linkBlob needs { digest, size }');
  const digest = checkDigest(blob.digest);
  const size = blob.size;
  if (!Number.isSafeInteger(size) || size < 0) throw new StoreError('SIZE_INVALID', 'blob size must be a non-negative integer');
  return { digest, size };
}

/** stats()'s `top`: how many of the largest repositories to list. @throws StoreError ARGUMENT_INVALID. */
export function topOption(top: number | undefined): number {
  const value = top ?? 10;
  if (!Number.isSafeInteger(value) || value < 0) throw new StoreError('ARGUMENT_INVALID', 'top must be a non-negative integer');
  return value;
}
