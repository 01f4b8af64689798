// The lock on a digest that a blob's file is placed and removed under (see
// blob_lock in schema.sql), and the one way a locked method runs: as a step
// inside a write transaction that first refuses a digest another holds,
// then runs the caller's action. An action that finishes at once needs no
// row: SQLite's write lock already excludes every other writer, and the
// step does the method's writes in the same transaction. An action that
// returns a promise cannot be un-run, so the step writes the digest's row
// in that same transaction before it commits: the digest stays locked from
// the moment the action started. The action is then awaited outside any
// transaction, its lease renewed meanwhile, and a last transaction checks
// that the row is still this acquisition's, does the method's writes and
// deletes the row. Only the asynchronous face lets an action await.

import type Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { prepareAll } from './connection.js';
import type { StoreContext } from './context.js';
import type { LockedAction } from '../contract.js';
import { CallbackFailure, StoreError } from '../errors.js';
import { processGone, processIdentity } from './process-identity.js';

/** How long a lock lasts unless renewed: what a holder that died unseen (another machine) blocks its digest for. */
const LEASE_MS = 30_000;
/** How often a running action's lease is renewed: a third of it, so that two renewals may fail before it runs out. */
const RENEW_MS = LEASE_MS / 3;
/** The longest pause between two looks at a lock another process holds. */
const MAX_POLL_MS = 100;

const LOCK_SQL = {
  lockOf: 'SELECT owner, holder, lease_until FROM blob_lock WHERE digest = :digest',
  take: 'INSERT INTO blob_lock (digest, owner, holder, lease_until) VALUES (:digest, :owner, :holder, :until)',
  renew: 'UPDATE blob_lock SET lease_until = :until WHERE digest = :digest AND owner = :owner',
  release: 'DELETE FROM blob_lock WHERE digest = :digest AND owner = :owner',
};

/** @internal */
export function prepareLockStatements(db: Database.Database): Record<keyof typeof LOCK_SQL, Database.Statement> {
  return prepareAll(db, LOCK_SQL);
}

interface LockRow {
  owner: string;
  holder: string | null;
  lease_until: number;
}

/** A digest's lock held by another acquisition: thrown through a step's transaction, which then waits. */
class LockHeld {
  constructor(readonly holder: string | null) {}
}

/** A lock taken for an action that went on after its transaction. */
interface HeldLock {
  digest: string;
  owner: string;
  action: Promise<void>;
}

/** What a step did: finished (its value), or started an action whose writes wait for it (finish). */
export type Outcome<T> = { value: T; lock?: undefined } | { lock: HeldLock; finish: () => T };

/** Whether `row` still locks its digest: its lease runs and its holder is not known to have exited. */
function live(row: LockRow): boolean {
  return row.lease_until > Date.now() && (row.holder === null || !processGone(row.holder));
}

// --- inside a step's transaction ----------------------------------------------

/** Refuses `digest` while another acquisition holds it (LockHeld, through the transaction); a row left by a dead holder is deleted. */
export function refuseIfLocked(cx: StoreContext, digest: string): void {
  const sql = cx.sql.locks;
  const row = sql.lockOf.get({ digest }) as LockRow | undefined;
  if (row === undefined) return;
  if (live(row)) throw new CallbackFailure(new LockHeld(row.holder));
  sql.release.run({ digest, owner: row.owner });
}

/**
 * Runs `action` in a step that refuseIfLocked let through. Undefined when it
 * finished at once; when it returned a promise, the digest's row, written
 * in this transaction, and the action to await. What it throws reaches the
 * caller as is, the transaction rolled back.
 * @throws ARGUMENT_INVALID (through the transaction) for a promise when `mayAwait` is false.
 */
export function startAction(cx: StoreContext, digest: string, action: LockedAction, mayAwait: boolean): HeldLock | undefined {
  let result: unknown;
  try {
    result = action();
  } catch (error) {
    throw new CallbackFailure(error);
  }
  if (typeof (result as Promise<void> | undefined)?.then !== 'function') return undefined;
  const pending = Promise.resolve(result as Promise<void>);
  if (!mayAwait) {
    // Unhandled otherwise: what it settles with no longer matters.
    pending.then(undefined, () => {});
    throw new CallbackFailure(new StoreError('ARGUMENT_INVALID', 'a callback of the synchronous SQLite store must be synchronous: use asyncStore'));
  }
  // Should this transaction fail to commit, the action goes on unlocked: as
  // a synchronous action run before a commit that fails, it is not undone.
  const owner = randomUUID();
  cx.sql.locks.take.run({ digest, owner, holder: processIdentity(), until: Date.now() + LEASE_MS });
  return { digest, owner, action: pending };
}

// --- running a step -------------------------------------------------------------

/** The step in one write transaction, or the LockHeld it met when another holds the digest. */
function attempt<T>(cx: StoreContext, step: () => Outcome<T>): Outcome<T> | LockHeld {
  try {
    return cx.write(step);
  } catch (error) {
    if (error instanceof LockHeld) return error;
    throw error;
  }
}

/**
 * The synchronous face: `step` (which must not let an action await) until
 * no one else holds `digest`, waiting for the holder as SQLite waits for
 * its write lock: up to the busy timeout, the thread blocked; at once for a
 * holder in this process, whose action only this thread's event loop can
 * finish.
 * @throws StoreError DATABASE_BUSY; what the step throws.
 */
export function runLockedSync<T>(cx: StoreContext, digest: string, step: () => Outcome<T>): T {
  let deadline = Infinity;
  for (let wait = 1; ; wait = Math.min(wait * 2, MAX_POLL_MS)) {
    const outcome = attempt(cx, step);
    if (!(outcome instanceof LockHeld)) return (outcome as { value: T }).value;
    if (deadline === Infinity) deadline = Date.now() + cx.limits.busyTimeout;
    const own = outcome.holder !== null && outcome.holder === processIdentity();
    if (own || Date.now() >= deadline) {
      const who = own ? 'an asynchronous call of this process' : 'another process';
      throw new StoreError('DATABASE_BUSY', `${cx.file}: blob ${digest} is locked by ${who} placing or removing its file`, { digest });
    }
    Atomics.wait(SLEEPER, 0, 0, wait);
  }
}

// A synchronous sleep, as connection.ts's retry: the synchronous face cannot yield.
const SLEEPER = new Int32Array(new SharedArrayBuffer(4));

/**
 * The asynchronous face: `step` once no one holds `digest`, then the action
 * it started, if any, and its writes. A digest that another process holds
 * is polled with backoff by one local caller at a time: the others queue
 * behind it in this store, as behind a local holder, in call order.
 * @throws StoreError LOCK_LOST (the action ran past its lease and another
 * took the lock: nothing written); what the step or the action throws.
 */
export function runLocked<T>(cx: StoreContext, digest: string, step: () => Outcome<T>): Promise<T> {
  // The common case, nobody here or elsewhere on the digest: at once.
  if (!cx.digestTurns.has(digest)) {
    let outcome: Outcome<T> | LockHeld;
    try {
      outcome = attempt(cx, step);
    } catch (error) {
      return Promise.reject(error);
    }
    if (outcome instanceof LockHeld) return inTurn(cx, digest, () => poll(cx, digest, step));
    if (outcome.lock === undefined) return Promise.resolve(outcome.value);
    const started = outcome;
    return inTurn(cx, digest, () => complete(cx, started));
  }
  return inTurn(cx, digest, () => poll(cx, digest, step));
}

/** Runs `body` after every local call on `digest` queued before it; the map holds the last one's end. */
async function inTurn<T>(cx: StoreContext, digest: string, body: () => Promise<T>): Promise<T> {
  const ahead = cx.digestTurns.get(digest);
  let done!: () => void;
  const mine = new Promise<void>((resolve) => (done = resolve));
  cx.digestTurns.set(digest, mine);
  try {
    if (ahead !== undefined) await ahead;
    return await body();
  } finally {
    done();
    if (cx.digestTurns.get(digest) === mine) cx.digestTurns.delete(digest);
  }
}

/** The step once a read (which takes no write lock) finds the digest free, until it gets through. */
async function poll<T>(cx: StoreContext, digest: string, step: () => Outcome<T>): Promise<T> {
  for (let wait = 1; ; ) {
    while (lockedNow(cx, digest)) {
      await sleep(wait);
      wait = Math.min(wait * 2, MAX_POLL_MS);
    }
    const outcome = attempt(cx, step);
    if (!(outcome instanceof LockHeld)) return complete(cx, outcome);
  }
}

function lockedNow(cx: StoreContext, digest: string): boolean {
  return cx.read(() => {
    const row = cx.sql.locks.lockOf.get({ digest }) as LockRow | undefined;
    return row !== undefined && live(row);
  });
}

/** An outcome's end: its value, or its action awaited (lease renewed) and its writes committed with the lock's release. */
async function complete<T>(cx: StoreContext, outcome: Outcome<T>): Promise<T> {
  if (outcome.lock === undefined) return outcome.value;
  const { lock, finish } = outcome;
  const renewal = setInterval(() => renew(cx, lock), RENEW_MS);
  // A renewal alone must not keep the process alive: the action does, while it runs.
  renewal.unref();
  try {
    await lock.action;
  } catch (error) {
    release(cx, lock);
    throw error;
  } finally {
    clearInterval(renewal);
  }
  try {
    return cx.write(() => {
      if (cx.sql.locks.release.run({ digest: lock.digest, owner: lock.owner }).changes === 0) {
        throw new StoreError(
          'LOCK_LOST',
          `${cx.file}: the lock on blob ${lock.digest} ran out while its file was placed or removed, and another took it: nothing was written`,
          { digest: lock.digest },
        );
      }
      return finish();
    });
  } catch (error) {
    // The writes failed and rolled the release back with them.
    release(cx, lock);
    throw error;
  }
}

// A renewal or release that fails (the database busy, closed) is left to
// the lease: the lock then runs out by itself, and the finish tells.
function renew(cx: StoreContext, lock: HeldLock): void {
  try {
    cx.write(() => cx.sql.locks.renew.run({ digest: lock.digest, owner: lock.owner, until: Date.now() + LEASE_MS }));
  } catch {
    // See above.
  }
}

function release(cx: StoreContext, lock: HeldLock): void {
  try {
    cx.write(() => cx.sql.locks.release.run({ digest: lock.digest, owner: lock.owner }));
  } catch {
    // See above.
  }
}
