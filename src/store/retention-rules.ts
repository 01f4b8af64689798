// Retention rules: which tags of which repositories are kept, checked and
// compiled once. A rule applies to the repositories its pattern matches
// (the first rule that matches a repository is the one that applies); a tag
// is kept when any keep condition of that rule keeps it; untagged manifests
// go after the rule's grace. A repository that no rule matches is left alone.

import { StoreError } from './errors.js';
import { compilePattern, compileTagPattern } from './grammar.js';
import type { ImmutableRule } from './types.js';

/** What a rule keeps. Durations are milliseconds. */
export interface RetentionKeep {
  /** The N most recently pushed tags (by the later of the tag's last set and its manifest's last push). */
  newest?: number;
  /** Tags matching any of these patterns (`*` any run of tag characters, `?` one), always. */
  tags?: string[];
  /** Tags pulled (by tag, or their manifest by digest) within this long. */
  pulledWithin?: number;
  /** Tags pushed within this long. */
  pushedWithin?: number;
  /** How long an untagged manifest stays after its last push (default: DEFAULT_UNTAGGED_GRACE). */
  untaggedGrace?: number;
}

/** A retention rule: the config's `retention:` entries. */
export interface RetentionRule {
  /** A repository pattern: `*` within a segment, `**` whole segments (as access rules). */
  repositories: string;
  /** No tag condition at all keeps every tag: the rule then only removes untagged manifests. */
  keep?: RetentionKeep;
}

/** How long an untagged manifest stays when its rule says nothing: gc's default grace. */
const DEFAULT_UNTAGGED_GRACE = 24 * 60 * 60 * 1000;

/** A rule compiled: its patterns as regular expressions. */
export interface CompiledRule {
  /** Its position in the list, from 0. */
  index: number;
  rule: RetentionRule;
  repositories: RegExp;
  tags: RegExp[];
  /** Whether any condition keeps tags: without one, every tag is kept. */
  selective: boolean;
  grace: number;
}

const isDuration = (v: unknown) => v === undefined || (Number.isSafeInteger(v) && (v as number) >= 0);

/** One rule's problems, each a clause. */
function problemsOf(rule: RetentionRule): string[] {
  if (typeof rule !== 'object' || rule === null) return ['expected {repositories, keep}'];
  const problems: string[] = [];
  const repositories = typeof rule.repositories === 'string' ? compilePattern(rule.repositories) : 'repositories is not a pattern';
  if (typeof repositories === 'string') problems.push(`repositories: ${repositories}`);
  const keep: RetentionKeep = rule.keep ?? {};
  if (typeof keep !== 'object' || keep === null) return [...problems, 'keep is not a mapping'];
  if (keep.newest !== undefined && !(Number.isSafeInteger(keep.newest) && keep.newest >= 0)) problems.push('keep.newest: expected a whole number ≥ 0');
  if (keep.tags !== undefined && !Array.isArray(keep.tags)) problems.push('keep.tags: expected a list of tag patterns');
  for (const pattern of Array.isArray(keep.tags) ? keep.tags : []) {
    const compiled = typeof pattern === 'string' ? compileTagPattern(pattern) : 'not a string';
    if (typeof compiled === 'string') problems.push(`keep.tags: ${compiled}`);
  }
  for (const key of ['pulledWithin', 'pushedWithin', 'untaggedGrace'] as const) {
    if (!isDuration(keep[key])) problems.push(`keep.${key}: expected a duration in milliseconds`);
  }
  return problems;
}

/**
 * The rules compiled, in order.
 * @throws StoreError ARGUMENT_INVALID naming each bad rule ("retention[1].keep.newest: …").
 */
export function compileRetentionRules(rules: readonly RetentionRule[], defaultGrace = DEFAULT_UNTAGGED_GRACE): CompiledRule[] {
  if (!Array.isArray(rules)) throw new StoreError('ARGUMENT_INVALID', 'retention rules must be a list');
  const problems = rules.flatMap((rule, i) => problemsOf(rule).map((p) => `retention[${i}]${p.startsWith('expected') ? ': ' : '.'}${p}`));
  if (problems.length > 0) throw new StoreError('ARGUMENT_INVALID', problems.join('; '));
  return rules.map((rule, index) => {
    const keep: RetentionKeep = rule.keep ?? {};
    return {
      index,
      rule,
      repositories: compilePattern(rule.repositories) as RegExp,
      tags: (keep.tags ?? []).map((p) => compileTagPattern(p) as RegExp),
      selective: keep.newest !== undefined || keep.tags !== undefined || keep.pulledWithin !== undefined || keep.pushedWithin !== undefined,
      grace: keep.untaggedGrace ?? defaultGrace,
    };
  });
}

/**
 * The immutable patterns compiled.
 * @throws StoreError ARGUMENT_INVALID for a malformed pattern: retention does not run on rules it cannot read.
 */
export function compileImmutable(rules: readonly ImmutableRule[]): { repositories: RegExp; tags: RegExp[] }[] {
  return rules.map((rule, i) => {
    const repositories = compilePattern(rule.repositories);
    const tags = rule.tags.map(compileTagPattern);
    const bad = [repositories, ...tags].find((p) => typeof p === 'string');
    if (bad !== undefined) throw new StoreError('ARGUMENT_INVALID', `immutable[${i}]: ${bad as string}`);
    return { repositories: repositories as RegExp, tags: tags as RegExp[] };
  });
}
