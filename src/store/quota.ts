// The quota refusal both backends throw from inside the transaction of a
// link (StorePolicy.quotas) and from checkQuota, worded with the numbers as
// Harbor and GitLab give them: what is in use, the limit, and what was
// asked; and the one byte formatter of messages and the CLI.

import { StoreError } from './errors.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** A byte count for people (messages, the CLI): 1.5 MiB, 512 B. */
export function formatBytes(bytes: number): string {
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
 * `detail`: what a link and checkQuota (a server's early refusal, before an upload's bytes) throw.
 */
function quotaExceeded(namespace: string, usage: number, limit: number, size: number): StoreError {
  return new StoreError(
    'DENIED',
    `quota exceeded: namespace ${namespace} uses ${formatBytes(usage)} of its ${formatBytes(limit)} quota, and ${formatBytes(size)} more were asked`,
    { namespace, usage, limit, size },
  );
}

/**
 * Refuses `size` bytes more that would take `namespace` over its quota
 * (`limit`, undefined for none); a blob the namespace already has (`has`) costs nothing.
 * @throws StoreError DENIED.
 */
export function enforceQuota(namespace: string, limit: number | undefined, usage: number, size: number, has: boolean): void {
  if (limit === undefined || has) return;
  if (usage + size > limit) throw quotaExceeded(namespace, usage, limit, size);
}
