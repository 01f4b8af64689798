// Optional HTTP basic authentication against an htpasswd file, as
// distribution's htpasswd access controller does: bcrypt hashes only, the
// others reported rather than silently ignored.
// Checks run on worker threads (bcrypt-pool.ts) and failures are limited per
// client address (failures.ts), so wrong passwords cannot stall the server.

import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import bcrypt from 'bcryptjs';
import { BcryptPool, VerifyQueueFull } from './bcrypt-pool.js';
import { HttpError } from './errors.js';
import { FailureLimiter } from './failures.js';

/** The realm clients are told to log in to. */
const REALM = 'regmeta';

/** Limits on password checks; every one is an option of createRegistry. */
export interface AuthLimits {
  /**
   * Failed logins one client address (an IPv6 /64) may make per window.
   * Only a check that failed counts, and the address runs no more checks at
   * once than it has failures left (the others wait); once it has no
   * failures left, credentials not verified before answer 429 unchecked.
   * 0 turns it off.
   */
  maxFailedLoginsPerAddress: number;
  /** Milliseconds a window of failed logins lasts, from the first failure in it. */
  failedLoginWindow: number;
  /** Client addresses whose failed logins are remembered; beyond that the oldest are forgotten. */
  failedLoginAddresses: number;
  /** Worker threads that check passwords (at least 1). */
  passwordCheckThreads: number;
  /** Password checks that may wait for a free thread; beyond that they answer 429 (0: none wait). */
  passwordCheckQueue: number;
}

/**
 * The defaults, the one place their numbers are written: ten failures a
 * minute is plenty for a person mistyping and little for a guesser; the
 * queue holds a few seconds of cost-10 checks.
 */
export const DEFAULT_AUTH_LIMITS: Readonly<AuthLimits> = Object.freeze({
  maxFailedLoginsPerAddress: 10,
  failedLoginWindow: 60_000,
  failedLoginAddresses: 10_000,
  // Leave a core to the event loop where there is more than one.
  passwordCheckThreads: Math.max(1, Math.min(2, availableParallelism() - 1)),
  passwordCheckQueue: 64,
});

// Verified headers remembered; the cache is emptied when it reaches this.
const VERIFIED_CACHE = 10_000;
const BCRYPT_HASH = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;

/**
 * What kind of hash an htpasswd entry holds, for the warning about one that
 * is not bcrypt: apache2-utils' htpasswd writes MD5 (apr1) by default, and
 * -s, -d, -p write SHA1, crypt and plain text.
 */
function hashKind(hash: string): string {
  if (hash.startsWith('$apr1$')) return 'MD5 (apr1)';
  if (hash.startsWith('{SHA}')) return 'SHA1';
  if (hash.startsWith('$1$')) return 'MD5 crypt';
  if (hash.startsWith('$5$')) return 'SHA-256 crypt';
  if (hash.startsWith('$6$')) return 'SHA-512 crypt';
  if (/^\$2[aby]\$/.test(hash)) return 'malformed bcrypt';
  if (/^[./0-9A-Za-z]{13}$/.test(hash)) return 'crypt';
  return 'plain text';
}

/**
 * Reads an htpasswd file into user → bcrypt hash. Empty lines and comments
 * are skipped. So is every other line, and each is reported to `onWarning`
 * in one line naming the user and the kind of hash: another kind of hash
 * (MD5, SHA1, crypt, plain text; only bcrypt $2y$, $2a$, $2b$ is safe to
 * accept), a bcrypt whose cost is outside bcrypt's 4–31 (no check could read
 * it), a line with no user. Such a user cannot log in until `regmeta passwd`
 * writes a bcrypt entry for them.
 * @throws Error when the file cannot be read or has no usable entry.
 */
export function readHtpasswd(file: string, onWarning: (message: string) => void = () => {}): Map<string, string> {
  const users = new Map<string, string>();
  const lines = readFileSync(file, 'utf8').split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    if (colon <= 0) {
      onWarning(`${file}:${index + 1}: not a user:hash line; ignored`);
      return;
    }
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    const match = BCRYPT_HASH.exec(hash);
    if (!match || Number(match[1]) < 4 || Number(match[1]) > 31) {
      const what = match ? `a bcrypt hash of cost ${Number(match[1])}, outside 4-31` : `${hashKind(hash)}, not bcrypt`;
      onWarning(`${file}:${index + 1}: user ${JSON.stringify(user)} ignored, cannot log in: ${what} (set a new password with 'regmeta passwd')`);
      return;
    }
    users.set(user, hash);
  });
  if (users.size === 0) throw new Error(`${file} has no bcrypt entries`);
  return users;
}

/**
 * A hash of a random password at the cost most of `hashes` have, for
 * checking unknown users against: they must take as long as known ones, or
 * the time of a 401 tells which users exist.
 * @throws Error when `hashes` is empty or the most common cost is not bcrypt's (4–31).
 */
export function dummyHash(hashes: Iterable<string>): string {
  const counts = new Map<number, number>();
  for (const hash of hashes) {
    const cost = Number(hash.slice(4, 6));
    counts.set(cost, (counts.get(cost) ?? 0) + 1);
  }
  if (counts.size === 0) throw new Error('no hashes to take a cost from');
  const [cost] = [...counts].reduce((best, entry) => (entry[1] > best[1] ? entry : best));
  return bcrypt.hashSync(randomBytes(24).toString('base64'), cost);
}

/**
 * 401 UNAUTHORIZED with the Basic challenge: the answer to a client whose
 * credentials are missing or prove no one, and to an anonymous client the
 * access rules refuse.
 */
export function unauthorized(message = 'authentication required'): HttpError {
  return new HttpError('UNAUTHORIZED', message, {
    headers: { 'WWW-Authenticate': `Basic realm="${REALM}", charset="UTF-8"` },
  });
}

/**
 * Whether an Authorization header carries no credentials: none at all, or
 * Basic with an empty user and password, which containers/image (skopeo,
 * podman) sends after a Basic challenge when it has no credentials.
 */
export function carriesNoCredentials(header: string | undefined): boolean {
  return header === undefined || /^Basic\s+Og==\s*$/i.test(header);
}

/** Checks Authorization headers against the htpasswd users. */
export class BasicAuth {
  readonly #users: Map<string, string>;
  readonly #dummy: string;
  // bcrypt is slow by design (tens of ms per check in pure JS); a client
  // sends the same header on every request. Cache verified headers by hash,
  // never the password itself.
  readonly #verified = new Map<string, string>();
  readonly #pool: BcryptPool;
  readonly #failures: FailureLimiter;
  // Checks in progress by the header's hash: the same header sent in
  // parallel (a client pulling layers at once) costs one check, not one each.
  readonly #checking = new Map<string, Promise<string | undefined>>();

  /** @throws Error when `users` is empty or a limit is not a number ≥ 0. */
  constructor(users: Map<string, string>, limits: Partial<AuthLimits> = {}) {
    const l = { ...DEFAULT_AUTH_LIMITS };
    for (const name of Object.keys(l) as (keyof AuthLimits)[]) {
      const value = limits[name] ?? DEFAULT_AUTH_LIMITS[name];
      if (!(value >= 0)) throw new Error(`${name} must be a number ≥ 0, not ${value}`);
      l[name] = value;
    }
    this.#users = users;
    this.#dummy = dummyHash(users.values());
    this.#pool = new BcryptPool(l.passwordCheckThreads, l.passwordCheckQueue);
    const max = l.maxFailedLoginsPerAddress === 0 ? Infinity : l.maxFailedLoginsPerAddress;
    this.#failures = new FailureLimiter(max, l.failedLoginWindow, l.failedLoginAddresses);
  }

  /**
   * The user an Authorization header proves. Headers verified before pass
   * at once, also from a client address that is being refused; a header
   * being checked already waits for that check's answer. Only a check that
   * failed counts against the address: an address runs at most as many
   * checks at once as it has failures left, and further ones wait for those
   * to end, so a right password is never refused for checks still running.
   * @param address the client's address, which failed attempts are counted against.
   * @throws HttpError UNAUTHORIZED (401, with WWW-Authenticate) when it proves no one.
   * @throws HttpError TOOMANYREQUESTS (429, with Retry-After) when the address has
   *   failed too often lately, or too many checks are waiting for a thread.
   * @throws Error when the check itself fails (the pool is closed, a thread died).
   */
  async authenticate(header: string | undefined, address: string | undefined): Promise<string> {
    if (header === undefined || header.length > 4096) throw unauthorized();
    const key = createHash('sha256').update(header).digest('hex');
    const known = this.#known(key);
    if (known !== undefined) return known;
    const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (!match) throw unauthorized();
    const decoded = Buffer.from(match[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw unauthorized();
    const wait = this.#failures.refusal(address);
    if (wait > 0) throw tooManyFailures(wait);
    const user = await (this.#checking.get(key) ?? this.#check(key, decoded.slice(0, colon), decoded.slice(colon + 1), address));
    if (user === undefined) throw unauthorized();
    return user;
  }

  /** The user a header verified before proves, if it still exists. */
  #known(key: string): string | undefined {
    const user = this.#verified.get(key);
    return user !== undefined && this.#users.has(user) ? user : undefined;
  }

  /** Checks a header's password once the address may, counting a failure against it. */
  async #check(key: string, user: string, password: string, address: string | undefined): Promise<string | undefined> {
    const wait = await this.#failures.admit(address);
    if (wait > 0) throw tooManyFailures(wait);
    // While this waited, a check of the same header may have ended or begun.
    const ready = this.#known(key) ?? this.#checking.get(key);
    if (ready !== undefined) {
      this.#failures.settle(address, false);
      return ready;
    }
    const check = this.#verify(key, user, password);
    this.#checking.set(key, check);
    try {
      const found = await check;
      this.#failures.settle(address, found === undefined);
      return found;
    } catch (error) {
      this.#failures.settle(address, false);
      throw error;
    } finally {
      this.#checking.delete(key);
    }
  }

  /** The user when `password` is theirs (remembered by the header's hash), else undefined. */
  async #verify(key: string, user: string, password: string): Promise<string | undefined> {
    // An unknown user costs a bcrypt check too, so timing does not tell which users exist.
    const hash = this.#users.get(user) ?? this.#dummy;
    let ok: boolean;
    try {
      // bcryptjs reads $2a$/$2b$; $2y$ (PHP's, htpasswd's) is the same algorithm.
      ok = await this.#pool.verify(password, hash.replace(/^\$2y\$/, '$2b$'));
    } catch (error) {
      if (error instanceof VerifyQueueFull) throw tooMany('too many logins are being checked; retry shortly', 1);
      throw error;
    }
    if (!ok || !this.#users.has(user)) return undefined;
    if (this.#verified.size >= VERIFIED_CACHE) this.#verified.clear();
    this.#verified.set(key, user);
    return user;
  }

  /** Stops the password check threads; later checks fail. */
  close(): Promise<void> {
    return this.#pool.close();
  }
}

function tooManyFailures(seconds: number): HttpError {
  return tooMany(`too many failed logins from this address; retry in ${seconds} s`, seconds);
}

function tooMany(message: string, seconds: number): HttpError {
  return new HttpError('TOOMANYREQUESTS', message, { headers: { 'Retry-After': String(seconds) } });
}
