// The kind of the `mirrors` option: upstream registries served read-only
// under a prefix. A flag or the environment gives PREFIX=URL (anonymous
// upstreams only: a command line is no place for a password); the config
// file a list of PREFIX=URL strings and {prefix, url, username, password,
// passwordFile, ttl, maxSize, maxIdle, concurrency, timeout} mappings.
// Checked by the server's own resolveMirrors, every problem one clause that
// never echoes a value (any of them may be a credential), and written out
// with the password masked.

import { readFileSync } from 'node:fs';
import { resolveMirrors, type MirrorOptions, type ResolvedMirror } from '../../server/index.js';
import { formatDuration } from '../units.js';
import { CliError, Exit } from '../exit.js';
import { count, duration, MASK, size, type Kind } from './kinds.js';

/** A mirror as configured: the server's options, the password possibly in a file read when serve starts. */
export interface MirrorEntry extends MirrorOptions {
  /** A file holding the password (a trailing newline is not part of it); not with `password`. */
  passwordFile?: string;
}

const TEXT_KEYS = ['prefix', 'url', 'username', 'password', 'passwordFile'] as const;
/** The numeric keys, each read as the other options of its unit are. */
const NUMBER_KEYS = { ttl: duration(), maxSize: size(), maxIdle: duration(), concurrency: count(1), timeout: duration(1) } as const;
const KEYS = new Set<string>([...TEXT_KEYS, ...Object.keys(NUMBER_KEYS)]);

/** A name as a message quotes it: short, and only the characters a key has. */
const quoted = (name: string) => JSON.stringify(name.length > 32 ? `${name.slice(0, 29)}...` : name.replace(/[^\w.-]/g, '?'));

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** An entry checked for its form: the entry, or its problems (clauses without values). */
type Parsed = { entry: MirrorEntry; problems?: undefined } | { entry?: undefined; problems: string[] };

/** `PREFIX=URL`, its parts not yet checked (resolveMirrors does that). */
function fromPair(text: string): Parsed {
  const at = text.indexOf('=');
  if (at <= 0 || at === text.length - 1) return { problems: ['expected PREFIX=URL, like docker.io=https://registry-1.docker.io'] };
  return { entry: { prefix: text.slice(0, at).trim(), url: text.slice(at + 1).trim() } };
}

/** One entry of the file's list: PREFIX=URL or a mapping. */
function fromEntry(v: unknown): Parsed {
  if (typeof v === 'string') return fromPair(v);
  if (!isMapping(v)) return { problems: ['expected PREFIX=URL or a mapping of prefix, url, …'] };
  const problems: string[] = [];
  for (const key of Object.keys(v)) if (!KEYS.has(key)) problems.push(`unknown key ${quoted(key)} (known: ${[...KEYS].join(', ')})`);
  const entry: Record<string, unknown> = {};
  for (const key of TEXT_KEYS) {
    const value = v[key];
    if (value === undefined) {
      if (key === 'prefix' || key === 'url') problems.push(`${key} is missing`);
    } else if (typeof value !== 'string' || value === '') problems.push(`${key} is not a non-empty string`);
    else entry[key] = value;
  }
  for (const [key, kind] of Object.entries(NUMBER_KEYS)) {
    if (v[key] === undefined) continue;
    const value = kind.fromFile(v[key]);
    if (value === undefined) problems.push(`${key}: expected ${kind.expected}`);
    else entry[key] = value;
  }
  if (entry.password !== undefined && entry.passwordFile !== undefined) problems.push('password and passwordFile: give one or the other');
  return problems.length > 0 ? { problems } : { entry: entry as unknown as MirrorEntry };
}

/** Each entry's problems, "entry N: …", or the entries. */
function fromList(parsed: Parsed[]): { entries?: MirrorEntry[]; problems: string[] } {
  const problems = parsed.flatMap((p, i) => (p.problems ?? []).map((problem) => (parsed.length === 1 ? problem : `entry ${i + 1}: ${problem}`)));
  return problems.length > 0 ? { problems } : { entries: parsed.map((p) => p.entry!), problems };
}

const fromText = (t: string) =>
  fromList(
    t
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .map(fromPair),
  );

const fromFileValue = (v: unknown) => (Array.isArray(v) ? fromList(v.map(fromEntry)) : typeof v === 'string' ? fromText(v) : { problems: ['expected a list of PREFIX=URL strings or {prefix, url, …} mappings'] });

/**
 * resolveMirrors' message about entry `index` (undefined: about them all)
 * as "entry N's url: …" where there are several, "url: …" where there is
 * one, and without a leading "mirrors" (the option's name stands before it).
 */
function restated(message: string, index: number | undefined, many: boolean): string {
  const match = /^mirrors(?:\[\d+\])?(?:\.(\w+))?: (.*)$/s.exec(message);
  if (match === null) return message;
  const [, field, rest] = match;
  const entry = many && index !== undefined ? `entry ${index + 1}` : '';
  const who = field === undefined ? entry : entry === '' ? field : `${entry}'s ${field}`;
  return who === '' ? rest : `${who}: ${rest}`;
}

/**
 * What is wrong with entries of the right form, one clause each: what
 * resolveMirrors refuses, and a password that is the mask --print-config prints.
 */
function problemsOf(entries: readonly MirrorEntry[]): string | undefined {
  const problems: string[] = [];
  entries.forEach((entry, i) => {
    if (entry.password === MASK) problems.push(`${entries.length === 1 ? '' : `entry ${i + 1}'s `}password: "${MASK}" is the mask --print-config prints, not a secret: write the secret itself`);
    // One at a time: every bad entry is named, not just the first. A passwordFile stands for the password.
    const checked = { ...entry, password: entry.password ?? (entry.passwordFile === undefined ? undefined : '') };
    const problem = attempt(() => resolveMirrors([checked]));
    if (problem !== undefined) problems.push(restated(problem, i, entries.length > 1));
  });
  if (problems.length === 0) {
    const problem = attempt(() => resolveMirrors(entries));
    if (problem !== undefined) problems.push(restated(problem, undefined, entries.length > 1));
  }
  return problems.length === 0 ? undefined : problems.join('; ');
}

/** The TypeError's message of `f`, or undefined when it throws none. */
function attempt(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (error) {
    if (error instanceof TypeError) return error.message;
    throw error;
  }
}

/** An entry as --print-config writes it: PREFIX=URL alone when that is all, else a mapping, the password masked. */
function formatEntry(entry: MirrorEntry): string | Record<string, unknown> {
  const keys = Object.keys(entry).filter((k) => entry[k as keyof MirrorEntry] !== undefined);
  if (keys.every((k) => k === 'prefix' || k === 'url')) return `${entry.prefix}=${entry.url}`;
  const out: Record<string, unknown> = {};
  for (const key of TEXT_KEYS) if (entry[key] !== undefined) out[key] = key === 'password' ? MASK : entry[key];
  for (const [key, kind] of Object.entries(NUMBER_KEYS)) {
    const value = entry[key as keyof typeof NUMBER_KEYS];
    if (value !== undefined) out[key] = kind.format(value);
  }
  return out;
}

/**
 * Upstream registries by prefix: PREFIX=URL as repeated flags or a
 * comma-separated variable; in the file, a list of PREFIX=URL and
 * {prefix, url, username, password, passwordFile, ttl, maxSize, maxIdle,
 * concurrency, timeout} mappings.
 */
export const mirrors: Kind<MirrorEntry[]> = {
  expected: 'PREFIX=URL (in the file, a list of PREFIX=URL or {prefix, url, username, password, passwordFile, ttl, maxSize, maxIdle, concurrency, timeout} mappings)',
  repeatable: true,
  fromText: (t) => fromText(t).entries,
  fromFile: (v) => fromFileValue(v).entries,
  why: (raw) => {
    const { problems } = typeof raw === 'string' ? fromText(raw) : fromFileValue(raw);
    return problems.length === 0 ? undefined : problems.join('; ');
  },
  check: problemsOf,
  resolvePaths: (entries, resolve) => entries.map((e) => (e.passwordFile === undefined ? e : { ...e, passwordFile: resolve(e.passwordFile) })),
  format: (entries) => entries.map(formatEntry),
};

/** A mirror's prefix, as `mirrorDefault` names one (whether a mirror has it is the configuration's to check: defaultProblem). */
export const mirrorPrefix: Kind<string> = {
  expected: 'the prefix of a mirror, like docker.io',
  fromText: (t) => (t.trim() === '' ? undefined : t.trim()),
  fromFile: (v) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined),
  format: (v) => v,
};

/** What is wrong with `mirrorDefault` (`prefix`) when it names none of the mirrors, else undefined. */
export function defaultProblem(entries: readonly MirrorEntry[], prefix: string | undefined): string | undefined {
  if (prefix === undefined || entries.some((e) => e.prefix === prefix)) return undefined;
  return `${prefix} is not the prefix of a mirror (${entries.length === 0 ? 'none is configured: --mirror PREFIX=URL, or mirrors in the config file' : `they are ${entries.map((e) => e.prefix).join(', ')}`})`;
}

/**
 * The mirrors as the server takes them, each passwordFile read (as serve starts).
 * @throws CliError USAGE naming the entry whose passwordFile cannot be read.
 */
export function mirrorOptions(entries: readonly MirrorEntry[]): MirrorOptions[] {
  return entries.map(({ passwordFile, ...entry }) => {
    if (passwordFile === undefined) return entry;
    let password: string;
    try {
      password = readFileSync(passwordFile, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new CliError(Exit.USAGE, `mirrors: ${entry.prefix}: cannot read passwordFile ${passwordFile}: ${code}`, 'check the file and its permissions: serve reads it as it starts');
    }
    if (password === '') throw new CliError(Exit.USAGE, `mirrors: ${entry.prefix}: passwordFile ${passwordFile} is empty`);
    return { ...entry, password };
  });
}

/**
 * The mirrors checked and with their defaults, as the server would run
 * them, for commands other than serve (gc's maxSize, maxIdle); passwords
 * are not read (the upstream is serve's alone to reach).
 * @throws TypeError from resolveMirrors (not after the kind's check passed).
 */
export function resolvedMirrors(entries: readonly MirrorEntry[]): ResolvedMirror[] {
  return resolveMirrors(entries.map(({ passwordFile: _, password: __, ...entry }) => entry));
}
