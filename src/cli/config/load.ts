// The configuration of `regmeta serve` from its four sources, in one
// precedence: flag > environment > config file > default. Everything is
// checked before anything starts, and every problem found is reported, one
// line each, naming the flag, the variable or the file's key.

import { readFileSync } from 'node:fs';
import nodePath from 'node:path';
import { FileFormatError, parseFileText } from '../../server/index.js';
import { CliError, Exit, parse, type Command } from '../common.js';
import { META_OPTIONS, OPTIONS, SECTIONS, type LogLevel, type OptionInfo } from './options.js';
import { MASK, type NotifyTarget } from './kinds.js';

/** Where a value came from. */
export type Source = 'flag' | 'environment' | 'file' | 'default';

/** The effective configuration, shaped as the config file is (durations in ms, sizes in bytes, paths absolute). */
export interface ServeConfig {
  listen: string;
  /** scheme://host[:port]; unset: webhooks name the listen address, Location headers are paths. */
  publicUrl?: string;
  data: string;
  /** A postgres:// URL; unset: SQLite in <data>/metadata.db. */
  database?: string;
  htpasswd?: string;
  admins: string[];
  access?: string;
  readOnly: boolean;
  deletes: boolean;
  tls?: { cert: string; key: string };
  notify: NotifyTarget[];
  logLevel: LogLevel;
  /** Bytes. */
  minFreeDisk: number;
  metrics: boolean;
  metricsListen?: string;
  /** Milliseconds. */
  metricsInterval: number;
  limits: {
    idleTimeout: number;
    headersTimeout: number;
    minBodyRate: number;
    bodyRateGrace: number;
    maxConnectionsPerAddress: number;
    maxConnections: number;
    maxUploadsPerAddress: number;
    uploadTtl: number;
    maxBlobSize: number;
    maxFailedLoginsPerAddress: number;
    failedLoginWindow: number;
    failedLoginAddresses: number;
    passwordCheckThreads: number;
    passwordCheckQueue: number;
  };
}

/** What parseServeArgs found. */
export interface LoadedConfig {
  config: ServeConfig;
  /** Where each option's value came from, by config key. */
  sources: Record<string, Source>;
  /** The config file read, as it was named. */
  file?: string;
  /** --print-config was given. */
  printConfig: boolean;
  /** Not fatal, one line each: REGMETA_* variables that name no option. */
  warnings: string[];
}

const BY_KEY = new Map(OPTIONS.map((o) => [o.key, o]));

/** parseArgs' table: each option's flag (a boolean's --no- form too), plus --config and --print-config. */
export const FLAGS: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = Object.fromEntries([
  ...OPTIONS.flatMap((o) =>
    o.kind.flagOnly
      ? [
          [o.flagName, { type: 'boolean' }],
          [negated(o.flagName), { type: 'boolean' }],
        ]
      : [[o.flagName, { type: 'string', multiple: o.kind.repeatable === true }]],
  ),
  [META_OPTIONS.config.flag, { type: 'string' }],
  [META_OPTIONS.printConfig.flag, { type: 'boolean' }],
]);

/** A boolean's other flag: --read-only and --no-read-only, --delete and --no-delete. */
export function negated(flag: string): string {
  return flag.startsWith('no-') ? flag.slice(3) : `no-${flag}`;
}

/**
 * A value as a message quotes it, secrets masked: a URL's credentials, path
 * and query (a webhook's may be its secret), a `secret`, header values.
 */
function shown(value: unknown): string {
  const text = (JSON.stringify(value, maskedSecrets) ?? String(value)).replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s",]*/gi, maskedUrl);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** JSON.stringify's replacer: a `secret` and the values of `headers` masked. */
function maskedSecrets(key: string, value: unknown): unknown {
  if (key === 'secret') return MASK;
  if (key === 'headers' && isMapping(value)) return Object.fromEntries(Object.keys(value).map((k) => [k, MASK]));
  return value;
}

/** scheme://host as it is; credentials, path and query masked. */
function maskedUrl(url: string): string {
  const [, scheme, user, host, rest] = /^([^:]+:\/\/)([^/?#@]*@)?([^/?#]*)(.*)$/.exec(url)!;
  return `${scheme}${user === undefined ? '' : `${MASK}@`}${host}${rest === '' || rest === '/' ? rest : '/…'}`;
}

/** Each value's problem beyond its form, as the kind says: one line naming where. */
function checked(name: string, o: OptionInfo, value: unknown, problems: string[]): boolean {
  const problem = o.kind.check?.(value);
  if (problem !== undefined) problems.push(`${name}: ${problem}`);
  return problem === undefined;
}

function bad(name: string, option: OptionInfo, raw: unknown): string {
  return `${name}: expected ${option.kind.expected}, got ${shown(raw)}`;
}

/** Each option's value from the flags; problems are pushed to `problems`. */
function fromFlags(values: Record<string, unknown>, problems: string[]): Map<string, unknown> {
  const found = new Map<string, unknown>();
  for (const o of OPTIONS) {
    const name = `--${o.flagName}`;
    if (o.kind.flagOnly) {
      const on = values[o.flagName] === true;
      const off = values[negated(o.flagName)] === true;
      if (on && off) problems.push(`${name} and --${negated(o.flagName)} contradict each other`);
      else if (on || off) found.set(o.key, on);
      continue;
    }
    const given = values[o.flagName] as string | string[] | undefined;
    if (given === undefined) continue;
    const texts = Array.isArray(given) ? given : [given];
    const parsed = texts.map((t) => o.kind.fromText(t));
    // Each bad value of a repeated flag is its own line: all of them get fixed in one go.
    const wrong = texts.filter((_, i) => parsed[i] === undefined);
    for (const text of wrong) problems.push(bad(name, o, text));
    const value = o.kind.repeatable ? parsed.flat() : parsed[0];
    if (wrong.length === 0 && checked(name, o, value, problems)) found.set(o.key, value);
  }
  return found;
}

/** Each option's value from the environment (an empty variable counts as unset). */
function fromEnvironment(env: NodeJS.ProcessEnv, problems: string[]): Map<string, unknown> {
  const found = new Map<string, unknown>();
  for (const o of OPTIONS) {
    const raw = env[o.env];
    if (raw === undefined || raw === '') continue;
    const value = o.kind.fromText(raw);
    if (value === undefined) problems.push(bad(o.env, o, raw));
    else if (checked(o.env, o, value, problems)) found.set(o.key, value);
  }
  return found;
}

/** REGMETA_* variables that no option reads: most likely misspelt. */
function strayVariables(env: NodeJS.ProcessEnv): string[] {
  const known = new Set([...OPTIONS.map((o) => o.env), META_OPTIONS.config.env]);
  return Object.keys(env)
    .filter((name) => name.startsWith('REGMETA_') && !known.has(name))
    .map((name) => `environment: ${name} is no option of regmeta serve; ignored${suggestion(name, OPTIONS.map((o) => o.env))}`);
}

/**
 * The file's text parsed: JSON for *.json, YAML (1.2, of which JSON is a
 * subset) otherwise, within FILE_FORMAT_LIMITS.
 * @throws CliError IO when the file cannot be read; USAGE when it does not
 * parse or passes a limit (nesting, aliases).
 */
function readConfigFile(file: string): unknown {
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

/** Each option's value from the parsed file, relative paths resolved against the file's directory. */
function fromFile(file: string, data: unknown, problems: string[]): Map<string, unknown> {
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
    else if (checked(`${where}: ${key}`, o, parsed, problems)) found.set(key, o.kind.path ? nodePath.resolve(nodePath.dirname(file), parsed as string) : parsed);
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

/** The nested configuration from flat key → value. */
function assemble(values: Map<string, unknown>): ServeConfig {
  const config: Record<string, any> = { limits: {} };
  for (const [key, value] of values) {
    if (value === undefined) continue;
    const [head, tail] = key.split('.');
    if (tail === undefined) config[head] = value;
    else (config[head] ??= {})[tail] = value;
  }
  return config as ServeConfig;
}

/**
 * The configuration of `regmeta serve` from `argv`, `env` and the config file
 * that --config or REGMETA_CONFIG names; undefined after printing --help.
 * Paths given by flags and variables are resolved against the working directory.
 * @throws CliError USAGE listing every problem, one line each (an unknown
 * option or key, a wrong type, a bad value, an incomplete tls pair); CliError IO
 * when the config file cannot be read.
 */
export function loadServeConfig(argv: string[], env: NodeJS.ProcessEnv, command: Pick<Command, 'name' | 'usage'>): LoadedConfig | undefined {
  const args = parse(argv, command, FLAGS, { min: 0, max: 0 });
  if (args === undefined) return undefined;
  const given = args.values as Record<string, unknown>;
  const problems: string[] = [];
  const flags = fromFlags(given, problems);
  const environment = fromEnvironment(env, problems);
  const file = (given[META_OPTIONS.config.flag] as string | undefined) ?? (env[META_OPTIONS.config.env] || undefined);
  const inFile = file === undefined ? new Map<string, unknown>() : fromFile(file, readConfigFile(file), problems);
  const values = new Map<string, unknown>();
  const sources: Record<string, Source> = {};
  for (const o of OPTIONS) {
    const [source, value]: [Source, unknown] = flags.has(o.key)
      ? ['flag', flags.get(o.key)]
      : environment.has(o.key)
        ? ['environment', environment.get(o.key)]
        : inFile.has(o.key)
          ? ['file', inFile.get(o.key)]
          : ['default', o.default];
    sources[o.key] = source;
    values.set(o.key, o.kind.path && typeof value === 'string' ? nodePath.resolve(value) : value);
  }
  const cert = values.get('tls.cert');
  const key = values.get('tls.key');
  if ((cert === undefined) !== (key === undefined)) {
    const [missing, given] = cert === undefined ? ['tls.cert', 'tls.key'] : ['tls.key', 'tls.cert'];
    const o = BY_KEY.get(missing)!;
    problems.push(`${missing}: needed with ${given} (--${o.flagName}, ${o.env} or ${missing} in the config file)`);
  }
  if (problems.length > 0) {
    // The file's problems name their key, which says it all; a flag's may send the reader to --help.
    const hint = problems.every((p) => p.startsWith('config ')) ? undefined : `see 'regmeta ${command.name} --help'`;
    throw new CliError(Exit.USAGE, problems[0], hint, problems.slice(1));
  }
  return { config: assemble(values), sources, file, printConfig: given[META_OPTIONS.printConfig.flag] === true, warnings: strayVariables(env) };
}
