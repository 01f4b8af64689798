// The store's policy: which tags are immutable and how much each namespace may
// hold, checked once at open and compiled, so that the checks inside a
// transaction are a pattern match and a map lookup.

import { StoreError } from './errors.js';
import { compilePattern, compileTagPattern } from './grammar.js';
import type { ImmutableRule, Quota, StorePolicy } from './types.js';

/** An immutable rule, compiled. */
interface CompiledImmutableRule {
  rule: ImmutableRule;
  repositories: RegExp;
  tags: RegExp[];
}

/** A store's policy as its transactions check it. */
export interface CompiledPolicy {
  /** The policy as given, frozen: what Store.policy reports. */
  readonly policy: StorePolicy;
  readonly immutable: readonly CompiledImmutableRule[];
  /** The quota of each namespace that has one, in bytes. */
  readonly quotas: ReadonlyMap<string, number>;
}

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function invalid(message: string): never {
  throw new StoreError('ARGUMENT_INVALID', `policy: ${message}`);
}

function compileImmutable(rule: unknown, i: number): CompiledImmutableRule {
  const key = `immutable[${i}]`;
  if (!isMapping(rule)) invalid(`${key}: expected {repositories, tags}`);
  const repositories = typeof rule.repositories === 'string' ? compilePattern(rule.repositories) : 'not a string';
  if (typeof repositories === 'string') invalid(`${key}.repositories: ${repositories}`);
  if (!Array.isArray(rule.tags) || rule.tags.length === 0) invalid(`${key}.tags: expected a non-empty list of tag patterns`);
  const tags = rule.tags.map((pattern, j) => {
    const compiled = compileTagPattern(pattern as string);
    if (typeof compiled === 'string') invalid(`${key}.tags[${j}]: ${compiled}`);
    return compiled;
  });
  const frozen: ImmutableRule = Object.freeze({ repositories: rule.repositories as string, tags: Object.freeze([...(rule.tags as string[])]) as string[] });
  return { rule: frozen, repositories, tags };
}

function checkQuota(quota: unknown, i: number, seen: Map<string, number>): Quota {
  const key = `quotas[${i}]`;
  if (!isMapping(quota)) invalid(`${key}: expected {namespace, maxSize}`);
  const { namespace, maxSize } = quota;
  if (typeof namespace !== 'string' || typeof compilePattern(namespace) === 'string' || namespace.includes('/') || namespace.includes('*')) {
    invalid(`${key}.namespace: expected a repository name's first component, got ${JSON.stringify(namespace) ?? 'nothing'}`);
  }
  if (!Number.isSafeInteger(maxSize) || (maxSize as number) < 0) invalid(`${key}.maxSize: expected a whole number of bytes`);
  if (seen.has(namespace)) invalid(`${key}.namespace: ${namespace} has a quota already`);
  seen.set(namespace, maxSize as number);
  return Object.freeze({ namespace, maxSize: maxSize as number });
}

/**
 * A store's policy, checked and compiled.
 * @throws StoreError ARGUMENT_INVALID naming the rule that is malformed.
 */
export function compilePolicy(policy: StorePolicy | undefined): CompiledPolicy {
  if (policy === undefined) return { policy: Object.freeze({}), immutable: [], quotas: new Map() };
  if (!isMapping(policy)) invalid('expected {immutable, quotas}');
  for (const key of Object.keys(policy)) if (key !== 'immutable' && key !== 'quotas') invalid(`${key}: unknown key (immutable, quotas)`);
  if (policy.immutable !== undefined && !Array.isArray(policy.immutable)) invalid('immutable: expected a list of {repositories, tags}');
  if (policy.quotas !== undefined && !Array.isArray(policy.quotas)) invalid('quotas: expected a list of {namespace, maxSize}');
  const immutable = (policy.immutable ?? []).map(compileImmutable);
  const quotas = new Map<string, number>();
  const checkedQuotas = (policy.quotas ?? []).map((quota, i) => checkQuota(quota, i, quotas));
  const frozen: StorePolicy = {};
  if (policy.immutable !== undefined) frozen.immutable = Object.freeze(immutable.map((r) => r.rule)) as ImmutableRule[];
  if (policy.quotas !== undefined) frozen.quotas = Object.freeze(checkedQuotas) as Quota[];
  return { policy: Object.freeze(frozen), immutable, quotas };
}
