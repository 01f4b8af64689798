// The kind of the `quotas` option: how many bytes each namespace may hold
// (the store's StorePolicy.quotas). A flag or the environment gives
// NAMESPACE=SIZE (repeated, or comma-separated); the config file a list of
// {namespace, maxSize} mappings (or NAMESPACE=SIZE strings). Sizes as the
// other options take them: bytes, or like 10GiB.

import { isNamespace, type Quota } from '../../store/index.js';
import { size, type Kind } from './kinds.js';

const bytes = size();
const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A value as a message quotes it: short, and only plain characters. */
const quoted = (v: unknown) => {
  const text = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 37)}...` : text.replace(/[^\w./=-]/g, '?'));
};

/** An entry checked: the quota, or what is wrong with it (one clause). */
type Parsed = { quota: Quota; problem?: undefined } | { quota?: undefined; problem: string };

function entryOf(namespace: unknown, maxSize: unknown, where: string): Parsed {
  if (!isNamespace(namespace)) return { problem: `${where}: namespace ${quoted(namespace)} is not a namespace (a repository name's first component, like acme)` };
  const value = typeof maxSize === 'string' ? bytes.fromText(maxSize.trim()) : bytes.fromFile(maxSize);
  if (value === undefined) return { problem: `${where}: maxSize ${quoted(maxSize)} is not ${bytes.expected}` };
  return { quota: { namespace, maxSize: value } };
}

/** `NAMESPACE=SIZE`. */
function fromPair(text: string, where: string): Parsed {
  const at = text.indexOf('=');
  if (at <= 0) return { problem: `${where}: expected NAMESPACE=SIZE, like acme=10GiB, got ${quoted(text)}` };
  return entryOf(text.slice(0, at).trim(), text.slice(at + 1).trim(), where);
}

function fromEntry(v: unknown, where: string): Parsed {
  if (typeof v === 'string') return fromPair(v, where);
  if (!isMapping(v)) return { problem: `${where}: expected {namespace, maxSize} or NAMESPACE=SIZE` };
  const unknown = Object.keys(v).filter((k) => k !== 'namespace' && k !== 'maxSize');
  if (unknown.length > 0) return { problem: `${where}: unknown key ${quoted(unknown[0])} (known: namespace, maxSize)` };
  return entryOf(v.namespace, v.maxSize, where);
}

/** The quotas of a list of entries, or the first problem; a namespace given twice is one. */
function quotasOf(entries: readonly Parsed[]): { quotas?: Quota[]; problem?: string } {
  const seen = new Set<string>();
  const quotas: Quota[] = [];
  for (const [i, entry] of entries.entries()) {
    if (entry.problem !== undefined) return { problem: entry.problem };
    if (seen.has(entry.quota.namespace)) return { problem: `entry ${i + 1}: namespace ${entry.quota.namespace} has a quota already` };
    seen.add(entry.quota.namespace);
    quotas.push(entry.quota);
  }
  return { quotas };
}

const fromText = (t: string) => quotasOf(t.split(',').filter((s) => s.trim() !== '').map((s, i) => fromPair(s.trim(), `entry ${i + 1}`)));
// A string in the file reads as the environment's NAMESPACE=SIZE list.
const fromFileValue = (v: unknown) =>
  typeof v === 'string'
    ? fromText(v)
    : Array.isArray(v)
      ? quotasOf(v.map((e, i) => fromEntry(e, `entry ${i + 1}`)))
      : { problem: 'expected a list of {namespace, maxSize}' };

/** Quotas per namespace: NAMESPACE=SIZE as repeated flags or a comma-separated variable; in the file, a list of {namespace, maxSize}. */
export const quotas: Kind<Quota[]> = {
  expected: 'NAMESPACE=SIZE, like acme=10GiB (in the file, a list of {namespace, maxSize} mappings)',
  repeatable: true,
  fromText: (t) => fromText(t).quotas,
  fromFile: (v) => fromFileValue(v).quotas,
  why: (raw) => fromFileValue(raw).problem,
  format: (v) => v.map((q) => ({ namespace: q.namespace, maxSize: bytes.format(q.maxSize) })) as Record<string, unknown>[],
};
