// The config file: read, parsed and checked key by key against the options
// table, every problem one line naming the file and the key; and how a value
// is quoted in those lines, secrets masked.

import { readFileSync } from 'node:fs';
import nodePath from 'node:path';
import { FileFormatError, parseFileText } from '../../server/index.js';
import { CliError, Exit } from '../exit.js';
import { MASK } from './kinds.js';
import { OPTIONS, SECTIONS, type OptionInfo } from './options.js';

const BY_KEY = new Map(OPTIONS.map((o) => [o.key, o]));

/** The option of a config key (`limits.idleTimeout`); undefined for a key that is none. */
export function optionOf(key: string): OptionInfo | undefined {
  return BY_KEY.get(key);
}

/**
 * A value as a message quotes it, secrets masked: a URL's credentials, path
 * and query (a webhook's may be its secret), a `secret`, header values.
 */
function shown(value: unknown): string {
  const text = (JSON.stringify(value, maskedSecrets) ?? String(value)).replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s",]*/gi, maskedUrl);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** JSON.stringify's replacer: a `secret`, a `password` and the values of `headers` masked. */
function maskedSecrets(key: string, value: unknown): unknown {
  if (key === 'secret' || key === 'password') return MASK;
  if (key === 'headers' && isMapping(value)) return Object.fromEntries(Object.keys(value).map((k) => [k, MASK]));
  return value;
}

/** scheme://host as it is; credentials, path and query masked. */
function maskedUrl(url: string): string {
  const [, scheme, user, host, rest] = /^([^:]+:\/\/)([^/?#@]*@)?([^/?#]*)(.*)$/.exec(url)!;
  return `${scheme}${user === undefined ? '' : `${MASK}@`}${host}${rest === '' || rest === '/' ? rest : '/…'}`;
}

/** Each value's problem beyond its form, as the kind says: one line naming where. */
export function checked(name: string, o: OptionInfo, value: unknown, problems: string[]): boolean {
  const problem = o.kind.check?.(value);
  if (problem !== undefined) problems.push(`${name}: ${problem}`);
  return problem === undefined;
}

/** A value not of its option's kind, in one line naming where. */
export function bad(name: string, option: OptionInfo, raw: unknown): string {
  const why = option.kind.why?.(raw);
  if (why !== undefined) return `${name}: ${why}`;
  return `${name}: expected ${option.kind.expected}, got ${shown(raw)}`;
}

/**
 * The file's text parsed: JSON for *.json, YAML (1.2, of which JSON is a
 * subset) otherwise, within FILE_FORMAT_LIMITS.
 * @throws CliError IO when the file cannot be read; USAGE when it does not
 * parse or passes a limit (nesting, aliases).
 */
export function readConfigFile(file: string): unknown {
  let textContent: string;
  try {
    textContent = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new CliError(Exit.IO, `cannot read config file ${file}: ${code}`, 'check --config (or REGMETA_CONFIG) and the permissions');
  }
  try {
    return parseFileText(textContent, file.endsWith('.json') ? 'json' : 'yaml');
  } catch (error) {
    if (error instanceof FileFormatError) throw new CliError(Exit.USAGE, `config ${file}: ${error.message}`);
    throw error;
  }
}

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Unknown keys listed one line each, with a suggestion; more are one line with their count. */
const LISTED_UNKNOWN_KEYS = 5;

/**
 * Each option's value from the parsed file, relative paths resolved against
 * the file's directory. Every key is checked against the whole table,
 * whichever command reads the file: one file serves them all.
 */
export function fromFile(file: string, data: unknown, problems: string[]): Map<string, unknown> {
  const found = new Map<string, unknown>();
  const where = `config ${file}`;
  const unknown: { key: string; line: number }[] = [];
  const check = (key: string, value: unknown) => {
    const o = BY_KEY.get(key);
    if (o === undefined) {
      // Only the few that get a line of their own are worth a suggestion, which costs a distance per option.
      const line = unknown.length < LISTED_UNKNOWN_KEYS ? problems.push(`${where}: ${cut(key)}: unknown key${suggestion(key, OPTIONS.map((x) => x.key))}`) - 1 : -1;
      unknown.push({ key, line });
      return;
    }
    // null is "not set": what --print-config writes for an option without a default.
    if (value === null && o.default === undefined) return;
    const parsed = o.kind.fromFile(value);
    if (parsed === undefined) problems.push(bad(`${where}: ${key}`, o, value));
    else if (checked(`${where}: ${key}`, o, parsed, problems)) {
      const resolve = (name: string) => nodePath.resolve(nodePath.dirname(file), name);
      found.set(key, o.kind.path ? resolve(parsed as string) : (o.kind.resolvePaths?.(parsed, resolve) ?? parsed));
    }
  };
  if (data === null || data === undefined) return found;
  if (!isMapping(data)) {
    problems.push(`${where}: expected a mapping of options (listen, data, …), got ${shown(data)}`);
    return found;
  }
  for (const [name, value] of Object.entries(data)) {
    if (!SECTIONS.has(name)) check(name, value);
    else if (isMapping(value)) for (const [sub, v] of Object.entries(value)) check(`${name}.${sub}`, v);
    else if (value !== null) {
      const keys = OPTIONS.filter((o) => o.path[0] === name).map((o) => o.path[1]);
      problems.push(`${where}: ${name}: expected a mapping of ${keys.join(', ')}, got ${shown(value)}`);
    }
  }
  if (unknown.length > LISTED_UNKNOWN_KEYS) {
    const listed = unknown.slice(0, LISTED_UNKNOWN_KEYS);
    const summary = `${where}: ${unknown.length} unknown keys: ${listed.map((u) => cut(u.key)).join(', ')}, …`;
    problems.splice(listed[0].line, 1, summary);
    for (const u of listed.slice(1).reverse()) problems.splice(u.line, 1);
  }
  return found;
}

/** A key as a message shows it: a long one cut short. */
const cut = (key: string) => (key.length > 60 ? `${key.slice(0, 57)}...` : key);

/** " (did you mean X?)" for a name close to one of `known`, else "". */
export function suggestion(name: string, known: string[]): string {
  // No option's name is this long, and the distance costs its length times theirs.
  if (name.length > 64) return '';
  const norm = (s: string) => s.toLowerCase().replace(/[-_.]/g, '');
  const last = (s: string) => norm(s.split('.').at(-1) ?? s);
  const close = known.find((k) => norm(k) === norm(name) || last(k) === last(name)) ?? known.find((k) => distance(norm(k), norm(name)) <= 2);
  return close === undefined ? '' : ` (did you mean ${close}?)`;
}

/** Levenshtein distance, for suggestions. */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length];
}
