// The kind every option of rules shares (immutable, retention): in the
// file, a list of mappings; in a flag or the environment, the same list as
// JSON. Each entry's problems are clauses naming the entry ("entry 2: …"),
// and the store's own rules then check what the shape lets through.

import type { Kind } from './kinds.js';

/** A mapping, as YAML and JSON give one. */
export const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What a list of rules of one option needs beyond the shared shape. */
interface RuleListSpec<T> {
  /** One entry's keys, for messages: '{repositories, tags}'. */
  shape: string;
  /** What the whole value looks like, for --help and messages. */
  expected: string;
  /** One entry read: the rule, or its problems pushed (clauses). */
  fromEntry(v: unknown, problems: string[]): T | undefined;
  /** The store's own check of the rules read: one line naming the entry, or undefined. */
  check(rules: T[]): string | undefined;
  /** What --print-config and the docs show, read back by fromEntry. */
  format(rules: T[]): Record<string, unknown>[];
}

/** A Kind of a list of rules, from the entry rules of `spec`. */
export function ruleList<T>(spec: RuleListSpec<T>): Kind<T[]> {
  const fromList = (v: unknown): { rules?: T[]; problems: string[] } => {
    if (!Array.isArray(v)) return { problems: [`expected a list of ${spec.shape} mappings`] };
    const problems: string[] = [];
    const rules = v.map((entry, i) => {
      const own: string[] = [];
      const rule = spec.fromEntry(entry, own);
      problems.push(...own.map((p) => (v.length === 1 ? p : `entry ${i + 1}: ${p}`)));
      return rule;
    });
    return problems.length > 0 ? { problems } : { rules: rules as T[], problems };
  };
  const fromJson = (text: string): { rules?: T[]; problems: string[] } => {
    try {
      return fromList(JSON.parse(text));
    } catch {
      return { problems: [`expected a JSON list of ${spec.shape} mappings`] };
    }
  };
  return {
    expected: spec.expected,
    fromText: (t) => fromJson(t).rules,
    fromFile: (v) => fromList(v).rules,
    why: (raw) => {
      const { problems } = typeof raw === 'string' ? fromJson(raw) : fromList(raw);
      return problems.length === 0 ? undefined : problems.join('; ');
    },
    check: spec.check,
    format: spec.format,
  };
}
