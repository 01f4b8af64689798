// The checks of the arguments that several methods take (who acts, a page,
// a point in time, a blob, a webhook endpoint, an upload session's fields),
// and the values the backends read from arguments once checked.ts has
// checked them, which never throw.

import { StoreError } from './errors.js';
import { checkDigest, checkRepository, checkTag } from './grammar.js';
import { checkText, MAX_PAGE_SIZE, MAX_RETIRE_BATCH } from './limits.js';
import type { Context, Descriptor, ManifestToRetire, PageOptions, Pull, RecordPullsOptions, TagToRetire } from './types.js';

/** @throws StoreError EVENT_INVALID when the actor of `ctx` is not a text of the event log. */
export function checkActor(ctx: Context | undefined): void {
  checkText(ctx?.actor ?? '', 'the actor');
}

/** The actor of a checked `ctx`; '' when anonymous. */
export function actorOf(ctx: Context | undefined): string {
  return ctx?.actor ?? '';
}

/** @throws StoreError PAGINATION_NUMBER_INVALID, or what `checkLast` throws for `last`. */
export function checkPage(options: PageOptions | undefined, checkLast: (last: unknown) => string): void {
  const n = options?.n;
  if (n !== undefined && (!Number.isSafeInteger(n) || n < 0)) {
    throw new StoreError('PAGINATION_NUMBER_INVALID', 'n must be a non-negative integer');
  }
  if (options?.last !== undefined) checkLast(options.last);
}

/** The statement parameters of a checked page request: `limit` -1 is "all", `last` '' is "from the start". */
export function pageOf(options: PageOptions | undefined): { limit: number; last: string } {
  return { limit: options?.n ?? -1, last: options?.last ?? '' };
}

/** @throws StoreError ARGUMENT_INVALID unless `value` is absent or a valid Date. */
export function checkTime(value: Date | undefined, field = 'olderThan'): void {
  if (value !== undefined && (!(value instanceof Date) || Number.isNaN(value.getTime()))) {
    throw new StoreError('ARGUMENT_INVALID', `${field} must be a valid Date`);
  }
}

/** A checked Date option as epoch ms; now when absent. */
export function timeOf(value: Date | undefined): number {
  return value === undefined ? Date.now() : value.getTime();
}

/**
 * What putTag is asked to point a tag at.
 * @throws StoreError DIGEST_INVALID, SIZE_INVALID (a size that is not a non-negative integer).
 */
export function checkTagTarget(descriptor: Pick<Descriptor, 'digest'> & Partial<Descriptor>): void {
  if (typeof descriptor !== 'object' || descriptor === null) throw new StoreError('DIGEST_INVALID', 'a tag needs a descriptor');
  checkDigest(descriptor.digest);
  if (descriptor.size !== undefined && (!Number.isSafeInteger(descriptor.size) || descriptor.size < 0)) {
    throw new StoreError('SIZE_INVALID', 'descriptor size must be a non-negative integer');
  }
}

/** The { digest, size } that linkBlob takes. @throws StoreError DIGEST_INVALID, SIZE_INVALID. */
export function checkBlob(blob: { digest: string; size: number }): void {
  if (typeof blob !== 'object' || blob === null) throw new StoreError('DIGEST_INVALID', 'linkBlob needs { digest, size }');
  checkDigest(blob.digest);
  const size = blob.size;
  if (!Number.isSafeInteger(size) || size < 0) throw new StoreError('SIZE_INVALID', 'blob size must be a non-negative integer');
}

/**
 * What recordPulls takes.
 * @throws StoreError ARGUMENT_INVALID (not an array of { repo, digest?, tag?,
 * at: a valid Date, count?: an integer ≥ 0 }, or options that are not { events?: boolean }),
 * NAME_INVALID, DIGEST_INVALID, TAG_INVALID.
 */
export function checkPulls(pulls: readonly Pull[], options?: RecordPullsOptions): void {
  if (!Array.isArray(pulls)) throw new StoreError('ARGUMENT_INVALID', 'recordPulls needs an array of { repo, digest?, tag?, at, count? }');
  for (const pull of pulls) {
    if (typeof pull !== 'object' || pull === null) throw new StoreError('ARGUMENT_INVALID', 'a pull must be { repo, digest?, tag?, at, count? }');
    checkRepository(pull.repo);
    if (pull.digest !== undefined) checkDigest(pull.digest);
    if (pull.tag !== undefined) checkTag(pull.tag);
    if (!(pull.at instanceof Date)) throw new StoreError('ARGUMENT_INVALID', "a pull's at must be a valid Date");
    checkTime(pull.at, "a pull's at");
    const count = pull.count;
    if (count !== undefined && (!Number.isSafeInteger(count) || count < 0)) throw new StoreError('ARGUMENT_INVALID', "a pull's count must be a non-negative integer");
  }
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null || (options.events !== undefined && typeof options.events !== 'boolean')) {
    throw new StoreError('ARGUMENT_INVALID', 'recordPulls options must be { events?: boolean }');
  }
}

/** The default of stats()'s `top`: how many of the largest repositories to list. */
const DEFAULT_TOP = 10;

/** @throws StoreError ARGUMENT_INVALID unless `top` is absent or a non-negative integer. */
export function checkTop(top: number | undefined): void {
  const value = top ?? DEFAULT_TOP;
  if (!Number.isSafeInteger(value) || value < 0) throw new StoreError('ARGUMENT_INVALID', 'top must be a non-negative integer');
}

/** A checked `top`, its default filled in. */
export function topOf(top: number | undefined): number {
  return top ?? DEFAULT_TOP;
}

/** Whether `endpoint` may be a webhook cursor's key: a string of 1 to 2048 characters without NUL. */
export function isEndpoint(endpoint: unknown): endpoint is string {
  return typeof endpoint === 'string' && endpoint.length >= 1 && endpoint.length <= 2048 && !endpoint.includes('\0');
}

/** A webhook endpoint as a cursor's key. @throws StoreError ARGUMENT_INVALID. */
export function checkEndpoint(endpoint: unknown): void {
  if (!isEndpoint(endpoint)) throw new StoreError('ARGUMENT_INVALID', 'an endpoint must be a string of 1 to 2048 characters');
}

/** @throws StoreError ARGUMENT_INVALID unless `limit` is an integer from 1 to the page limit (a batch of events, of idle sessions). */
export function checkBatchLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw new StoreError('ARGUMENT_INVALID', `limit must be an integer from 1 to ${MAX_PAGE_SIZE}`);
  }
}

/** A list a retire method takes: an array of objects, one batch at most. @throws StoreError ARGUMENT_INVALID. */
function checkBatch(entries: readonly unknown[], method: string, shape: string): void {
  if (!Array.isArray(entries)) throw new StoreError('ARGUMENT_INVALID', `${method} needs an array of ${shape}`);
  if (entries.length > MAX_RETIRE_BATCH) throw new StoreError('ARGUMENT_INVALID', `${method} takes at most ${MAX_RETIRE_BATCH} entries`);
  for (const entry of entries) if (typeof entry !== 'object' || entry === null) throw new StoreError('ARGUMENT_INVALID', `${method} needs ${shape}`);
}

/** A retention reason: text of the event log, when given. @throws StoreError EVENT_INVALID. */
function checkReason(reason: unknown): void {
  if (reason !== undefined) checkText(reason, 'reason');
}

/** What retireTags takes. @throws StoreError ARGUMENT_INVALID, TAG_INVALID, DIGEST_INVALID, EVENT_INVALID (a reason too long). */
export function checkTagsToRetire(tags: readonly TagToRetire[]): void {
  checkBatch(tags, 'retireTags', '{ tag, digest, updatedAt, pushedAt }');
  for (const entry of tags) {
    checkTag(entry.tag);
    checkDigest(entry.digest);
    if (!(entry.updatedAt instanceof Date) || !(entry.pushedAt instanceof Date)) {
      throw new StoreError('ARGUMENT_INVALID', "a tag to retire needs its updatedAt and pushedAt as Dates");
    }
    checkTime(entry.updatedAt, 'updatedAt');
    checkTime(entry.pushedAt, 'pushedAt');
    checkReason(entry.reason);
  }
}

/** What retireManifests takes. @throws StoreError ARGUMENT_INVALID, DIGEST_INVALID, EVENT_INVALID (a reason too long). */
export function checkManifestsToRetire(manifests: readonly ManifestToRetire[], options: { olderThan: Date } | undefined): void {
  checkBatch(manifests, 'retireManifests', '{ digest }');
  for (const entry of manifests) {
    checkDigest(entry.digest);
    checkReason(entry.reason);
  }
  if (!(options?.olderThan instanceof Date)) throw new StoreError('ARGUMENT_INVALID', 'retireManifests needs olderThan, a Date');
  checkTime(options.olderThan);
}
