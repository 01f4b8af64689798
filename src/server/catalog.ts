// The catalog as a caller under access rules sees it: the repositories they
// may pull, paged. Two things keep what they may not see out of reach:
// - the store is asked only for the name ranges the caller's rules can
//   match (the text of each pattern before its first `*`), so names outside
//   them cost nothing;
// - inside those ranges (`acme/*` does not match acme/x/y, `*/public` starts
//   everywhere) a page reads at most a fixed number of names. A page cut
//   short goes on after its last name; one that found none goes on where it
//   stopped (the last name it read, and the range), and since that name may
//   be one the caller may not see, the Link carries it sealed (encrypted and
//   authenticated with a key of this process). A cursor names nothing else,
//   and every page lists a name or moves a sealed cursor on.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { checkRepository, type Store } from '../store/index.js';
import type { Access } from './access.js';
import { HttpError } from './errors.js';

/** Store reads one filtered catalog page makes at most. */
export const CATALOG_READS = 8;
/** Names one filtered catalog page reads beyond the n + 1 it may answer with, at most. */
export const CATALOG_SLACK = 2048;
// Each read asks for at least this many names, so that sparse ranges take few reads.
const MIN_BATCH = 256;

/** A filtered catalog page: its names, and the `last` of the next page's Link when there is one. */
interface CatalogPage {
  repositories: string[];
  next?: string;
}

/** Where a page stopped: after `last` (a name, or none) in the range of `prefix` and those after it. */
interface Position {
  last?: string;
  prefix: string;
}

/**
 * A catalog page of the repositories `actor` may pull: up to `n` names
 * after `last` (a name, or a sealed position this process gave `actor`),
 * full whenever more follow, unless CATALOG_READS reads or n + 1 +
 * CATALOG_SLACK names were not enough to fill it: then it is answered short,
 * and `next` is its last name, or, when it has none, where it stopped, sealed.
 * @throws HttpError NAME_INVALID for a sealed `last` this process did not give `actor`.
 * @throws StoreError NAME_INVALID for a `last` that is no repository name.
 */
export async function pullableCatalog(store: Store, access: Access, actor: string, n: number, last: string | undefined): Promise<CatalogPage> {
  const at: Position = last === undefined ? { prefix: '' } : last.startsWith(SEALED) ? open(last, actor) : { last: checkRepository(last), prefix: '' };
  const found: string[] = [];
  const ranges = access.prefixes(actor, 'pull').filter((prefix) => prefix >= at.prefix && (at.last === undefined || upperBound(prefix) > at.last));
  let budget = n + 1 + CATALOG_SLACK;
  for (let reads = 0; ranges.length > 0; reads++) {
    if (reads === CATALOG_READS || budget === 0) {
      return { repositories: found, next: found.at(-1) ?? seal({ last: at.last, prefix: ranges[0] }, actor) };
    }
    const want = Math.min(budget, Math.max(n + 1 - found.length, MIN_BATCH));
    const batch = await store.catalog({ n: want, last: at.last, prefix: ranges[0] });
    budget -= batch.length;
    for (const name of batch) {
      at.last = name;
      if (!access.allows(actor, 'pull', name)) continue;
      found.push(name);
      if (found.length > n) return { repositories: found.slice(0, n), next: n > 0 ? found[n - 1] : undefined };
    }
    if (batch.length < want) ranges.shift();
  }
  return { repositories: found };
}

/** What every name starting with `prefix` sorts below (names are ASCII below DEL). */
function upperBound(prefix: string): string {
  return prefix === '' ? '\x7f' : prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

// A sealed position: '~' (which no name contains), then base64url of the
// nonce, the tag and the position (its prefix, a newline, its name) padded
// to a fixed length, so that not even its length shows. The caller is the
// associated data: a position is good for the caller it was given to only.
const SEALED = '~';
const KEY = randomBytes(32);
const PADDED = 512;

function seal(position: Position, actor: string): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', KEY, nonce);
  cipher.setAAD(Buffer.from(actor));
  const padded = Buffer.alloc(PADDED);
  padded.write(`${position.prefix}\n${position.last ?? ''}`, 'latin1');
  const body = Buffer.concat([cipher.update(padded), cipher.final()]);
  return SEALED + Buffer.concat([nonce, cipher.getAuthTag(), body]).toString('base64url');
}

function open(token: string, actor: string): Position {
  const raw = Buffer.from(token.slice(SEALED.length), 'base64url');
  try {
    if (raw.length !== 12 + 16 + PADDED) throw new Error('length');
    const decipher = createDecipheriv('aes-256-gcm', KEY, raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(actor));
    decipher.setAuthTag(raw.subarray(12, 28));
    const padded = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]);
    const [prefix, last] = padded.toString('latin1', 0, padded.indexOf(0)).split('\n');
    return last === '' ? { prefix } : { prefix, last };
  } catch {
    throw new HttpError(
      'NAME_INVALID',
      'last is neither a repository name nor a catalog position this server gave you (positions hold until the server restarts); list the catalog again from the start',
    );
  }
}
