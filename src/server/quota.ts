// The server's early refusal of an upload that its namespace's quota cannot
// take, before the body is read, where the size is known (Content-Length,
// or Content-Range on a chunk). The store's checkQuota applies the link's
// own rule (a blob the namespace already has costs nothing), and the store
// checks again, exactly, inside the link's transaction: this check is the
// one that spares the bytes, not the one that guards the quota.

import type { Store } from '../store/index.js';

/**
 * Refuses an upload into `repo` that would take its namespace over its
 * quota with `size` more bytes (the upload's total once this request's body
 * is in); a blob `digest` the namespace already has costs nothing. No read
 * at all when no quota applies.
 * @throws StoreError DENIED.
 */
export function refuseOverQuota(store: Store, repo: string, size: number, digest?: string): Promise<void> {
  return store.checkQuota(repo, { size, digest });
}
