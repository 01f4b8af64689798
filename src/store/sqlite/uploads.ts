// Blob upload sessions in the database, so that every replica (and a server
// restarted) knows them: the table, the per-address cap counted in the same
// transaction as the insert, and the exclusive claim (an owner and a lease)
// that lets one writer at a time append to a session's file, whichever
// process it runs in. The bytes themselves are the blob storage's business.

import type Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { prepareAll } from './connection.js';
import type { StoreContext } from './context.js';
import { StoreError } from '../errors.js';
import { checkRepository } from '../grammar.js';
import { MAX_PAGE_SIZE } from '../limits.js';
import { processGone, processIdentity } from './process-identity.js';
import type { UploadClaim, UploadSession } from '../types.js';

// A claim is live while lease_until is in the future and its holder (the
// claiming process, see process-identity.ts) is not known to have exited; a
// writer that died on another machine leaves one that runs out. Renewing,
// committing and releasing are the owner's alone (WHERE owner = :owner): a
// writer whose claim was taken over can no longer move the session.
const UPLOAD_SQL = {
  heldBy: 'SELECT count(*) FROM upload_session WHERE client = :client',
  insert: `
    INSERT INTO upload_session (id, repository, client, size, started_at, updated_at)
    VALUES (:id, :repo, :client, 0, :now, :now)
    RETURNING *`,
  get: 'SELECT * FROM upload_session WHERE id = :id AND repository = :repo',
  claim: `
    UPDATE upload_session SET owner = :owner, lease_until = :until, updated_at = :now, holder = :holder
    WHERE id = :id AND repository = :repo AND (owner IS NULL OR lease_until <= :now OR owner = :owner)
    RETURNING size`,
  // The claim of a holder found dead, taken only if it is still the one that was looked at.
  takeOver: `
    UPDATE upload_session SET owner = :owner, lease_until = :until, updated_at = :now, holder = :holder
    WHERE id = :id AND repository = :repo AND owner = :dead AND holder = :deadHolder
    RETURNING size`,
  renew: 'UPDATE upload_session SET lease_until = :until, updated_at = :now WHERE id = :id AND owner = :owner',
  commit: `
    UPDATE upload_session SET size = :size, updated_at = :now, owner = NULL, lease_until = NULL, holder = NULL
    WHERE id = :id AND owner = :owner`,
  release: 'UPDATE upload_session SET owner = NULL, lease_until = NULL, holder = NULL WHERE id = :id AND owner = :owner',
  end: 'DELETE FROM upload_session WHERE id = :id AND repository = :repo',
  expire: `
    DELETE FROM upload_session
    WHERE id = :id AND updated_at < :cutoff AND (owner IS NULL OR lease_until <= :now)`,
  idle: `
    SELECT * FROM upload_session
    WHERE updated_at < :cutoff AND (owner IS NULL OR lease_until <= :now)
    ORDER BY updated_at
    LIMIT :limit`,
  has: 'SELECT count(*) FROM upload_session WHERE id = :id',
  count: 'SELECT count(*) FROM upload_session',
};

/** @internal */
export function prepareUploadStatements(db: Database.Database): Record<keyof typeof UPLOAD_SQL, Database.Statement> {
  return prepareAll(db, UPLOAD_SQL, ['heldBy', 'claim', 'takeOver', 'has', 'count']);
}

/** An upload_session row, as both backends read it. */
export interface UploadRow {
  id: string;
  repository: string;
  client: string;
  size: number;
  started_at: number;
  updated_at: number;
}

/** The one mapping from a row to an UploadSession. */
export function toUploadSession(row: UploadRow): UploadSession {
  return {
    id: row.id,
    repo: row.repository,
    client: row.client,
    size: row.size,
    startedAt: new Date(row.started_at),
    updatedAt: new Date(row.updated_at),
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** BLOB_UPLOAD_UNKNOWN: what every backend says of a session it does not have for that repository. */
export function unknownUpload(): StoreError {
  return new StoreError('BLOB_UPLOAD_UNKNOWN', 'unknown upload session');
}

/** Whether `id` looks like a session id the store issues (a UUID). */
export function isSessionId(id: unknown): id is string {
  return typeof id === 'string' && UUID.test(id);
}

/** A session id as the store issues them; anything else is a session no one has. @throws StoreError BLOB_UPLOAD_UNKNOWN. */
export function checkSessionId(id: unknown): string {
  if (isSessionId(id)) return id;
  throw unknownUpload();
}

/** @throws StoreError ARGUMENT_INVALID unless `value` is a string of 0 (1 for an owner) to 255 characters. */
export function checkText(value: unknown, field: 'client' | 'owner'): string {
  const min = field === 'owner' ? 1 : 0;
  if (typeof value === 'string' && value.length >= min && value.length <= 255 && !value.includes('\0')) return value;
  throw new StoreError('ARGUMENT_INVALID', `${field} must be a string of ${min} to 255 characters`);
}

/** @throws StoreError ARGUMENT_INVALID unless `value` is a safe integer ≥ `min`. */
export function checkCount(value: unknown, field: string, min = 0): number {
  if (Number.isSafeInteger(value) && (value as number) >= min) return value as number;
  throw new StoreError('ARGUMENT_INVALID', `${field} must be an integer ≥ ${min}`);
}

/** TOOMANYREQUESTS for a client holding `held` sessions, the most it may. */
export function tooManyUploads(held: number, max: number): StoreError {
  return new StoreError('TOOMANYREQUESTS', `${held} upload sessions are open from this address, the most it may hold: finish or cancel some`, {
    held,
    max,
  });
}

/** The arguments of open, checked. */
export function openArguments(repo: string, client: string, max: number) {
  return { repo: checkRepository(repo), client: checkText(client, 'client'), max: checkCount(max, 'max') };
}

/** The arguments of claim and renew, checked. */
export function claimArguments(id: string, owner: string, leaseMs: number) {
  return { id: checkSessionId(id), owner: checkText(owner, 'owner'), leaseMs: checkCount(leaseMs, 'leaseMs', 1) };
}

/** The arguments of idle, checked: its cutoff in ms and its limit. */
export function idleArguments(idleBefore: Date, limit: number) {
  if (!(idleBefore instanceof Date) || Number.isNaN(idleBefore.getTime())) throw new StoreError('ARGUMENT_INVALID', 'idleBefore must be a valid Date');
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw new StoreError('ARGUMENT_INVALID', `limit must be an integer from 1 to ${MAX_PAGE_SIZE}`);
  }
  return { cutoff: idleBefore.getTime(), limit };
}

/**
 * A store's upload sessions (MetadataStore.uploads): what a registry's blob
 * storage keeps its sessions in, so that a chunked upload survives a restart
 * and its requests may land on any replica. Each method is one transaction.
 */
export class SqliteUploadSessions {
  readonly #cx: StoreContext;
  constructor(cx: StoreContext) {
    this.#cx = cx;
  }

  /**
   * Opens an empty session for `repo` (which need not exist yet) on behalf
   * of client address `client`, counted against the client in the same
   * transaction as the insert, so that concurrent opens cannot all pass.
   * @param max the most sessions `client` may hold at once; 0: no cap.
   * @throws StoreError TOOMANYREQUESTS (`detail.held`, `detail.max`) when the
   * client holds `max` already; NAME_INVALID, ARGUMENT_INVALID, DATABASE_*, STORE_CLOSED.
   */
  open(repo: string, client: string, max: number): UploadSession {
    const args = openArguments(repo, client, max);
    const sql = this.#sql;
    return this.#cx.write(() => {
      const held = sql.heldBy.get({ client: args.client }) as number;
      if (args.max > 0 && held >= args.max) throw tooManyUploads(held, args.max);
      return toUploadSession(sql.insert.get({ id: randomUUID(), repo: args.repo, client: args.client, now: Date.now() }) as UploadRow);
    });
  }

  /**
   * The session `id` of `repo`.
   * @throws StoreError BLOB_UPLOAD_UNKNOWN (no such session, or another
   * repository's); NAME_INVALID, DATABASE_*, STORE_CLOSED.
   */
  get(repo: string, id: string): UploadSession {
    const params = { repo: checkRepository(repo), id: checkSessionId(id) };
    const row = this.#cx.read(() => this.#sql.get.get(params) as UploadRow | undefined);
    if (row === undefined) throw unknownUpload();
    return toUploadSession(row);
  }

  /**
   * Claims the session `id` of `repo` for `owner` for `leaseMs`: the one
   * writer that may append to it until it commits, releases or the lease
   * runs out, or its holder dies (its process on SQLite, where this
   * machine's /proc can tell; its database connection on PostgreSQL): a
   * dead holder's claim is taken at once. Claiming again as the same owner
   * renews. Counts as use.
   * @returns the committed size, or 'busy' while another owner's claim is live.
   * @throws StoreError BLOB_UPLOAD_UNKNOWN; NAME_INVALID, ARGUMENT_INVALID, DATABASE_*, STORE_CLOSED.
   */
  claim(repo: string, id: string, owner: string, leaseMs: number): UploadClaim {
    const args = { repo: checkRepository(repo), ...claimArguments(id, owner, leaseMs) };
    const sql = this.#sql;
    return this.#cx.write(() => {
      const now = Date.now();
      const claim = { id: args.id, repo: args.repo, owner: args.owner, now, until: now + args.leaseMs, holder: processIdentity() };
      const size = sql.claim.get(claim) as number | undefined;
      if (size !== undefined) return { size };
      const row = sql.get.get({ id: args.id, repo: args.repo }) as (UploadRow & { owner: string; holder: string | null }) | undefined;
      if (row === undefined) throw unknownUpload();
      if (row.holder === null || !processGone(row.holder)) return 'busy';
      return { size: sql.takeOver.get({ ...claim, dead: row.owner, deadHolder: row.holder }) as number };
    });
  }

  /**
   * Extends `owner`'s claim on session `id` by `leaseMs` from now, while a long body streams.
   * @returns false when `owner` holds no claim on it any more (ended, or taken over).
   * @throws StoreError ARGUMENT_INVALID, DATABASE_*, STORE_CLOSED.
   */
  renew(id: string, owner: string, leaseMs: number): boolean {
    const args = claimArguments(id, owner, leaseMs);
    return this.#cx.write(() => {
      const now = Date.now();
      return this.#sql.renew.run({ id: args.id, owner: args.owner, now, until: now + args.leaseMs }).changes > 0;
    });
  }

  /**
   * Records that session `id` now holds `size` committed bytes, and releases `owner`'s claim, in one statement.
   * @throws StoreError BLOB_UPLOAD_UNKNOWN when `owner` holds no claim on it
   * (ended meanwhile, or taken over after its lease ran out); ARGUMENT_INVALID, DATABASE_*, STORE_CLOSED.
   */
  commit(id: string, owner: string, size: number): void {
    const params = { id: checkSessionId(id), owner: checkText(owner, 'owner'), size: checkCount(size, 'size'), now: Date.now() };
    const changed = this.#cx.write(() => this.#sql.commit.run(params).changes);
    if (changed === 0) throw unknownUpload();
  }

  /** Lets go of `owner`'s claim on session `id`, leaving its size; nothing when it holds none. @throws StoreError ARGUMENT_INVALID, DATABASE_*, STORE_CLOSED. */
  release(id: string, owner: string): void {
    const params = { id: checkSessionId(id), owner: checkText(owner, 'owner') };
    this.#cx.write(() => this.#sql.release.run(params));
  }

  /**
   * Ends the session `id` of `repo` (finished or cancelled): its row goes,
   * before its file does. @returns whether it was there.
   * @throws StoreError NAME_INVALID, DATABASE_*, STORE_CLOSED.
   */
  end(repo: string, id: string): boolean {
    const repository = checkRepository(repo);
    if (!isSessionId(id)) return false;
    return this.#cx.write(() => this.#sql.end.run({ id, repo: repository }).changes > 0);
  }

  /**
   * Up to `limit` sessions last used before `idleBefore` whose claim is not
   * live, oldest first: what a sweeper expires.
   * @throws StoreError ARGUMENT_INVALID, DATABASE_*, STORE_CLOSED.
   */
  idle(idleBefore: Date, limit = 100): UploadSession[] {
    const args = idleArguments(idleBefore, limit);
    return this.#cx.read(() => (this.#sql.idle.all({ ...args, now: Date.now() }) as UploadRow[]).map(toUploadSession));
  }

  /**
   * Ends session `id` only if it is still idle since before `idleBefore`
   * with no live claim: two sweepers, or a sweeper and a client that just
   * came back, never both win. @returns whether this call ended it.
   * @throws StoreError ARGUMENT_INVALID, DATABASE_*, STORE_CLOSED.
   */
  expire(id: string, idleBefore: Date): boolean {
    const { cutoff } = idleArguments(idleBefore, 1);
    if (!isSessionId(id)) return false;
    return this.#cx.write(() => this.#sql.expire.run({ id, cutoff, now: Date.now() }).changes > 0);
  }

  /**
   * Whether any repository's session `id` is there: what a sweep of stray
   * session files asks before it removes one (a session's row is written
   * before its file, so a file whose row is gone is no one's).
   * @throws StoreError DATABASE_*, STORE_CLOSED.
   */
  has(id: string): boolean {
    if (!isSessionId(id)) return false;
    return this.#cx.read(() => (this.#sql.has.get({ id }) as number) > 0);
  }

  /** How many sessions are open, in the whole database. @throws StoreError DATABASE_*, STORE_CLOSED. */
  count(): number {
    return this.#cx.read(() => this.#sql.count.get() as number);
  }

  get #sql() {
    return this.#cx.sql.uploads;
  }
}
