// Retention's apply: a plan's deletes, through the store's conditional
// deletes, a batch per transaction, as the actor `retention` with each
// deletion's reason in its event. What changed since the plan (a tag moved
// or pushed again, a manifest tagged or listed since) stays: the store
// checks each premise again inside the delete's transaction.

import type { Store } from './contract.js';
import type { Context } from './types.js';
import { planRetention, type PlanOptions, type RepositoryPlan, type RetentionPlan } from './retention-plan.js';
import type { RetentionRule } from './retention-rules.js';

/** The actor of retention's deletes, in their events. */
const RETENTION_ACTOR = 'retention';

/** Deletes per transaction: a server's writers wait milliseconds for one. */
const BATCH = 1000;

/** One deletion, as a plan lists it and an apply reports it. */
export interface RetentionDeletion {
  repository: string;
  /** The tag removed; absent for a manifest. */
  tag?: string;
  digest: string;
  /** The repositories pattern of the rule that decided it. */
  rule: string;
  reason: string;
}

/** What an apply removed, and what it left because it changed since the plan. */
export interface RetentionResult {
  at: Date;
  tags: RetentionDeletion[];
  manifests: RetentionDeletion[];
  /** Planned deletions the store refused, because what they weighed changed. */
  skipped: number;
}

/** Every deletion of a plan, tags first, each repository's in the order it applies them. */
export function deletionsOf(plan: RetentionPlan): { tags: RetentionDeletion[]; manifests: RetentionDeletion[] } {
  const tags = plan.repositories.flatMap((r) => r.tags.map(({ tag, digest, reason }) => ({ repository: r.repository, tag, digest, rule: r.rule, reason })));
  const manifests = plan.repositories.flatMap((r) => r.manifests.map(({ digest, reason }) => ({ repository: r.repository, digest, rule: r.rule, reason })));
  return { tags, manifests };
}

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += BATCH) out.push(items.slice(i, i + BATCH));
  return out;
}

/** One repository's deletes: its tags, then the manifests that frees, each batch one transaction. */
async function applyRepository(store: Store, planned: RepositoryPlan, result: RetentionResult, tick: (n: number) => void, signal?: AbortSignal): Promise<void> {
  const ctx: Context = { actor: RETENTION_ACTOR };
  const { repository, rule } = planned;
  for (const batch of chunks(planned.tags)) {
    signal?.throwIfAborted();
    const deleted = new Set(await store.retireTags(repository, batch, ctx));
    for (const { tag, digest, reason } of batch) {
      if (deleted.has(tag)) result.tags.push({ repository, tag, digest, rule, reason });
      else result.skipped++;
    }
    tick(batch.length);
  }
  for (const batch of chunks(planned.manifests)) {
    signal?.throwIfAborted();
    const deleted = new Set(await store.retireManifests(repository, batch, ctx, { olderThan: planned.olderThan }));
    for (const { digest, reason } of batch) {
      if (deleted.has(digest)) result.manifests.push({ repository, digest, rule, reason });
      else result.skipped++;
    }
    tick(batch.length);
  }
}

/**
 * Applies `plan` to `store`.
 * @throws StoreError the store's (DATABASE_*, STORE_CLOSED); `options.signal`'s
 * reason once it aborts (between batches). What was deleted before stays deleted.
 */
export async function applyPlan(store: Store, plan: RetentionPlan, options: Pick<PlanOptions, 'onProgress' | 'signal'> = {}): Promise<RetentionResult> {
  const result: RetentionResult = { at: plan.at, tags: [], manifests: [], skipped: 0 };
  const total = plan.repositories.reduce((n, r) => n + r.tags.length + r.manifests.length, 0);
  let done = 0;
  const tick = (n: number) => options.onProgress?.({ phase: 'apply', done: (done += n), total });
  for (const planned of plan.repositories) await applyRepository(store, planned, result, tick, options.signal);
  return result;
}

/**
 * Plans with `rules` and applies the plan: what `regmeta gc --retention`
 * and serve's maintenance schedule run.
 * @throws StoreError ARGUMENT_INVALID (a malformed rule); the store's errors;
 * `options.signal`'s reason once it aborts.
 */
export async function applyRetention(store: Store, rules: readonly RetentionRule[], options: PlanOptions = {}): Promise<RetentionResult> {
  return applyPlan(store, await planRetention(store, rules, options), options);
}
