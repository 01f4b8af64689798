// The store's policy (StoreOptions.policy), checked once when the store
// opens, and the quota refusal both backends throw from inside the
// transaction of a link.

import { StoreError } from './errors.js';
import { isNamespace } from './grammar.js';
import type { Quota, StorePolicy } from './types.js';

/** A policy checked, with its quotas by namespace. */
export interface Policy {
  /** As given (frozen): what `store.policy` reports. */
  readonly policy: StorePolicy;
  /** The quota of each namespace that has one, in bytes. */
  readonly quotas: ReadonlyMap<string, number>;
}

const invalid = (message: string) => new StoreError('ARGUMENT_INVALID', `invalid store policy: ${message}`);

/**
 * Checks a store's policy.
 * @throws StoreError ARGUMENT_INVALID (not an object; a quota whose namespace
 * is not one, whose maxSize is not a non-negative safe integer, or that
 * repeats a namespace).
 */
export function policyOf(policy: unknown): Policy {
  if (policy === undefined) return { policy: Object.freeze({}), quotas: new Map() };
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) throw invalid('not an object');
  const { quotas = [] } = policy as StorePolicy;
  if (!Array.isArray(quotas)) throw invalid('quotas is not an array');
  const byNamespace = new Map<string, number>();
  for (const quota of quotas as unknown[]) {
    const { namespace, maxSize } = (quota ?? {}) as Partial<Quota>;
    if (!isNamespace(namespace)) throw invalid(`quota namespace ${JSON.stringify(namespace)} is not a namespace (a name's first path component)`);
    if (typeof maxSize !== 'number' || !Number.isSafeInteger(maxSize) || maxSize < 0) {
      throw invalid(`quota of ${namespace}: maxSize ${JSON.stringify(maxSize)} is not a number of bytes`);
    }
    if (byNamespace.has(namespace)) throw invalid(`two quotas for namespace ${namespace}`);
    byNamespace.set(namespace, maxSize);
  }
  const frozen = Object.freeze({ ...(policy as StorePolicy), quotas: Object.freeze(quotas.map((q) => Object.freeze({ ...q }))) });
  return { policy: frozen, quotas: byNamespace };
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** Bytes for a message: 1.5 MiB, 512 B. */
function bytesText(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

/**
 * The refusal of `size` more bytes in `namespace`, which has `usage` of its
 * `limit` in use: the spec's DENIED, with the numbers in its message and
 * detail (as Harbor and GitLab give them).
 */
export function quotaExceeded(namespace: string, usage: number, limit: number, size: number): StoreError {
  return new StoreError(
    'DENIED',
    `quota exceeded: namespace ${namespace} uses ${bytesText(usage)} of its ${bytesText(limit)} quota, and ${bytesText(size)} more were asked`,
    { namespace, usage, limit, size },
  );
}

/**
 * Throws when `size` bytes more would take the namespace over its quota
 * (`limit`, undefined for none); a blob the namespace already has (`has`) costs nothing.
 * @throws StoreError DENIED.
 */
export function checkQuota(namespace: string, limit: number | undefined, usage: number, size: number, has: boolean): void {
  if (limit === undefined || has) return;
  if (usage + size > limit) throw quotaExceeded(namespace, usage, limit, size);
}
