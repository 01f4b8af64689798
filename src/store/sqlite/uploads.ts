// Blob upload sessions in the database, so that every replica (and a server
// restarted) knows them: the table, the per-address cap counted in the same
// transaction as the insert, and the exclusive claim (an owner and a lease)
// that lets one writer at a time append to a session's file, whichever
// process it runs in. The bytes themselves are the blob storage's business.

import type Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { prepareAll } from './connection.js';
import type { StoreContext } from './context.js';
import { UPLOAD_CHECKS, applyChecks } from '../checks.js';
import type { Synchronous, UploadSessions } from '../contract.js';
import { processGone, processIdentity } from './process-identity.js';
import { toUploadSession, type UploadRow } from '../rows.js';
import type { UploadClaim, UploadSession } from '../types.js';
import { DEFAULT_IDLE_LIMIT, isSessionId, tooManyUploads, unknownUpload } from '../uploads.js';

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

/**
 * A store's upload sessions (MetadataStore.uploads), on the store's file; the
 * checks of their arguments are checks.ts's, in front of each method.
 */
export class SqliteUploadSessions implements Synchronous<UploadSessions> {
  readonly #cx: StoreContext;
  constructor(cx: StoreContext) {
    this.#cx = cx;
  }

  open(repo: string, client: string, max: number): UploadSession {
    const sql = this.#sql;
    return this.#cx.write(() => {
      const held = sql.heldBy.get({ client }) as number;
      if (max > 0 && held >= max) throw tooManyUploads(held, max);
      return toUploadSession(sql.insert.get({ id: randomUUID(), repo, client, now: Date.now() }) as UploadRow);
    });
  }

  get(repo: string, id: string): UploadSession {
    const params = { repo, id };
    const row = this.#cx.read(() => this.#sql.get.get(params) as UploadRow | undefined);
    if (row === undefined) throw unknownUpload();
    return toUploadSession(row);
  }

  claim(repo: string, id: string, owner: string, leaseMs: number): UploadClaim {
    const sql = this.#sql;
    return this.#cx.write(() => {
      const now = Date.now();
      const claim = { id, repo, owner, now, until: now + leaseMs, holder: processIdentity() };
      const size = sql.claim.get(claim) as number | undefined;
      if (size !== undefined) return { size };
      const row = sql.get.get({ id, repo }) as (UploadRow & { owner: string; holder: string | null }) | undefined;
      if (row === undefined) throw unknownUpload();
      if (row.holder === null || !processGone(row.holder)) return 'busy';
      return { size: sql.takeOver.get({ ...claim, dead: row.owner, deadHolder: row.holder }) as number };
    });
  }

  renew(id: string, owner: string, leaseMs: number): boolean {
    return this.#cx.write(() => {
      const now = Date.now();
      return this.#sql.renew.run({ id, owner, now, until: now + leaseMs }).changes > 0;
    });
  }

  commit(id: string, owner: string, size: number): void {
    const params = { id, owner, size, now: Date.now() };
    const changed = this.#cx.write(() => this.#sql.commit.run(params).changes);
    if (changed === 0) throw unknownUpload();
  }

  release(id: string, owner: string): void {
    const params = { id, owner };
    this.#cx.write(() => this.#sql.release.run(params));
  }

  end(repo: string, id: string): boolean {
    if (!isSessionId(id)) return false;
    return this.#cx.write(() => this.#sql.end.run({ id, repo }).changes > 0);
  }

  idle(idleBefore: Date, limit = DEFAULT_IDLE_LIMIT): UploadSession[] {
    const params = { cutoff: idleBefore.getTime(), limit, now: Date.now() };
    return this.#cx.read(() => (this.#sql.idle.all(params) as UploadRow[]).map(toUploadSession));
  }

  expire(id: string, idleBefore: Date): boolean {
    const cutoff = idleBefore.getTime();
    if (!isSessionId(id)) return false;
    return this.#cx.write(() => this.#sql.expire.run({ id, cutoff, now: Date.now() }).changes > 0);
  }

  has(id: string): boolean {
    if (!isSessionId(id)) return false;
    return this.#cx.read(() => (this.#sql.has.get({ id }) as number) > 0);
  }

  count(): number {
    return this.#cx.read(() => this.#sql.count.get() as number);
  }

  get #sql() {
    return this.#cx.sql.uploads;
  }
}

applyChecks(SqliteUploadSessions.prototype, UPLOAD_CHECKS, 'throw');
