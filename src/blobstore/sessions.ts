// The table of upload sessions that a blob store keeps its sessions in,
// given from outside: a registry passes one on its metadata database (every
// replica, and a restarted server, then knows every session), an embedder
// without a database or a unit test the in-memory one below. The bytes are
// the blob store's own business; this table holds who may append and how
// much is committed.

import { randomUUID } from 'node:crypto';
import { BlobStoreError } from './errors.js';

/** A session as the table keeps it. */
export interface SessionRecord {
  readonly id: string;
  /** The repository it was opened for: no other may touch it. */
  readonly repo: string;
  /** The client address that opened it, for the per-address cap. */
  readonly client: string;
  /** Bytes committed: what the session's file holds for sure. */
  readonly size: number;
  /** The last claim or commit. */
  readonly updatedAt: Date;
}

/**
 * Where a blob store keeps its upload sessions. Each method is atomic with
 * respect to every other user of the same table (other processes included).
 * Failures of the table itself (its database) pass through as its own errors.
 */
export interface SessionTable {
  /**
   * Opens an empty session (a fresh UUID) for `repo`, counted against
   * `client` in the same step: concurrent opens cannot all pass the cap.
   * @param max the most sessions `client` may hold; 0: no cap.
   * @throws BlobStoreError TOOMANYREQUESTS (with `retryAfter`) at the cap.
   */
  open(repo: string, client: string, max: number): Promise<SessionRecord>;
  /** The session `id` of `repo`. @throws BlobStoreError BLOB_UPLOAD_UNKNOWN, also for another repository's. */
  get(repo: string, id: string): Promise<SessionRecord>;
  /**
   * Makes `owner` the session's one writer for `leaseMs` (the same owner renews).
   * A table that can tell that another owner's holder has died (its process,
   * its database connection) takes that owner's claim at once.
   * @returns its committed size, or 'busy' while another owner's claim is live.
   * @throws BlobStoreError BLOB_UPLOAD_UNKNOWN.
   */
  claim(repo: string, id: string, owner: string, leaseMs: number): Promise<{ size: number } | 'busy'>;
  /** Extends `owner`'s claim by `leaseMs` from now. @returns false when it holds none any more. */
  renew(id: string, owner: string, leaseMs: number): Promise<boolean>;
  /** Records `size` committed bytes and releases `owner`'s claim, at once. @throws BlobStoreError BLOB_UPLOAD_UNKNOWN when `owner` holds no claim. */
  commit(id: string, owner: string, size: number): Promise<void>;
  /** Lets go of `owner`'s claim, if it holds one. */
  release(id: string, owner: string): Promise<void>;
  /** Removes the session (before its file goes). @returns whether it was there. */
  end(repo: string, id: string): Promise<boolean>;
  /** Up to `limit` sessions last used before `idleBefore` with no live claim, oldest first. */
  idle(idleBefore: Date, limit?: number): Promise<SessionRecord[]>;
  /** Removes session `id` only if it is still idle since before `idleBefore`, with no live claim. @returns whether this call removed it. */
  expire(id: string, idleBefore: Date): Promise<boolean>;
  /** Whether any repository's session `id` is there: what a sweep of stray files asks. */
  has(id: string): Promise<boolean>;
  /** How many sessions the table holds. */
  count(): Promise<number>;
}

// What a client held at the cap is told to wait before it tries again.
export const RETRY_AFTER_SECONDS = 60;

/** TOOMANYREQUESTS for a client that holds `held` sessions, the most it may. */
export function tooManySessions(held: number): BlobStoreError {
  return new BlobStoreError('TOOMANYREQUESTS', `${held} upload sessions are open from this address, the most it may hold: finish or cancel some`, {
    retryAfter: RETRY_AFTER_SECONDS,
  });
}

export function unknownUpload(): BlobStoreError {
  return new BlobStoreError('BLOB_UPLOAD_UNKNOWN', 'unknown upload session');
}

interface Row {
  id: string;
  repo: string;
  client: string;
  size: number;
  updated: number;
  owner?: string;
  leaseUntil: number;
}

const recordOf = (row: Row): SessionRecord => ({ id: row.id, repo: row.repo, client: row.client, size: row.size, updatedAt: new Date(row.updated) });

/** Sessions in this process's memory: for a blob store without a database, and for tests. Lost with the process. */
export class MemorySessionTable implements SessionTable {
  readonly #rows = new Map<string, Row>();

  async open(repo: string, client: string, max: number): Promise<SessionRecord> {
    const held = [...this.#rows.values()].filter((row) => row.client === client).length;
    if (max > 0 && held >= max) throw tooManySessions(held);
    const row: Row = { id: randomUUID(), repo, client, size: 0, updated: Date.now(), leaseUntil: 0 };
    this.#rows.set(row.id, row);
    return recordOf(row);
  }

  async get(repo: string, id: string): Promise<SessionRecord> {
    return recordOf(this.#row(repo, id));
  }

  async claim(repo: string, id: string, owner: string, leaseMs: number): Promise<{ size: number } | 'busy'> {
    const row = this.#row(repo, id);
    const now = Date.now();
    if (row.owner !== undefined && row.owner !== owner && row.leaseUntil > now) return 'busy';
    Object.assign(row, { owner, leaseUntil: now + leaseMs, updated: now });
    return { size: row.size };
  }

  async renew(id: string, owner: string, leaseMs: number): Promise<boolean> {
    const row = this.#rows.get(id);
    if (row?.owner !== owner) return false;
    row.leaseUntil = row.updated = Date.now();
    row.leaseUntil += leaseMs;
    return true;
  }

  async commit(id: string, owner: string, size: number): Promise<void> {
    const row = this.#rows.get(id);
    if (row?.owner !== owner) throw unknownUpload();
    Object.assign(row, { size, updated: Date.now(), owner: undefined, leaseUntil: 0 });
  }

  async release(id: string, owner: string): Promise<void> {
    const row = this.#rows.get(id);
    if (row?.owner === owner) Object.assign(row, { owner: undefined, leaseUntil: 0 });
  }

  async end(repo: string, id: string): Promise<boolean> {
    if (this.#rows.get(id)?.repo !== repo) return false;
    return this.#rows.delete(id);
  }

  async idle(idleBefore: Date, limit = 100): Promise<SessionRecord[]> {
    const now = Date.now();
    return [...this.#rows.values()]
      .filter((row) => row.updated < idleBefore.getTime() && row.leaseUntil <= now)
      .sort((a, b) => a.updated - b.updated)
      .slice(0, limit)
      .map(recordOf);
  }

  async expire(id: string, idleBefore: Date): Promise<boolean> {
    const row = this.#rows.get(id);
    if (row === undefined || row.updated >= idleBefore.getTime() || row.leaseUntil > Date.now()) return false;
    return this.#rows.delete(id);
  }

  async has(id: string): Promise<boolean> {
    return this.#rows.has(id);
  }

  async count(): Promise<number> {
    return this.#rows.size;
  }

  #row(repo: string, id: string): Row {
    const row = this.#rows.get(id);
    if (row === undefined || row.repo !== repo) throw unknownUpload();
    return row;
  }
}
