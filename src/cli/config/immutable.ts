// The kind of the `immutable` option: which tags of which repositories no
// one but an admin may move or delete (the store's policy, enforced in its
// transactions). In the file, a list of {repositories, tags} mappings; in a
// flag or the environment, the same list as JSON. Checked by the store's own
// rules, each problem one clause naming its entry and key.

import { immutableRules, StoreError, type ImmutableRule } from '../../store/index.js';
import type { Kind } from './kinds.js';

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

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

/** The rules of a list, or every problem of its entries ("entry N: …"). */
function fromList(v: unknown): { rules?: ImmutableRule[]; problems: string[] } {
  if (!Array.isArray(v)) return { problems: ['expected a list of {repositories, tags} mappings'] };
  const problems: string[] = [];
  const rules = v.map((entry, i) => {
    const own: string[] = [];
    const rule = fromEntry(entry, own);
    problems.push(...own.map((p) => (v.length === 1 ? p : `entry ${i + 1}: ${p}`)));
    return rule;
  });
  return problems.length > 0 ? { problems } : { rules: rules as ImmutableRule[], problems };
}

const fromJson = (t: string) => {
  try {
    return fromList(JSON.parse(t));
  } catch {
    return { rules: undefined, problems: ['expected a JSON list of {repositories, tags} mappings'] };
  }
};

/** Immutable tag rules: a list of {repositories, tags} in the file, the same as JSON in a flag or the environment. */
export const immutable: Kind<ImmutableRule[]> = {
  expected: 'a list of {repositories, tags} mappings (JSON in a flag or the environment)',
  fromText: (t) => fromJson(t).rules,
  fromFile: (v) => fromList(v).rules,
  why: (raw) => {
    const { problems } = typeof raw === 'string' ? fromJson(raw) : fromList(raw);
    return problems.length === 0 ? undefined : problems.join('; ');
  },
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
};
