// Upload sessions as a blob store keeps them: in the metadata store's
// UploadSessions, given from outside (a registry passes `store.uploads`:
// every replica, and a restarted server, then knows every session), or, for
// an embedder without a database or a unit test, in the in-memory table
// below, which keeps the same contract. The bytes are the blob store's own
// business; the table holds who may append and how much is committed.

import { randomUUID } from 'node:crypto';
import { StoreError, type UploadClaim, type UploadSession, type UploadSessions } from '../store/index.js';
import { BlobStoreError } from './errors.js';

// What a client held at the cap is told to wait before it tries again.
const RETRY_AFTER_SECONDS = 60;

/** BLOB_UPLOAD_UNKNOWN, the blob store's: for a session no table has, or a handle from elsewhere. */
export function unknownUpload(): BlobStoreError {
  return new BlobStoreError('BLOB_UPLOAD_UNKNOWN', 'unknown upload session');
}

/**
 * What the session table rejects `call` with, in the blob store's family, so
 * that callers of the blob store see one family whatever keeps its sessions:
 * TOOMANYREQUESTS (with `retryAfter`) and BLOB_UPLOAD_UNKNOWN become
 * BlobStoreErrors; every other error passes as it is.
 * @throws what `call` rejects with, translated.
 */
export async function sessionErrors<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (error) {
    if (!(error instanceof StoreError)) throw error;
    if (error.code === 'TOOMANYREQUESTS') {
      throw new BlobStoreError('TOOMANYREQUESTS', error.message, { retryAfter: RETRY_AFTER_SECONDS, cause: error });
    }
    if (error.code === 'BLOB_UPLOAD_UNKNOWN') throw new BlobStoreError('BLOB_UPLOAD_UNKNOWN', error.message, { cause: error });
    throw error;
  }
}

interface Row {
  id: string;
  repo: string;
  client: string;
  size: number;
  started: number;
  updated: number;
  owner?: string;
  leaseUntil: number;
}

const sessionOf = (row: Row): UploadSession => ({
  id: row.id,
  repo: row.repo,
  client: row.client,
  size: row.size,
  startedAt: new Date(row.started),
  updatedAt: new Date(row.updated),
});

function storeUnknown(): StoreError {
  return new StoreError('BLOB_UPLOAD_UNKNOWN', 'unknown upload session');
}

/**
 * Upload sessions in this process's memory, under the store's UploadSessions
 * contract and its StoreError codes: for a blob store without a database,
 * and for tests. Arguments are not checked as a database store checks them.
 * Lost with the process; no other process sees them.
 */
export class MemorySessionTable implements UploadSessions {
  readonly #rows = new Map<string, Row>();

  /** @throws StoreError TOOMANYREQUESTS (`detail.held`, `detail.max`) when `client` holds `max` sessions already. */
  async open(repo: string, client: string, max: number): Promise<UploadSession> {
    const held = [...this.#rows.values()].filter((row) => row.client === client).length;
    if (max > 0 && held >= max) {
      throw new StoreError('TOOMANYREQUESTS', `${held} upload sessions are open from this address, the most it may hold: finish or cancel some`, { held, max });
    }
    const now = Date.now();
    const row: Row = { id: randomUUID(), repo, client, size: 0, started: now, updated: now, leaseUntil: 0 };
    this.#rows.set(row.id, row);
    return sessionOf(row);
  }

  /** @throws StoreError BLOB_UPLOAD_UNKNOWN, also for another repository's. */
  async get(repo: string, id: string): Promise<UploadSession> {
    return sessionOf(this.#row(repo, id));
  }

  /** A claim of another owner is live until its lease runs out: this process cannot see another's die. @throws StoreError BLOB_UPLOAD_UNKNOWN. */
  async claim(repo: string, id: string, owner: string, leaseMs: number): Promise<UploadClaim> {
    const row = this.#row(repo, id);
    const now = Date.now();
    if (row.owner !== undefined && row.owner !== owner && row.leaseUntil > now) return 'busy';
    Object.assign(row, { owner, leaseUntil: now + leaseMs, updated: now });
    return { size: row.size };
  }

  /** Never throws. */
  async renew(id: string, owner: string, leaseMs: number): Promise<boolean> {
    const row = this.#rows.get(id);
    if (row?.owner !== owner) return false;
    row.leaseUntil = row.updated = Date.now();
    row.leaseUntil += leaseMs;
    return true;
  }

  /** @throws StoreError BLOB_UPLOAD_UNKNOWN when `owner` holds no claim on it. */
  async commit(id: string, owner: string, size: number): Promise<void> {
    const row = this.#rows.get(id);
    if (row?.owner !== owner) throw storeUnknown();
    Object.assign(row, { size, updated: Date.now(), owner: undefined, leaseUntil: 0 });
  }

  /** Never throws. */
  async release(id: string, owner: string): Promise<void> {
    const row = this.#rows.get(id);
    if (row?.owner === owner) Object.assign(row, { owner: undefined, leaseUntil: 0 });
  }

  /** Never throws. */
  async end(repo: string, id: string): Promise<boolean> {
    if (this.#rows.get(id)?.repo !== repo) return false;
    return this.#rows.delete(id);
  }

  /** Never throws. */
  async idle(idleBefore: Date, limit = 100): Promise<UploadSession[]> {
    const now = Date.now();
    return [...this.#rows.values()]
      .filter((row) => row.updated < idleBefore.getTime() && row.leaseUntil <= now)
      .sort((a, b) => a.updated - b.updated)
      .slice(0, limit)
      .map(sessionOf);
  }

  /** Never throws. */
  async expire(id: string, idleBefore: Date): Promise<boolean> {
    const row = this.#rows.get(id);
    if (row === undefined || row.updated >= idleBefore.getTime() || row.leaseUntil > Date.now()) return false;
    return this.#rows.delete(id);
  }

  /** Never throws. */
  async has(id: string): Promise<boolean> {
    return this.#rows.has(id);
  }

  /** Never throws. */
  async count(): Promise<number> {
    return this.#rows.size;
  }

  #row(repo: string, id: string): Row {
    const row = this.#rows.get(id);
    if (row === undefined || row.repo !== repo) throw storeUnknown();
    return row;
  }
}
