// The options from their four sources, in one precedence: flag >
// environment > config file > default, for `regmeta serve` (every option)
// and for the other subcommands (where the registry is: location.ts).
// Everything is checked before anything starts, and every problem found is
// reported, one line each, naming the flag, the variable or the file's key.

import nodePath from 'node:path';
import { parse, type Command } from '../args.js';
import { CliError, Exit } from '../exit.js';
import { bad, checked, fromFile, optionOf, readConfigFile, suggestion } from './file.js';
import { META_OPTIONS, OPTIONS, type LogLevel, type OptionInfo } from './options.js';
import type { S3Options } from '../../blobstore/index.js';
import type { NotifyTarget } from './kinds.js';
import type { ImmutableRule, RetentionRule } from '../../store/index.js';
import { defaultProblem, type MirrorEntry } from './mirrors.js';
import type { Quota } from '../../store/index.js';

/** Where a value came from. */
type Source = 'flag' | 'environment' | 'file' | 'default';

/** The effective configuration, shaped as the config file is (durations in ms, sizes in bytes, paths absolute). */
export interface ServeConfig {
  listen: string;
  /** scheme://host[:port]; unset: webhooks name the listen address, Location headers are paths. */
  publicUrl?: string;
  data: string;
  /** A postgres:// URL; unset: SQLite in <data>/metadata.db. */
  database?: string;
  storage: {
    /** The bucket holding the blobs; unset: <data>/blobs and <data>/uploads. */
    s3?: S3Options;
    /** Blob GETs answered with a 307 to a pre-signed URL, where the storage has them. */
    redirect: boolean;
  };
  htpasswd?: string;
  admins: string[];
  /** Tags no one but an admin moves or deletes (the store's policy). */
  immutable: ImmutableRule[];
  access?: string;
  readOnly: boolean;
  deletes: boolean;
  /** Which tags of which repositories are kept (regmeta gc --retention). */
  retention: RetentionRule[];
  tls?: { cert: string; key: string };
  notify: NotifyTarget[];
  /** Upstream registries served read-only under their prefixes. */
  mirrors: MirrorEntry[];
  /** The prefix of the mirror that answers pulls of names outside every prefix that are not here. */
  mirrorDefault?: string;
  /** The most bytes each namespace may hold (the store's policy). */
  quotas: Quota[];
  logLevel: LogLevel;
  /** Bytes. */
  minFreeDisk: number;
  metrics: boolean;
  metricsListen?: string;
  /** Milliseconds. */
  metricsInterval: number;
  /** Pull statistics; flushInterval in milliseconds. */
  pulls: { stats: boolean; flushInterval: number; events: boolean };
  /** Milliseconds events are kept; unset: forever. */
  events?: { keep?: number };
  /** Milliseconds between maintenance rounds; 0: none. */
  maintenance: { interval: number };
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

/** One flag as parseArgs reads it. */
type Flag = { type: 'string' | 'boolean'; multiple?: boolean };

/** parseArgs' table of `options`: each one's flag (a boolean's --no- form too). */
function flagsOf(options: readonly OptionInfo[]): Record<string, Flag> {
  return Object.fromEntries(
    options.flatMap((o): [string, Flag][] =>
      o.kind.flagOnly
        ? [
            [o.flagName, { type: 'boolean' }],
            [negated(o.flagName), { type: 'boolean' }],
          ]
        : [[o.flagName, { type: 'string', multiple: o.kind.repeatable === true }]],
    ),
  );
}

/** serve's parseArgs table: every option's flag, plus --config and --print-config. */
export const FLAGS: Record<string, Flag> = {
  ...flagsOf(OPTIONS),
  [META_OPTIONS.config.flag]: { type: 'string' },
  [META_OPTIONS.printConfig.flag]: { type: 'boolean' },
};

/** A boolean's other flag: --read-only and --no-read-only, --delete and --no-delete. */
export function negated(flag: string): string {
  return flag.startsWith('no-') ? flag.slice(3) : `no-${flag}`;
}

/** Each option's value from the flags; problems are pushed to `problems`. */
function fromFlags(values: Record<string, unknown>, options: readonly OptionInfo[], problems: string[]): Map<string, unknown> {
  const found = new Map<string, unknown>();
  for (const o of options) {
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
function fromEnvironment(env: NodeJS.ProcessEnv, options: readonly OptionInfo[], problems: string[]): Map<string, unknown> {
  const found = new Map<string, unknown>();
  for (const o of options) {
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

/** The values of some options, each from the first source that gives it. */
interface Resolved {
  /** By config key; paths absolute. */
  values: Map<string, unknown>;
  sources: Record<string, Source>;
  /** The config file read, as it was named. */
  file?: string;
}

/**
 * The values of `options` from the flags parsed (`given`), `env` and the
 * config file that --config or REGMETA_CONFIG names, whose every key is
 * checked. Paths given by flags and variables are resolved against the
 * working directory. Problems are pushed to `problems`, one line each.
 * @throws CliError IO when the config file cannot be read; USAGE when it does not parse.
 */
export function resolveOptions(given: Record<string, unknown>, env: NodeJS.ProcessEnv, options: readonly OptionInfo[], problems: string[]): Resolved {
  const flags = fromFlags(given, options, problems);
  const environment = fromEnvironment(env, options, problems);
  const file = (given[META_OPTIONS.config.flag] as string | undefined) ?? (env[META_OPTIONS.config.env] || undefined);
  const inFile = file === undefined ? new Map<string, unknown>() : fromFile(file, readConfigFile(file), problems);
  const values = new Map<string, unknown>();
  const sources: Record<string, Source> = {};
  for (const o of options) {
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
  return { values, sources, file };
}

/**
 * Throws the problems found, if any, as one error of one line each.
 * @throws CliError USAGE.
 */
export function refuseProblems(problems: string[], command: string): void {
  if (problems.length === 0) return;
  // The file's problems name their key, which says it all; a flag's may send the reader to --help.
  const hint = problems.every((p) => p.startsWith('config ')) ? undefined : `see 'regmeta ${command} --help'`;
  throw new CliError(Exit.USAGE, problems[0], hint, problems.slice(1));
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
  const { values, sources, file } = resolveOptions(given, env, OPTIONS, problems);
  const cert = values.get('tls.cert');
  const key = values.get('tls.key');
  if ((cert === undefined) !== (key === undefined)) {
    const [missing, given] = cert === undefined ? ['tls.cert', 'tls.key'] : ['tls.key', 'tls.cert'];
    const o = optionOf(missing)!;
    problems.push(`${missing}: needed with ${given} (--${o.flagName}, ${o.env} or ${missing} in the config file)`);
  }
  const mirrorDefault = defaultProblem((values.get('mirrors') as MirrorEntry[] | undefined) ?? [], values.get('mirrorDefault') as string | undefined);
  if (mirrorDefault !== undefined) problems.push(`mirrorDefault: ${mirrorDefault}`);
  refuseProblems(problems, command.name);
  return { config: assemble(values), sources, file, printConfig: given[META_OPTIONS.printConfig.flag] === true, warnings: strayVariables(env) };
}
