// regmeta gc's eviction from the mirrors' caches: whole cached repositories,
// first those not pulled for a mirror's maxIdle, then, while the namespace
// holds more than its maxSize (each blob counted once, however many of its
// repositories link it), the one pulled longest ago. Each eviction is a
// deleteRepository as 'mirror' (its events say why the content went); the
// sweep that follows removes the manifests and blobs nothing references any
// more, by its usual rules and grace period.

import { StoreError, type NamespaceRepository, type Store } from '../../store/index.js';
import type { MirrorOptions } from '../../server/index.js';
import type { Progress } from '../progress.js';

/** What gc evicts by: a mirror's namespace and its limits (the config's `mirrors:`, as location() reads them). */
export type EvictionPolicy = Pick<MirrorOptions, 'prefix' | 'maxIdle' | 'maxSize'>;

/** A cached repository evicted (or, dry, that would be), and why. */
export interface Eviction {
  repository: string;
  /** `idle`: not pulled for the mirror's maxIdle; `size`: the namespace over its maxSize. */
  reason: 'idle' | 'size';
  /** Its last pull, or its creation when it was never pulled (ISO 8601). */
  since: string;
  pulled: boolean;
  /** With `size`: the namespace's bytes before this eviction, and its budget. */
  usage?: number;
  budget?: number;
}

const MIRROR_CTX = { actor: 'mirror' };

/** When a repository was last used: its last pull, else when it was cached. */
const lastUse = (r: NamespaceRepository) => (r.pulledAt ?? r.createdAt).getTime();

/** What to evict from one namespace at `now`, in order: idle repositories, then the oldest while over budget. */
function planEvictions(repositories: readonly NamespaceRepository[], policy: EvictionPolicy, now: number): Eviction[] {
  const oldestFirst = [...repositories].sort((a, b) => lastUse(a) - lastUse(b) || (a.name < b.name ? -1 : 1));
  const eviction = (r: NamespaceRepository, reason: Eviction['reason']): Eviction => ({
    repository: r.name,
    reason,
    since: new Date(lastUse(r)).toISOString(),
    pulled: r.pulledAt !== undefined,
  });
  const plan: Eviction[] = [];
  const kept: NamespaceRepository[] = [];
  for (const r of oldestFirst) {
    if (policy.maxIdle !== undefined && now - lastUse(r) > policy.maxIdle) plan.push(eviction(r, 'idle'));
    else kept.push(r);
  }
  if (policy.maxSize === undefined) return plan;
  // Each blob counted once, with how many kept repositories link it: its bytes leave the namespace with the last of them.
  const links = new Map<string, { size: number; count: number }>();
  let usage = 0;
  for (const r of kept) {
    for (const blob of r.blobs) {
      const link = links.get(blob.digest);
      if (link !== undefined) link.count++;
      else {
        links.set(blob.digest, { size: blob.size, count: 1 });
        usage += blob.size;
      }
    }
  }
  for (const r of kept) {
    if (usage <= policy.maxSize) break;
    plan.push({ ...eviction(r, 'size'), usage, budget: policy.maxSize });
    for (const blob of r.blobs) {
      const link = links.get(blob.digest)!;
      if (--link.count === 0) usage -= link.size;
    }
  }
  return plan;
}

/**
 * Evicts from each mirror's namespace what planEvictions says, one
 * deleteRepository each; one deleted meanwhile (by another gc) is skipped.
 * @returns the evictions done, and how many were skipped.
 * @throws StoreError on database failures.
 */
export async function evictMirrors(store: Store, policies: readonly EvictionPolicy[], progress: Progress): Promise<{ evicted: Eviction[]; skipped: number }> {
  const evicted: Eviction[] = [];
  let skipped = 0;
  for (const policy of policies) {
    if (policy.maxIdle === undefined && policy.maxSize === undefined) continue;
    const plan = planEvictions(await store.namespaceUsage(policy.prefix), policy, Date.now());
    for (const eviction of plan) {
      try {
        await store.deleteRepository(eviction.repository, MIRROR_CTX);
        evicted.push(eviction);
      } catch (error) {
        if (!(error instanceof StoreError && error.code === 'NAME_UNKNOWN')) throw error;
        skipped++;
      }
      progress.tick();
    }
  }
  return { evicted, skipped };
}
