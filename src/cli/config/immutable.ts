// The kind of the `immutable` option: which tags of which repositories no
// one but an admin may move or delete (the store's policy, enforced in its
// transactions). In the file, a list of {repositories, tags} mappings; in a
// flag or the environment, the same list as JSON. Checked by the store's own
// rules, each problem one clause naming its entry and key.

import { immutableRules, StoreError, type ImmutableRule } from '../../store/index.js';
import type { Kind } from './kinds.js';
import { isMapping, ruleList } from './rule-list.js';

/** One entry read: the rule, or a problem (clauses). */
function fromEntry(v: unknown, problems: string[]): ImmutableRule | undefined {
  if (!isMapping(v)) {
    problems.push('expected a mapping of repositories and tags');
    return undefined;
  }
  const before = problems.length;
  for (const key of Object.keys(v)) if (key !== 'repositories' && key !== 'tags') problems.push(`unknown key ${JSON.stringify(key.slice(0, 32))} (known: repositories, tags)`);
  if (typeof v.repositories !== 'string') problems.push('repositories: expected a pattern like rel/* or **');
  if (!Array.isArray(v.tags) || v.tags.length === 0 || !v.tags.every((t) => typeof t === 'string')) problems.push('tags: expected a list of tag patterns like v*, latest');
  return problems.length > before ? undefined : { repositories: v.repositories as string, tags: [...(v.tags as string[])] };
}

/** Immutable tag rules: a list of {repositories, tags} in the file, the same as JSON in a flag or the environment. */
export const immutable: Kind<ImmutableRule[]> = ruleList<ImmutableRule>({
  shape: '{repositories, tags}',
  expected: 'a list of {repositories, tags} mappings (JSON in a flag or the environment)',
  fromEntry,
  check: (rules) => {
    try {
      immutableRules({ immutable: rules });
      return undefined;
    } catch (error) {
      if (!(error instanceof StoreError)) throw error;
      const message = error.message.replace(/^policy: /, '');
      return rules.length === 1 ? message.replace(/^immutable\[0\]\.?/, '') : message.replace(/^immutable\[(\d+)\]\.?/, (_, i: string) => `entry ${Number(i) + 1}: `);
    }
  },
  format: (rules) => rules.map((rule) => ({ repositories: rule.repositories, tags: rule.tags })),
});
