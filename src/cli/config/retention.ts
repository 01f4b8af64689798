// The kind of the `retention` option: which tags of which repositories
// `regmeta gc --retention` and serve's maintenance keep. In the file, a list
// of {repositories, keep: {newest, tags, pulledWithin, pushedWithin,
// untaggedGrace}} mappings, durations like 30d; in a flag or the
// environment, the same list as JSON. Checked by the store's own rules
// (compileRetentionRules), each problem one clause naming its entry and key.

import { compileRetentionRules, StoreError, type RetentionKeep, type RetentionRule } from '../../store/index.js';
import { count, duration, type Kind } from './kinds.js';
import { isMapping, ruleList } from './rule-list.js';

const DURATION_KEYS = ['pulledWithin', 'pushedWithin', 'untaggedGrace'] as const;
const KEEP_KEYS = new Set<string>(['newest', 'tags', ...DURATION_KEYS]);
const DURATION = duration();
const NEWEST = count();

/** One entry read: the rule, or its problems (clauses). */
function fromEntry(v: unknown, problems: string[]): RetentionRule | undefined {
  if (!isMapping(v)) {
    problems.push('expected a mapping of repositories and keep');
    return undefined;
  }
  const before = problems.length;
  for (const key of Object.keys(v)) if (key !== 'repositories' && key !== 'keep') problems.push(`unknown key ${JSON.stringify(key.slice(0, 32))} (known: repositories, keep)`);
  if (typeof v.repositories !== 'string') problems.push('repositories: expected a pattern like acme/* or **');
  const keepIn = v.keep ?? {};
  if (!isMapping(keepIn)) {
    problems.push('keep: expected a mapping of newest, tags, pulledWithin, pushedWithin, untaggedGrace');
    return undefined;
  }
  const keep: RetentionKeep = {};
  for (const key of Object.keys(keepIn)) if (!KEEP_KEYS.has(key)) problems.push(`keep: unknown key ${JSON.stringify(key.slice(0, 32))} (known: ${[...KEEP_KEYS].join(', ')})`);
  if (keepIn.newest !== undefined) {
    keep.newest = NEWEST.fromFile(keepIn.newest);
    if (keep.newest === undefined) problems.push(`keep.newest: expected ${NEWEST.expected}`);
  }
  if (keepIn.tags !== undefined) {
    if (Array.isArray(keepIn.tags) && keepIn.tags.every((t) => typeof t === 'string')) keep.tags = [...(keepIn.tags as string[])];
    else problems.push('keep.tags: expected a list of tag patterns like latest, v*');
  }
  for (const key of DURATION_KEYS) {
    if (keepIn[key] === undefined) continue;
    keep[key] = DURATION.fromFile(keepIn[key]);
    if (keep[key] === undefined) problems.push(`keep.${key}: expected ${DURATION.expected}`);
  }
  return problems.length > before ? undefined : { repositories: v.repositories as string, keep };
}

/** Retention rules: a list of {repositories, keep} in the file, the same as JSON in a flag or the environment. */
export const retention: Kind<RetentionRule[]> = ruleList<RetentionRule>({
  shape: '{repositories, keep}',
  expected: 'a list of {repositories, keep: {newest, tags, pulledWithin, pushedWithin, untaggedGrace}} mappings (JSON in a flag or the environment)',
  fromEntry,
  check: (rules) => {
    try {
      compileRetentionRules(rules);
      return undefined;
    } catch (error) {
      if (error instanceof StoreError) return error.message.replace(/retention\[(\d+)\]\.?/g, (_, i: string) => `entry ${Number(i) + 1}: `);
      throw error;
    }
  },
  format: (rules) =>
    rules.map((rule) => {
      const keep: Record<string, unknown> = {};
      if (rule.keep?.newest !== undefined) keep.newest = rule.keep.newest;
      if (rule.keep?.tags !== undefined) keep.tags = rule.keep.tags;
      for (const key of DURATION_KEYS) if (rule.keep?.[key] !== undefined) keep[key] = DURATION.format(rule.keep[key]);
      return { repositories: rule.repositories, keep };
    }),
});
