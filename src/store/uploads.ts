// The contract of upload sessions, which every backend implements beside its
// Store, and their rules, the same on every backend: what a session id is,
// what the fields of a claim must be, and the errors every backend gives.

import { methodList } from './methods.js';
import { StoreError } from './errors.js';
import type { UploadClaim, UploadSession } from './types.js';

/**
 * Blob upload sessions, shared by every process and replica on the store:
 * what a registry's blob storage keeps its sessions in, so that a chunked
 * upload survives a restart and its requests may land on any replica. Each
 * method is one transaction.
 */
export interface UploadSessions {
  /**
   * Opens an empty session for `repo` (which need not exist yet) on behalf
   * of client address `client`, counted against the client in the same
   * transaction as the insert, so that concurrent opens cannot all pass.
   * @param max the most sessions `client` may hold at once; 0: no cap.
   * @throws StoreError TOOMANYREQUESTS (`detail.held`, `detail.max`) when the
   * client holds `max` already; NAME_INVALID, ARGUMENT_INVALID, DATABASE_*, STORE_CLOSED.
   */
  open(repo: string, client: string, max: number): Promise<UploadSession>;
  /**
   * The session `id` of `repo`.
   * @throws StoreError BLOB_UPLOAD_UNKNOWN (no such session, or another
   * repository's); NAME_INVALID, DATABASE_*, STORE_CLOSED.
   */
  get(repo: string, id: string): Promise<UploadSession>;
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
  claim(repo: string, id: string, owner: string, leaseMs: number): Promise<UploadClaim>;
  /**
   * Extends `owner`'s claim on session `id` by `leaseMs` from now, while a long body streams.
   * @returns false when `owner` holds no claim on it any more (ended, or taken over).
   * @throws StoreError ARGUMENT_INVALID, DATABASE_*, STORE_CLOSED.
   */
  renew(id: string, owner: string, leaseMs: number): Promise<boolean>;
  /**
   * Records that session `id` now holds `size` committed bytes, and releases `owner`'s claim, in one statement.
   * @throws StoreError BLOB_UPLOAD_UNKNOWN when `owner` holds no claim on it
   * (ended meanwhile, or taken over after its lease ran out); ARGUMENT_INVALID, DATABASE_*, STORE_CLOSED.
   */
  commit(id: string, owner: string, size: number): Promise<void>;
  /** Lets go of `owner`'s claim on session `id`, leaving its size; nothing when it holds none. @throws StoreError ARGUMENT_INVALID, DATABASE_*, STORE_CLOSED. */
  release(id: string, owner: string): Promise<void>;
  /**
   * Ends the session `id` of `repo` (finished or cancelled): its row goes,
   * before its file does. @returns whether it was there.
   * @throws StoreError NAME_INVALID, DATABASE_*, STORE_CLOSED.
   */
  end(repo: string, id: string): Promise<boolean>;
  /**
   * Up to `limit` (default 100) sessions last used before `idleBefore` whose
   * claim is not live, oldest first: what a sweeper expires.
   * @throws StoreError ARGUMENT_INVALID, DATABASE_*, STORE_CLOSED.
   */
  idle(idleBefore: Date, limit?: number): Promise<UploadSession[]>;
  /**
   * Ends session `id` only if it is still idle since before `idleBefore`
   * with no live claim: two sweepers, or a sweeper and a client that just
   * came back, never both win. @returns whether this call ended it.
   * @throws StoreError ARGUMENT_INVALID, DATABASE_*, STORE_CLOSED.
   */
  expire(id: string, idleBefore: Date): Promise<boolean>;
  /**
   * Whether any repository's session `id` is there: what a sweep of stray
   * session files asks before it removes one (a session's row is written
   * before its file, so a file whose row is gone is no one's).
   * @throws StoreError DATABASE_*, STORE_CLOSED.
   */
  has(id: string): Promise<boolean>;
  /** How many sessions are open, in the whole database. @throws StoreError DATABASE_*, STORE_CLOSED. */
  count(): Promise<number>;
}

/** Every method of UploadSessions. */
export const UPLOAD_METHODS = methodList<UploadSessions>()(['open', 'get', 'claim', 'renew', 'commit', 'release', 'end', 'idle', 'expire', 'has', 'count']);

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
export function checkSessionId(id: unknown): void {
  if (!isSessionId(id)) throw unknownUpload();
}

/** @throws StoreError ARGUMENT_INVALID unless `value` is a string of 0 (1 for an owner) to 255 characters. */
export function checkUploadText(value: unknown, field: 'client' | 'owner'): void {
  const min = field === 'owner' ? 1 : 0;
  if (typeof value === 'string' && value.length >= min && value.length <= 255 && !value.includes('\0')) return;
  throw new StoreError('ARGUMENT_INVALID', `${field} must be a string of ${min} to 255 characters`);
}

/** @throws StoreError ARGUMENT_INVALID unless `value` is a safe integer ≥ `min`. */
export function checkCount(value: unknown, field: string, min = 0): void {
  if (Number.isSafeInteger(value) && (value as number) >= min) return;
  throw new StoreError('ARGUMENT_INVALID', `${field} must be an integer ≥ ${min}`);
}

/** The arguments of claim and renew. @throws StoreError BLOB_UPLOAD_UNKNOWN, ARGUMENT_INVALID. */
export function checkClaim(id: string, owner: string, leaseMs: number): void {
  checkSessionId(id);
  checkUploadText(owner, 'owner');
  checkCount(leaseMs, 'leaseMs', 1);
}

/** @throws StoreError ARGUMENT_INVALID unless `idleBefore` is a valid Date. */
export function checkIdleBefore(idleBefore: Date): void {
  if (!(idleBefore instanceof Date) || Number.isNaN(idleBefore.getTime())) throw new StoreError('ARGUMENT_INVALID', 'idleBefore must be a valid Date');
}

/** How many idle sessions one call of idle() lists by default. */
export const DEFAULT_IDLE_LIMIT = 100;

/** TOOMANYREQUESTS for a client holding `held` sessions, the most it may. */
export function tooManyUploads(held: number, max: number): StoreError {
  return new StoreError('TOOMANYREQUESTS', `${held} upload sessions are open from this address, the most it may hold: finish or cancel some`, {
    held,
    max,
  });
}
