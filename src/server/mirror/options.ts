// What a mirror is configured with, its defaults, and the checks every
// entry passes before the registry starts: one source for the library and
// the CLI (which reads the same shape from its config file and --mirror).

import { checkRepository, StoreError } from '../../store/index.js';

/**
 * An upstream registry served read-only under a namespace of this one: a
 * pull of `PREFIX/library/alpine` fetches `library/alpine` from `url`, keeps
 * it, and serves it from then on.
 */
export interface MirrorOptions {
  /** The namespace the upstream's repositories appear under, a repository name itself: `docker.io`, `ghcr.io`, `cache/quay`. */
  prefix: string;
  /** The upstream registry: http(s)://host[:port], no path, no credentials (`https://registry-1.docker.io`). */
  url: string;
  /** Basic credentials for the upstream, or for its token service when it asks for a bearer token. */
  username?: string;
  /** The password of `username`; never logged, printed or counted. */
  password?: string;
  /** Milliseconds a tag is served from the cache before it is checked against the upstream again (0: every pull checks). */
  ttl?: number;
  /** Bytes the namespace may hold, counting each blob once: `regmeta gc` evicts the repositories pulled longest ago until it fits. */
  maxSize?: number;
  /** Milliseconds a cached repository may go unpulled before `regmeta gc` evicts it. */
  maxIdle?: number;
  /** Requests to the upstream at once, from this process; more wait their turn. */
  concurrency?: number;
  /** Milliseconds to wait for the upstream to connect, to answer, or to send the next bytes of a body. */
  timeout?: number;
}

/** A mirror's options with every default filled in. */
export type ResolvedMirror = Required<Omit<MirrorOptions, 'username' | 'password' | 'maxSize' | 'maxIdle'>> &
  Pick<MirrorOptions, 'username' | 'password' | 'maxSize' | 'maxIdle'>;

/** The defaults of a mirror's options. */
export const DEFAULT_MIRROR = {
  /** Five minutes: a moved tag shows within that; a pull in between costs the upstream nothing. */
  ttl: 5 * 60_000,
  concurrency: 32,
  timeout: 30_000,
} as const;

/**
 * Checks mirror entries and fills in their defaults.
 * @throws TypeError naming the entry and what is wrong: a prefix that is
 * not a repository name or lies inside another's, a URL that is not
 * http(s) of a host alone or carries credentials, a password without a
 * user, a number out of range; or `defaultPrefix` naming no entry.
 */
export function resolveMirrors(entries: readonly MirrorOptions[], defaultPrefix?: string): ResolvedMirror[] {
  const resolved = entries.map((entry, index) => resolveOne(entry, `mirrors[${index}]`));
  for (const a of resolved) {
    for (const b of resolved) {
      if (a !== b && (a.prefix === b.prefix || b.prefix.startsWith(`${a.prefix}/`))) {
        throw new TypeError(`mirrors: prefix ${b.prefix} lies inside prefix ${a.prefix}: a repository name would have two upstreams`);
      }
    }
  }
  if (defaultPrefix !== undefined && !resolved.some((m) => m.prefix === defaultPrefix)) {
    throw new TypeError(`mirrorDefault: ${defaultPrefix} is not the prefix of a mirror`);
  }
  return resolved;
}

function resolveOne(entry: MirrorOptions, where: string): ResolvedMirror {
  const prefix = checkedPrefix(entry.prefix, where);
  const url = checkedUrl(entry.url, where);
  if (entry.password !== undefined && entry.username === undefined) throw new TypeError(`${where}: a password needs a username`);
  const ttl = checkedNumber(entry.ttl ?? DEFAULT_MIRROR.ttl, `${where}.ttl`, 0);
  const concurrency = checkedNumber(entry.concurrency ?? DEFAULT_MIRROR.concurrency, `${where}.concurrency`, 1);
  const timeout = checkedNumber(entry.timeout ?? DEFAULT_MIRROR.timeout, `${where}.timeout`, 1);
  const maxSize = entry.maxSize === undefined ? undefined : checkedNumber(entry.maxSize, `${where}.maxSize`, 0);
  const maxIdle = entry.maxIdle === undefined ? undefined : checkedNumber(entry.maxIdle, `${where}.maxIdle`, 0);
  return { prefix, url, username: entry.username, password: entry.password, ttl, concurrency, timeout, maxSize, maxIdle };
}

function checkedPrefix(prefix: unknown, where: string): string {
  try {
    if (typeof prefix !== 'string') throw new TypeError('');
    return checkRepository(prefix);
  } catch (error) {
    if (error instanceof StoreError || error instanceof TypeError) {
      throw new TypeError(`${where}.prefix: expected a repository name like docker.io or cache/ghcr, got ${JSON.stringify(prefix)}`);
    }
    throw error;
  }
}

function checkedUrl(raw: unknown, where: string): string {
  const bad = (why: string) => new TypeError(`${where}.url: ${why}`);
  if (typeof raw !== 'string') throw bad('expected an http or https URL like https://registry-1.docker.io');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw bad('expected an http or https URL like https://registry-1.docker.io');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad('expected an http or https URL');
  // The URL is printed and logged: credentials go in username and password.
  if (url.username !== '' || url.password !== '') throw bad('credentials go in username and password, not in the URL');
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') throw bad('expected a host alone, without a path or query');
  return url.origin;
}

function checkedNumber(value: unknown, where: string, min: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) throw new TypeError(`${where}: expected a number ≥ ${min}`);
  return value;
}
