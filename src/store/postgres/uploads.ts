// Upload sessions on PostgreSQL: the same rules as uploads.ts, shared by
// every replica. A claim is one UPDATE whose WHERE is evaluated again under
// the row lock (READ COMMITTED), so two replicas claiming at once never both
// win. A claim dies with its holder's connection (see holder.ts): one whose
// holder is gone from pg_locks is anyone's, whatever its lease says.

import { randomUUID } from 'node:crypto';
import type postgres from 'postgres';
import type { UploadSessions } from '../contract.js';
import { StoreError } from '../errors.js';
import { UPLOAD_CHECKS, applyChecks } from '../checks.js';
import type { UploadClaim, UploadSession } from '../types.js';
import { toUploadSession, type UploadRow } from '../rows.js';
import { DEFAULT_IDLE_LIMIT, isSessionId, tooManyUploads, unknownUpload } from '../uploads.js';
import type { PgContext } from './context.js';
import { translatePgError } from './errors.js';
import { ClaimHolder, HOLDER_LOCK } from './holder.js';

/** The advisory lock class of the per-address cap (its object is the client's hash): one open at a time per address. */
const CAP_LOCK = 0x75706c64; // 'upld'

/** A store's upload sessions, shared by every replica; the checks of their arguments are checks.ts's, in front of each method. */
export class PgUploadSessions implements UploadSessions {
  readonly #holder: ClaimHolder;

  constructor(private readonly cx: PgContext) {
    this.#holder = new ClaimHolder(cx.sql);
  }

  // Every method but open is one statement, which PostgreSQL runs as a
  // transaction of its own (autocommit): read() sends it without a BEGIN.

  async open(repo: string, client: string, max: number): Promise<UploadSession> {
    const now = Date.now();
    return this.cx.write(async (tx) => {
      if (max > 0) {
        // Count and insert under a lock of this address: READ COMMITTED alone
        // would let concurrent opens each count the others' sessions as absent.
        // Two statements: a count in the lock's own statement would read the
        // snapshot taken before the lock was granted, missing what its holder committed.
        await tx.sql`SELECT pg_advisory_xact_lock(${CAP_LOCK}::int, hashtext(${client}))`;
        const [{ held }] = await tx.sql<{ held: number }[]>`SELECT count(*) AS held FROM upload_session WHERE client = ${client}`;
        if (held >= max) throw tooManyUploads(held, max);
      }
      const [row] = await tx.sql<UploadRow[]>`
        INSERT INTO upload_session (id, repository, client, size, started_at, updated_at)
        VALUES (${randomUUID()}, ${repo}, ${client}, 0, ${now}, ${now})
        RETURNING *`;
      return toUploadSession(row);
    });
  }

  async get(repo: string, id: string): Promise<UploadSession> {
    const [row] = await this.cx.read((sql) => sql<UploadRow[]>`SELECT * FROM upload_session WHERE id = ${id} AND repository = ${repo}`);
    if (row === undefined) throw unknownUpload();
    return toUploadSession(row);
  }

  async claim(repo: string, id: string, owner: string, leaseMs: number): Promise<UploadClaim> {
    const now = Date.now();
    // One statement, on the holder connection: the claim, and whether the session is there at all (busy or unknown).
    // A live claim of another owner is taken when its holder's lock is gone: the replica died.
    const [row] = await this.#onHolder((sql) => sql<{ size: number | null; present: boolean }[]>`
      WITH claimed AS (
        UPDATE upload_session
        SET owner = ${owner}, lease_until = ${now + leaseMs}, updated_at = ${now}, holder = pg_backend_pid()
        WHERE id = ${id} AND repository = ${repo}
          AND (owner IS NULL OR lease_until <= ${now} OR owner = ${owner}
            OR (holder IS NOT NULL AND NOT EXISTS (
              SELECT FROM pg_locks
              WHERE locktype = 'advisory' AND classid = ${HOLDER_LOCK}::oid AND objid = holder::oid AND objsubid = 2
                AND pid = holder AND granted)))
        RETURNING size
      )
      SELECT (SELECT size FROM claimed) AS size,
        EXISTS (SELECT 1 FROM upload_session WHERE id = ${id} AND repository = ${repo}) AS present`);
    if (row.size !== null) return { size: row.size };
    if (!row.present) throw unknownUpload();
    return 'busy';
  }

  async renew(id: string, owner: string, leaseMs: number): Promise<boolean> {
    const now = Date.now();
    // Only while the claim's holder is this connection: after a lost connection it is not held any more.
    const rows = await this.#onHolder((sql) => sql`
      UPDATE upload_session SET lease_until = ${now + leaseMs}, updated_at = ${now}
      WHERE id = ${id} AND owner = ${owner} AND holder = pg_backend_pid()
      RETURNING 1`);
    return rows.length > 0;
  }

  async commit(id: string, owner: string, size: number): Promise<void> {
    const now = Date.now();
    const rows = await this.cx.read((sql) => sql`
      UPDATE upload_session SET size = ${size}, updated_at = ${now}, owner = NULL, lease_until = NULL, holder = NULL
      WHERE id = ${id} AND owner = ${owner}
      RETURNING 1`);
    if (rows.length === 0) throw unknownUpload();
  }

  async release(id: string, owner: string): Promise<void> {
    await this.cx.read((sql) => sql`UPDATE upload_session SET owner = NULL, lease_until = NULL, holder = NULL WHERE id = ${id} AND owner = ${owner}`);
  }

  async end(repo: string, id: string): Promise<boolean> {
    if (!isSessionId(id)) return false;
    const rows = await this.cx.read((sql) => sql`DELETE FROM upload_session WHERE id = ${id} AND repository = ${repo} RETURNING 1`);
    return rows.length > 0;
  }

  async idle(idleBefore: Date, limit = DEFAULT_IDLE_LIMIT): Promise<UploadSession[]> {
    const cutoff = idleBefore.getTime();
    const now = Date.now();
    const rows = await this.cx.read((sql) => sql<UploadRow[]>`
      SELECT * FROM upload_session
      WHERE updated_at < ${cutoff} AND (owner IS NULL OR lease_until <= ${now})
      ORDER BY updated_at
      LIMIT ${limit}`);
    return rows.map(toUploadSession);
  }

  async expire(id: string, idleBefore: Date): Promise<boolean> {
    const cutoff = idleBefore.getTime();
    if (!isSessionId(id)) return false;
    const now = Date.now();
    const rows = await this.cx.read((sql) => sql`
      DELETE FROM upload_session
      WHERE id = ${id} AND updated_at < ${cutoff} AND (owner IS NULL OR lease_until <= ${now})
      RETURNING 1`);
    return rows.length > 0;
  }

  async has(id: string): Promise<boolean> {
    if (!isSessionId(id)) return false;
    const rows = await this.cx.read((sql) => sql`SELECT 1 FROM upload_session WHERE id = ${id}`);
    return rows.length > 0;
  }

  async count(): Promise<number> {
    const [row] = await this.cx.read((sql) => sql<{ n: number }[]>`SELECT count(*) AS n FROM upload_session`);
    return row.n;
  }

  /** Lets go of the holder connection: the claims still held die with it. */
  close(): Promise<void> {
    return this.#holder.close();
  }

  /** Runs one statement on the holder connection, its errors translated as read()'s. */
  async #onHolder<T>(fn: (sql: postgres.ReservedSql) => Promise<T>): Promise<T> {
    if (!this.cx.open) throw new StoreError('STORE_CLOSED', `the store on ${this.cx.location} is closed`);
    try {
      return await this.#holder.run(fn);
    } catch (error) {
      throw translatePgError(error, this.cx.location);
    }
  }
}

applyChecks(PgUploadSessions.prototype, UPLOAD_CHECKS, 'reject');
