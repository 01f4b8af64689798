// Retention's plan: what the rules would remove, and why, read through the
// Store contract alone (catalog, repositoryLinks), changing nothing. The
// manifests it lists are those the garbage collector's rule would take once
// the listed tags are gone (untagged, past the rule's grace, listed by no
// index and with no present subject), found as the store would find them,
// round after round, so that applying the plan deletes exactly this list
// unless something changes meanwhile.

import type { Store } from './contract.js';
import type { ImmutableRule, ManifestLinks, RepositoryLinks, TagLink } from './types.js';
import { compileImmutable, compileRetentionRules, type CompiledRule, type RetentionRule } from './retention-rules.js';

/** A tag the plan removes, as it saw it: applied only while it still is so. */
export interface PlannedTag {
  tag: string;
  digest: string;
  /** When the tag was last set, and when its manifest was last pushed. */
  updatedAt: Date;
  pushedAt: Date;
  reason: string;
}

/** A manifest the plan removes. */
export interface PlannedManifest {
  digest: string;
  pushedAt: Date;
  reason: string;
}

/** What the plan removes from one repository, and by which rule. */
export interface RepositoryPlan {
  repository: string;
  /** The rule that applies: its repositories pattern. */
  rule: string;
  /** Manifests last pushed before this go when untagged (the plan's time less the rule's grace). */
  olderThan: Date;
  tags: PlannedTag[];
  manifests: PlannedManifest[];
  /** How many tags it keeps. */
  tagsKept: number;
}

/** What retention would remove, repository by repository (those it removes nothing from left out). */
export interface RetentionPlan {
  /** The time the rules' durations count back from. */
  at: Date;
  /** How many repositories a rule applies to. */
  repositoriesMatched: number;
  repositories: RepositoryPlan[];
}

/** How a plan is made. */
export interface PlanOptions {
  /** What durations count back from (default: now). */
  now?: Date;
  /** Untagged grace for rules that set none (default DEFAULT_UNTAGGED_GRACE). */
  grace?: number;
  /** Tags retention always keeps besides the store's immutable tags (its policy's). */
  immutable?: readonly ImmutableRule[];
  /** Hears of each repository weighed, and of each batch deleted. */
  onProgress?: (progress: { phase: 'plan' | 'apply'; done: number; total?: number }) => void;
  /** Stops the run between repositories and between batches (a server stopping): what was deleted stays deleted. */
  signal?: AbortSignal;
}

const DAY = 24 * 60 * 60 * 1000;

/** A duration for a reason: days, else hours, else minutes. */
function ago(ms: number): string {
  if (ms >= DAY) return `${Math.floor(ms / DAY)}d`;
  if (ms >= 3_600_000) return `${Math.floor(ms / 3_600_000)}h`;
  return `${Math.max(0, Math.floor(ms / 60_000))}m`;
}

/** A tag with the time retention orders by: the later of its last set and its manifest's last push. */
interface WeighedTag extends TagLink {
  pushedAt: Date;
  time: number;
}

/** Why `rule` does not keep the tag at `position` (0: the newest), or undefined when it keeps it. */
function whyNotKept(rule: CompiledRule, tag: WeighedTag, position: number, now: number): string | undefined {
  if (!rule.selective) return undefined;
  const keep = rule.rule.keep ?? {};
  const why: string[] = [];
  if (keep.newest !== undefined) {
    if (position < keep.newest) return undefined;
    why.push(`#${position + 1} newest, ${keep.newest} kept`);
  }
  if (rule.tags.some((pattern) => pattern.test(tag.tag))) return undefined;
  if (keep.tags !== undefined) why.push(`matches none of ${keep.tags.join(', ')}`);
  if (keep.pushedWithin !== undefined) {
    if (now - tag.time <= keep.pushedWithin) return undefined;
    why.push(`pushed ${ago(now - tag.time)} ago`);
  }
  if (keep.pulledWithin !== undefined) {
    const pulled = tag.pulledAt?.getTime();
    if (pulled !== undefined && now - pulled <= keep.pulledWithin) return undefined;
    why.push(pulled === undefined ? 'never pulled' : `pulled ${ago(now - pulled)} ago`);
  }
  return why.join('; ');
}

/**
 * The manifests the garbage collector's rule takes once `deleted` tags are
 * gone, in an order that deletes each only after what kept it: an index
 * before its children, a subject before its referrers.
 */
function collectable(
  manifests: readonly ManifestLinks[],
  tags: { kept: ReadonlyMap<string, number>; removed: ReadonlySet<string> },
  before: number,
  now: number,
  grace: number,
): PlannedManifest[] {
  const byDigest = new Map(manifests.map((m) => [m.digest, m]));
  const parents = new Map<string, number>();
  const referrers = new Map<string, string[]>();
  for (const m of manifests) {
    for (const child of m.children) parents.set(child, (parents.get(child) ?? 0) + 1);
    if (m.subject === undefined) continue;
    const list = referrers.get(m.subject);
    if (list === undefined) referrers.set(m.subject, [m.digest]);
    else list.push(m.digest);
  }
  const present = new Set(byDigest.keys());
  const free = (digest: string) => {
    const m = byDigest.get(digest);
    if (m === undefined || !present.has(digest) || m.pushedAt.getTime() >= before) return false;
    if ((tags.kept.get(digest) ?? 0) > 0 || (parents.get(digest) ?? 0) > 0) return false;
    return m.subject === undefined || !present.has(m.subject);
  };
  // In waves: what is free now, then what deleting it frees. Within a wave the
  // order is free: oldest push first, which is near the order the rows were
  // written in, so that a batch of deletes touches neighbouring pages.
  const cause = new Map<string, string>();
  const planned: PlannedManifest[] = [];
  const oldestFirst = (a: string, b: string) => byDigest.get(a)!.pushedAt.getTime() - byDigest.get(b)!.pushedAt.getTime() || (a < b ? -1 : 1);
  for (let wave = manifests.map((m) => m.digest).filter(free); wave.length > 0; ) {
    wave.sort(oldestFirst);
    for (const digest of wave) present.delete(digest);
    const next = new Set<string>();
    for (const digest of wave) {
      const m = byDigest.get(digest)!;
      const why = cause.get(digest) ?? (tags.removed.has(digest) ? 'its tags go' : 'untagged');
      planned.push({ digest, pushedAt: m.pushedAt, reason: `${why}; pushed ${ago(now - m.pushedAt.getTime())} ago, grace ${ago(grace)}` });
      for (const child of m.children) parents.set(child, parents.get(child)! - 1);
    }
    for (const digest of wave) {
      const m = byDigest.get(digest)!;
      for (const child of m.children) {
        if (next.has(child) || !free(child)) continue;
        next.add(child);
        cause.set(child, `its index ${digest.slice(0, 19)}… goes`);
      }
      for (const referrer of referrers.get(digest) ?? []) {
        if (next.has(referrer) || !free(referrer)) continue;
        next.add(referrer);
        cause.set(referrer, `its subject ${digest.slice(0, 19)}… goes`);
      }
    }
    wave = [...next];
  }
  return planned;
}

/** What `rule` removes from a repository whose tags and manifests are `links`. */
export function planRepository(
  repository: string,
  links: RepositoryLinks,
  rule: CompiledRule,
  immutable: readonly RegExp[],
  now: number,
): RepositoryPlan {
  const pushed = new Map(links.manifests.map((m) => [m.digest, m.pushedAt]));
  const weighed: WeighedTag[] = links.tags.map((t) => {
    const pushedAt = pushed.get(t.digest)!;
    return { ...t, pushedAt, time: Math.max(pushedAt.getTime(), t.updatedAt.getTime()) };
  });
  // Newest first; ties by name, so that the plan does not depend on the read's order.
  weighed.sort((a, b) => b.time - a.time || (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
  const keptTags = new Map<string, number>();
  const tags: PlannedTag[] = [];
  weighed.forEach((tag, position) => {
    const why = immutable.some((p) => p.test(tag.tag)) ? undefined : whyNotKept(rule, tag, position, now);
    if (why === undefined) keptTags.set(tag.digest, (keptTags.get(tag.digest) ?? 0) + 1);
    else tags.push({ tag: tag.tag, digest: tag.digest, updatedAt: tag.updatedAt, pushedAt: tag.pushedAt, reason: why });
  });
  // Deleted in name order: the tag table's key, so a batch touches neighbouring pages.
  tags.sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
  const before = now - rule.grace;
  return {
    repository,
    rule: rule.rule.repositories,
    olderThan: new Date(before),
    tags,
    manifests: collectable(links.manifests, { kept: keptTags, removed: new Set(tags.map((t) => t.digest)) }, before, now, rule.grace),
    tagsKept: weighed.length - tags.length,
  };
}

/**
 * What `rules` would remove from `store` now: each repository by the first
 * rule whose pattern matches it; nothing from a repository no rule matches,
 * and never a tag of the store's immutable rules. Changes nothing.
 * @throws StoreError ARGUMENT_INVALID (a malformed rule or immutable pattern);
 * the store's errors (DATABASE_*, STORE_CLOSED); `options.signal`'s reason once it aborts.
 */
export async function planRetention(store: Store, rules: readonly RetentionRule[], options: PlanOptions = {}): Promise<RetentionPlan> {
  const compiled = compileRetentionRules(rules, options.grace);
  const immutable = compileImmutable([...(store.policy.immutable ?? []), ...(options.immutable ?? [])]);
  const now = (options.now ?? new Date()).getTime();
  const plan: RetentionPlan = { at: new Date(now), repositoriesMatched: 0, repositories: [] };
  let done = 0;
  for (let last: string | undefined; ; ) {
    const names = await store.catalog({ n: 1000, last });
    for (const repository of names) {
      options.signal?.throwIfAborted();
      const rule = compiled.find((r) => r.repositories.test(repository));
      if (rule === undefined) continue;
      plan.repositoriesMatched++;
      const frozen = immutable.filter((i) => i.repositories.test(repository)).flatMap((i) => i.tags);
      const planned = planRepository(repository, await store.repositoryLinks(repository), rule, frozen, now);
      if (planned.tags.length > 0 || planned.manifests.length > 0) plan.repositories.push(planned);
      options.onProgress?.({ phase: 'plan', done: ++done });
    }
    if (names.length < 1000) break;
    last = names[names.length - 1];
  }
  return plan;
}
