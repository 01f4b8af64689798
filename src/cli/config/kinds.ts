// The kinds of value an option of `regmeta serve` takes: how each is read
// from a flag or an environment variable (text), how from a config file (a
// parsed YAML or JSON value), and how it is written back out for
// --print-config and the docs, in a form the file reader accepts again.

import { endpointsProblem } from '../../notify/index.js';
import { publicOrigin } from '../../server/index.js';
import { isPostgresUrl } from '../../store/index.js';
import { durationMs, formatDuration } from '../units.js';

/** How one kind of value is read and written. */
export interface Kind<T = unknown> {
  /** What a good value looks like, for messages: "expected <expected>, got …". */
  readonly expected: string;
  /** From a flag or an environment variable; undefined when `text` is not one. */
  fromText(text: string): T | undefined;
  /** From a config file; undefined when `value` is not one. */
  fromFile(value: unknown): T | undefined;
  /** For --print-config and the docs: what fromFile reads back as `value`. */
  format(value: T): string | number | boolean | (string | Record<string, unknown>)[];
  /** Whether values are file names (resolved against the config file's directory there). */
  readonly path?: boolean;
  /** The value read from the config file with the file names inside it resolved by `resolve` (against the file's directory). */
  resolvePaths?(value: T, resolve: (name: string) => string): T;
  /** Whether a flag takes it without a value (a boolean: --x and --no-x). */
  readonly flagOnly?: boolean;
  /** Whether the flag may be repeated, each adding one value. */
  readonly repeatable?: boolean;
  /**
   * Why a value that fromText or fromFile refused is not one, when more can
   * be said than `expected` (one line, no secret in it); undefined: `expected` says it.
   */
  why?(raw: unknown): string | undefined;
  /** What is wrong with a value read, beyond its form (one line, no secret in it); undefined when nothing. */
  check?(value: T): string | undefined;
}

/** Free text, not empty. */
const text: Kind<string> = {
  expected: 'a non-empty string',
  fromText: (t) => (t === '' ? undefined : t),
  fromFile: (v) => (typeof v === 'string' && v !== '' ? v : undefined),
  format: (v) => v,
};

/** A file or directory name. */
export const path: Kind<string> = { ...text, expected: 'a file name', path: true };

/**
 * What --print-config prints in place of a secret. Read back, it is refused
 * rather than used: a server started from printed output would otherwise
 * sign with it, or send it as a password.
 */
export const MASK = '********';

/** The refusal of a mask read back as a secret: `where` names where it stands. */
function maskRefused(where: string): string {
  return `${where}: "${MASK}" is the mask --print-config prints, not a secret: write the secret itself`;
}

/** A URL's password, when it is the mask. */
const maskedPasswordIn = (url: string) => URL.canParse(url) && new URL(url).password === MASK;

/** A PostgreSQL URL (postgres:// or postgresql://), written out with its password masked. */
export const databaseUrl: Kind<string> = {
  expected: 'a postgres:// or postgresql:// URL',
  fromText: (t) => (isPostgresUrl(t) ? t : undefined),
  fromFile: (v) => (isPostgresUrl(v) ? v : undefined),
  format: (v) => {
    const url = new URL(v);
    if (url.password !== '') url.password = MASK;
    return url.toString();
  },
  check: (v) => (maskedPasswordIn(v) ? maskRefused('the password') : undefined),
};

/** An http or https URL of a host alone (scheme://host[:port]), written back as its origin. */
export const publicUrl: Kind<string> = {
  expected: 'an http or https URL of a host alone (like https://registry.example.com)',
  fromText: (t) => publicOrigin(t),
  fromFile: (v) => (typeof v === 'string' ? publicOrigin(v) : undefined),
  format: (v) => v,
};

/** `host:port`, `[v6]:port` or `:port` (all addresses' wildcard is `0.0.0.0:port`). */
export const listen: Kind<string> = {
  expected: 'host:port (like 127.0.0.1:5000, 0.0.0.0:5000 or [::1]:5000)',
  fromText: (t) => (splitListen(t) === undefined ? undefined : t),
  fromFile: (v) => (typeof v === 'string' && splitListen(v) !== undefined ? v : undefined),
  format: (v) => v,
};

/** The host (default 127.0.0.1) and port of a valid `listen` value; undefined for an invalid one. */
export function splitListen(value: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  if (!match || Number(match[3]) > 65535) return undefined;
  return { host: match[1] ?? (match[2] || '127.0.0.1'), port: Number(match[3]) };
}

/** Names: repeated flags, a comma-separated environment variable, a list in the file. */
export const list: Kind<string[]> = {
  expected: 'a list of names',
  repeatable: true,
  fromText: (t) => t.split(',').map((s) => s.trim()).filter((s) => s !== ''),
  fromFile: (v) => (Array.isArray(v) && v.every((s) => typeof s === 'string' && s !== '') ? [...(v as string[])] : undefined),
  format: (v) => v,
};

/** One of `values`, as written. */
export function choice<T extends string>(values: readonly T[]): Kind<T> {
  const pick = (v: unknown) => (values as readonly unknown[]).includes(v) ? (v as T) : undefined;
  return { expected: `one of ${values.join(', ')}`, fromText: pick, fromFile: pick, format: (v) => v };
}

/** true or false: --x and --no-x, `true`/`false`/`1`/`0` in the environment. */
export const boolean: Kind<boolean> = {
  expected: 'true or false',
  flagOnly: true,
  fromText: (t) => ({ true: true, '1': true, false: false, '0': false })[t.toLowerCase()],
  fromFile: (v) => (typeof v === 'boolean' ? v : undefined),
  format: (v) => v,
};

/** A whole number in [min, max]. */
export function count(min = 0, max = 1_000_000_000): Kind<number> {
  const within = (n: number) => (Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined);
  return {
    expected: max === 1_000_000_000 ? `a whole number ≥ ${min}` : `a whole number from ${min} to ${max}`,
    fromText: (t) => (/^\d{1,10}$/.test(t) ? within(Number(t)) : undefined),
    fromFile: (v) => (typeof v === 'number' ? within(v) : undefined),
    format: (v) => v,
  };
}

/** Milliseconds of at least `minMs`: a number of seconds, or a string like 60s, 5m, 1h30m. */
export function duration(minMs = 0): Kind<number> {
  const atLeast = (ms: number | undefined) => (ms !== undefined && Number.isSafeInteger(ms) && ms >= minMs ? ms : undefined);
  const seconds = (n: number) => (Number.isFinite(n) && n >= 0 ? Math.round(n * 1000) : undefined);
  return {
    expected: `a duration (seconds, or like 60s, 5m, 1h30m)${minMs > 0 ? ` of at least ${formatDuration(minMs)}` : ''}`,
    fromText: (t) => atLeast(/^\d+(\.\d+)?$/.test(t) ? seconds(Number(t)) : durationMs(t)),
    fromFile: (v) => atLeast(typeof v === 'number' ? seconds(v) : typeof v === 'string' ? durationMs(v) : undefined),
    format: (v) => formatDuration(v),
  };
}

const SIZE_UNITS: Record<string, number> = { '': 1, B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };

/** Bytes, at least `min`: a number, or a string like 512MiB or 64GiB (binary units only: no guessing about 1000 or 1024). */
export function size(min = 0): Kind<number> {
  const atLeast = (n: number | undefined) => (n !== undefined && Number.isSafeInteger(n) && n >= min ? n : undefined);
  const parse = (t: string) => {
    const match = /^(\d+)\s*(B|KiB|MiB|GiB|TiB)?$/.exec(t);
    return match ? Number(match[1]) * SIZE_UNITS[match[2] ?? ''] : undefined;
  };
  return {
    expected: `a size (bytes, or like 512MiB, 64GiB)${min > 0 ? ` of at least ${min} B` : ''}`,
    fromText: (t) => atLeast(parse(t)),
    fromFile: (v) => atLeast(typeof v === 'number' ? v : typeof v === 'string' ? parse(v) : undefined),
    format: (v) => {
      for (const unit of ['TiB', 'GiB', 'MiB', 'KiB']) if (v > 0 && v % SIZE_UNITS[unit] === 0) return `${v / SIZE_UNITS[unit]}${unit}`;
      return v;
    },
  };
}

/** A webhook endpoint as `serve` configures it (see src/notify's NotifyEndpoint). */
export interface NotifyTarget {
  url: string;
  name?: string;
  headers?: Record<string, string>;
  secret?: string;
  /** Milliseconds. */
  timeout?: number;
}

const isHttpUrl = (t: string) => URL.canParse(t) && ['http:', 'https:'].includes(new URL(t).protocol);
const NOTIFY_KEYS = new Set(['url', 'name', 'headers', 'secret', 'timeout']);

/** A URL as --print-config writes it: the password masked (it is sent as Basic authorization). */
function maskedPassword(url: string): string {
  if (!URL.canParse(url)) return url;
  const parsed = new URL(url);
  if (parsed.password === '') return url;
  parsed.password = MASK;
  return parsed.href;
}

/** One entry of the file's `notify` list: a URL, or {url, name, headers, secret, timeout}; undefined when not one. */
function notifyEntry(v: unknown): NotifyTarget | undefined {
  if (typeof v === 'string') return isHttpUrl(v) ? { url: v } : undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const entry = v as Record<string, unknown>;
  if (!Object.keys(entry).every((k) => NOTIFY_KEYS.has(k)) || typeof entry.url !== 'string' || !isHttpUrl(entry.url)) return undefined;
  const target: NotifyTarget = { url: entry.url };
  if (entry.name !== undefined) {
    if (typeof entry.name !== 'string') return undefined;
    target.name = entry.name;
  }
  const headers = entry.headers;
  if (headers !== undefined) {
    if (typeof headers !== 'object' || headers === null || !Object.values(headers).every((h) => typeof h === 'string')) return undefined;
    target.headers = { ...(headers as Record<string, string>) };
  }
  if (entry.secret !== undefined) {
    if (typeof entry.secret !== 'string' || entry.secret === '') return undefined;
    target.secret = entry.secret;
  }
  if (entry.timeout !== undefined) {
    const ms = duration(1).fromFile(entry.timeout);
    if (ms === undefined) return undefined;
    target.timeout = ms;
  }
  return target;
}

/** The endpoints whose URL password, secret or header values are the mask, in one line; undefined when none. */
function maskedNotifySecrets(endpoints: NotifyTarget[]): string | undefined {
  const found = endpoints.flatMap((e, i) => [
    ...(maskedPasswordIn(e.url) ? [`endpoint ${i + 1}'s URL password`] : []),
    ...(e.secret === MASK ? [`endpoint ${i + 1}'s secret`] : []),
    ...Object.entries(e.headers ?? {})
      .filter(([, value]) => value === MASK)
      .map(([name]) => `endpoint ${i + 1}'s headers.${name}`),
  ]);
  return found.length === 0 ? undefined : maskRefused(found.join(', '));
}

/**
 * Webhook endpoints: http(s) URLs as repeated flags or a comma-separated
 * variable; in the file, a list of URLs and {url, name, headers, secret,
 * timeout} mappings. Written out with the secret, the header values and a
 * URL's password masked, as they are credentials.
 */
export const notify: Kind<NotifyTarget[]> = {
  expected: 'http or https URLs (in the file, a list of URLs or {url, name, headers, secret, timeout} mappings)',
  repeatable: true,
  fromText: (t) => {
    const urls = t.split(',').map((s) => s.trim()).filter((s) => s !== '');
    return urls.length > 0 && urls.every(isHttpUrl) ? urls.map((url) => ({ url })) : undefined;
  },
  fromFile: (v) => {
    if (!Array.isArray(v)) return undefined;
    const entries = v.map(notifyEntry);
    return entries.every((e) => e !== undefined) ? (entries as NotifyTarget[]) : undefined;
  },
  check: (v) => maskedNotifySecrets(v) ?? endpointsProblem(v),
  format: (v) =>
    v.map((e) => {
      const url = maskedPassword(e.url);
      if (e.name === undefined && e.headers === undefined && e.secret === undefined && e.timeout === undefined) return url;
      const out: Record<string, unknown> = { url };
      if (e.name !== undefined) out.name = e.name;
      if (e.headers !== undefined) out.headers = Object.fromEntries(Object.keys(e.headers).map((k) => [k, MASK]));
      if (e.secret !== undefined) out.secret = MASK;
      if (e.timeout !== undefined) out.timeout = formatDuration(e.timeout);
      return out;
    }),
};
