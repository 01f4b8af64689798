// The server's early refusal of an upload that its namespace's quota cannot
// take, before the body is read, where the size is known (Content-Length,
// or Content-Range on a chunk). The store checks again, exactly, inside the
// link's transaction: this check is the one that spares the bytes, not the
// one that guards the quota.

import { namespaceOf, quotaExceeded, type Quota, type Store } from '../store/index.js';

// Each store's quotas by namespace, built once per policy object.
const quotasOf = new WeakMap<readonly Quota[], ReadonlyMap<string, number>>();

function limitOf(store: Store, namespace: string): number | undefined {
  const quotas = store.policy.quotas;
  if (quotas === undefined || quotas.length === 0) return undefined;
  let byNamespace = quotasOf.get(quotas);
  if (byNamespace === undefined) {
    byNamespace = new Map(quotas.map((q) => [q.namespace, q.maxSize]));
    quotasOf.set(quotas, byNamespace);
  }
  return byNamespace.get(namespace);
}

/**
 * Refuses an upload into `repo` that would take its namespace over its
 * quota with `size` more bytes (the upload's total once this request's body
 * is in). No read at all when no quota applies. A blob `digest` already
 * linked in `repo` costs nothing, as in the store; one that only another
 * repository of the namespace has is counted here, and let in by the
 * store's exact check if it comes to that.
 * @throws StoreError DENIED.
 */
export async function refuseOverQuota(store: Store, repo: string, size: number, digest?: string): Promise<void> {
  const namespace = namespaceOf(repo);
  const limit = limitOf(store, namespace);
  if (limit === undefined) return;
  const usage = (await store.usage({ namespace })).namespaces[0]?.bytes ?? 0;
  if (usage + size <= limit) return;
  if (digest !== undefined && (await store.statBlob(repo, digest).then(() => true, () => false))) return;
  throw quotaExceeded(namespace, usage, limit, size);
}
