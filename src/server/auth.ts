// Optional HTTP basic authentication against an htpasswd file, as
// distribution's htpasswd access controller does: bcrypt hashes only.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import bcrypt from 'bcryptjs';
import { HttpError } from './errors.js';

/** The realm clients are told to log in to. */
export const REALM = 'regmeta';

/**
 * Reads an htpasswd file into user → bcrypt hash. Lines that are empty,
 * comments, or carry another kind of hash (MD5, SHA1, crypt) are skipped:
 * only bcrypt ($2y$, $2a$, $2b$) is safe to accept.
 * @throws Error when the file cannot be read or has no usable entry.
 */
export function readHtpasswd(file: string): Map<string, string> {
  const users = new Map<string, string>();
  for (const raw of readFileSync(file, 'utf8').split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const hash = line.slice(colon + 1);
    if (!/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) continue;
    users.set(line.slice(0, colon), hash);
  }
  if (users.size === 0) throw new Error(`${file} has no bcrypt entries`);
  return users;
}

const DUMMY_HASH = '$2b$10$C0lJ75xie5x2OHumSBGKfeRegn/kCvTBM1LZictuSPrDrTUs7fLOW';

/** Checks Authorization headers against the htpasswd users. */
export class BasicAuth {
  readonly #users: Map<string, string>;
  // bcrypt is slow by design (tens of ms per check in pure JS); a client
  // sends the same header on every request. Cache verified headers by hash,
  // never the password itself.
  readonly #verified = new Map<string, string>();

  constructor(users: Map<string, string>) {
    this.#users = users;
  }

  /**
   * The user an Authorization header proves.
   * @throws HttpError UNAUTHORIZED (401, with WWW-Authenticate) when it proves no one.
   */
  async authenticate(header: string | undefined): Promise<string> {
    const unauthorized = () =>
      new HttpError('UNAUTHORIZED', 'authentication required', {
        headers: { 'WWW-Authenticate': `Basic realm="${REALM}", charset="UTF-8"` },
      });
    if (header === undefined || header.length > 4096) throw unauthorized();
    const key = createHash('sha256').update(header).digest('hex');
    const known = this.#verified.get(key);
    if (known !== undefined && this.#users.has(known)) return known;
    const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (!match) throw unauthorized();
    const decoded = Buffer.from(match[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw unauthorized();
    const user = decoded.slice(0, colon);
    // An unknown user costs a bcrypt check too, so timing does not tell which users exist.
    const hash = this.#users.get(user) ?? DUMMY_HASH;
    // bcryptjs reads $2a$/$2b$; $2y$ (PHP's, htpasswd's) is the same algorithm.
    const ok = await bcrypt.compare(decoded.slice(colon + 1), hash.replace(/^\$2y\$/, '$2b$'));
    if (!ok || !this.#users.has(user)) throw unauthorized();
    if (this.#verified.size >= 10_000) this.#verified.clear();
    this.#verified.set(key, user);
    return user;
  }
}
