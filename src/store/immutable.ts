// Immutable tags (StorePolicy.immutable), the same on every backend: which
// rule protects a tag, and what a write that would move or delete one must
// do. Each backend asks inside the write's transaction, after it has read
// (and, on PostgreSQL, locked) what the tag points at, so that no write
// slips between the check and the change.

import { StoreError } from './errors.js';
import { compilePolicy, type CompiledPolicy } from './policy.js';
import type { StorePolicy } from './types.js';

/** The reason the event of an admin's move or delete of an immutable tag carries. */
const IMMUTABLE_OVERRIDE = 'immutable tag override by an admin';

/** The rule that makes `repo:tag` immutable, as `<repositories> <tag pattern>` (`rel/* v*`); undefined when none does. */
function ruleOf(policy: CompiledPolicy, repo: string, tag: string): string | undefined {
  for (const { rule, repositories, tags } of policy.immutable) {
    if (!repositories.test(repo)) continue;
    const i = tags.findIndex((pattern) => pattern.test(tag));
    if (i !== -1) return `${rule.repositories} ${rule.tags[i]}`;
  }
  return undefined;
}

/**
 * What a write that moves or deletes the existing tag `repo:tag` must do:
 * nothing (undefined) when no rule protects it; an admin's goes on, its
 * event carrying the returned reason.
 * @throws StoreError DENIED when a rule protects the tag and the actor is no admin.
 */
export function guardTag(policy: CompiledPolicy, repo: string, tag: string, admin: boolean): string | undefined {
  if (policy.immutable.length === 0) return undefined;
  const rule = ruleOf(policy, repo, tag);
  if (rule === undefined) return undefined;
  if (admin) return IMMUTABLE_OVERRIDE;
  throw new StoreError('DENIED', `tag ${repo}:${tag} is immutable (rule ${rule})`, { repository: repo, tag, rule });
}

/**
 * The reasons of the events of tags deleted together (with their manifest or
 * repository), in their order: each checked as guardTag, all before any goes.
 * @throws StoreError DENIED for the first tag a rule protects, when the actor is no admin.
 */
export function guardTags(policy: CompiledPolicy, repo: string, tags: readonly string[], admin: boolean): (string | undefined)[] {
  if (policy.immutable.length === 0) return tags.map(() => undefined);
  return tags.map((tag) => guardTag(policy, repo, tag, admin));
}

/**
 * A matcher of a store's immutable rules, compiled once (`store.policy`): what
 * a caller checks before asking the store, to tell an override apart.
 * @returns the rule that protects `repo:tag`, as `<repositories> <tag pattern>`; undefined when none does.
 * @throws StoreError ARGUMENT_INVALID for a malformed policy (never for a store's own).
 */
export function immutableRules(policy: StorePolicy): (repo: string, tag: string) => string | undefined {
  const compiled = compilePolicy(policy);
  return (repo, tag) => ruleOf(compiled, repo, tag);
}
