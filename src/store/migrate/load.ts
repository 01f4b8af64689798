// The PostgreSQL side of `regmeta migrate`: loads the rows of a SQLite store
// into an empty database with COPY, one transaction per batch that also
// records how far the copy has got, so that a run that is interrupted (a
// kill, a dropped connection) is continued by the next one, never repeated.
// The bookkeeping lives in tables of its own, beside the schema (not in
// schema.postgres.sql: a database that was never a migration's target has
// none), kept after the end as the record of where the data came from.
// The foreign keys of the copied tables are dropped while the copy runs and
// added back at its end: checked row by row they cost more than the COPY
// itself, checked once at the end a join each.

import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StoreError } from '../errors.js';
import { checkColumns, copyText, TableDigest, TRANSFER_TABLES, type KeyValues, type TransferRow, type TransferTable } from './transfer.js';
import type { Sql, TxSql } from '../postgres/context.js';
import { sqlState, translatePgError } from '../postgres/errors.js';
import { connect, STORE_APPLICATION_NAME } from '../postgres/pool.js';

/** The session advisory lock one migration holds for its run ('rgmu'): a second one is refused. */
const MIGRATE_LOCK = 0x72676d75;

const PROGRESS_DDL = `
  -- The source of the migration into this database, one row.
  CREATE TABLE IF NOT EXISTS regmeta_migration (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    -- What names the SQLite store (the id of its first event): a run from another is refused.
    source      text NOT NULL,
    -- Its file, for messages only: the same store may be copied to another path.
    source_file text NOT NULL,
    -- What the store looked like when the copy began (event head, blob links):
    -- a resumed run refuses a store written since, whose rows below the marks it would miss.
    fingerprint text NOT NULL,
    started_at  bigint NOT NULL,
    finished_at bigint
  );
  -- How far the copy of each table has got: updated in each batch's transaction.
  CREATE TABLE IF NOT EXISTS regmeta_migration_table (
    name     text COLLATE "C" PRIMARY KEY,
    -- The key of the last row copied, as a JSON array; NULL before the first batch.
    last_key text,
    copied   bigint NOT NULL DEFAULT 0,
    done     boolean NOT NULL DEFAULT false
  );
  -- The foreign keys dropped for the copy, as pg_get_constraintdef wrote them: added back by its end.
  CREATE TABLE IF NOT EXISTS regmeta_migration_constraint (
    table_name text COLLATE "C" NOT NULL,
    name       text COLLATE "C" NOT NULL,
    definition text NOT NULL,
    PRIMARY KEY (table_name, name)
  );`;

/** The SQLite store a migration copies. */
interface MigrationSource {
  identity: string;
  file: string;
  fingerprint: string;
}

/** Where the copy of one table stands. */
interface TableProgress {
  after: KeyValues | undefined;
  copied: number;
  done: boolean;
}

/** Where a migration into this database stands when a run starts. */
interface MigrationState {
  /** A run before this one copied something. */
  resumed: boolean;
  /** When a run finished the copy (ms), if one did. */
  finishedAt: number | undefined;
  tables: Map<string, TableProgress>;
}

/**
 * Drops the foreign keys of the copied tables, recording their definitions
 * in the same transaction, so that a kill leaves them either in place or
 * recorded. The statements are made of PostgreSQL's own catalog text (the
 * table as regclass prints it, the name through quote_ident, the definition
 * as pg_get_constraintdef writes it), never of a value from outside.
 */
async function dropForeignKeys(tx: TxSql): Promise<void> {
  const keys = await tx<{ table: string; name: string; definition: string }[]>`
    SELECT c.conrelid::regclass::text AS table, quote_ident(c.conname) AS name, pg_get_constraintdef(c.oid) AS definition
    FROM pg_constraint c
    WHERE c.contype = 'f' AND c.conrelid = ANY (${TRANSFER_TABLES.map((t) => t.name)}::regclass[])`;
  for (const key of keys) {
    await tx`INSERT INTO regmeta_migration_constraint (table_name, name, definition) VALUES (${key.table}, ${key.name}, ${key.definition})`;
    await tx.unsafe(`ALTER TABLE ${key.table} DROP CONSTRAINT ${key.name}`);
  }
}

/** Adds back what dropForeignKeys dropped; each is validated against every row. */
async function restoreForeignKeys(tx: TxSql): Promise<void> {
  const keys = await tx<{ table_name: string; name: string; definition: string }[]>`SELECT * FROM regmeta_migration_constraint`;
  for (const key of keys) {
    await tx.unsafe(`ALTER TABLE ${key.table_name} ADD CONSTRAINT ${key.name} ${key.definition}`);
  }
  await tx`DELETE FROM regmeta_migration_constraint`;
}

const refused = (location: string, message: string, reason: string) =>
  new StoreError('DATABASE_INVALID', `${location} ${message}`, { reason });

/** How long a statement of the migration waits for a lock another session holds (ms): a server left running on the target fails the run, never stalls it. */
const LOAD_LOCK_TIMEOUT = 30_000;

/**
 * The target of a migration: a connection to the database (one, which holds
 * the migration's lock), its schema created by the store's own migrations.
 */
export class PgLoader {
  readonly #sql: Sql;
  readonly location: string;

  private constructor(sql: Sql, location: string) {
    this.#sql = sql;
    this.location = location;
  }

  /**
   * Connects to `url`, creates or migrates its schema (`readOnly`, for a
   * verification: only checks it), and checks that the tables copied have the
   * columns this regmeta copies.
   * @throws StoreError as openPostgresStore.
   */
  static async open(url: string, options: { readOnly?: boolean } = {}): Promise<PgLoader> {
    const { sql, location } = await connect(url, { max: 1, applicationName: 'regmeta migrate', readOnly: options.readOnly, lockTimeout: LOAD_LOCK_TIMEOUT });
    const loader = new PgLoader(sql, location);
    try {
      await loader.#run(async () => {
        const rows = await sql<{ table: string; column: string }[]>`
          SELECT table_name AS table, column_name AS column FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name IN ${sql(TRANSFER_TABLES.map((t) => t.name))}`;
        for (const spec of TRANSFER_TABLES) checkColumns(spec, rows.filter((r) => r.table === spec.name).map((r) => r.column), location);
      });
    } catch (error) {
      await loader.close();
      throw error;
    }
    return loader;
  }

  /**
   * Takes the migration's lock and reads where a migration from `source`
   * stands, starting one in an empty database. Nothing is written when it refuses.
   * @throws StoreError DATABASE_BUSY (another migration runs), DATABASE_INVALID
   * (regmeta stores are connected to it, the database holds other data, a
   * migration from another store, or one begun before `source` was written
   * to again; detail.reason says which).
   */
  async start(source: MigrationSource): Promise<MigrationState> {
    return this.#run(async () => {
      const [lock] = await this.#sql<{ locked: boolean }[]>`SELECT pg_try_advisory_lock(${MIGRATE_LOCK}) AS locked`;
      if (!lock.locked) throw new StoreError('DATABASE_BUSY', `${this.location}: another regmeta migrate is running into it`, { reason: 'running' });
      await this.#refuseInUse();
      return this.#sql.begin(async (sql) => {
        const tx = sql as unknown as TxSql;
        const [{ exists }] = await tx<{ exists: boolean }[]>`SELECT to_regclass('regmeta_migration') IS NOT NULL AS exists`;
        const [row] = exists ? await tx<{ source: string; source_file: string; fingerprint: string; finished_at: number | null }[]>`SELECT * FROM regmeta_migration` : [];
        if (row === undefined) return this.#begin(tx, source);
        if (row.source !== source.identity) {
          throw refused(this.location, `holds a migration from another store (${row.source_file}): migrate into an empty database`, 'other-source');
        }
        if (row.finished_at === null && row.fingerprint !== source.fingerprint) {
          throw refused(
            this.location,
            `holds a migration begun before ${source.file} was written to again (${row.fingerprint} then, ${source.fingerprint} now); rows changed since would be missed: stop the server and migrate into an empty database`,
            'source-changed',
          );
        }
        return this.#state(tx, true, row.finished_at ?? undefined);
      }) as Promise<MigrationState>;
    });
  }

  /**
   * Refuses a database that stores are connected to (a server started on it
   * before the migration, whose writes would take the keys the copy brings).
   * Stores opened later are refused by the migration's mark.
   */
  async #refuseInUse(): Promise<void> {
    const [{ connections }] = await this.#sql<{ connections: number }[]>`
      SELECT count(*)::int AS connections FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = ${STORE_APPLICATION_NAME}`;
    if (connections > 0) {
      throw refused(this.location, `is in use: ${connections} connections of a regmeta store (a regmeta serve?) are open to it`, 'in-use');
    }
  }

  /** A new migration in an empty database; refuses one that holds data. */
  async #begin(tx: TxSql, source: MigrationSource): Promise<MigrationState> {
    const counts = await Promise.all(TRANSFER_TABLES.map(async (t) => (await tx<{ any: boolean }[]>`SELECT EXISTS (SELECT FROM ${tx(t.name)}) AS any`)[0].any));
    const holding = TRANSFER_TABLES.filter((_, i) => counts[i]).map((t) => t.name);
    if (holding.length > 0) {
      throw refused(this.location, `is not empty (it holds rows in ${holding.join(', ')}): migrate into an empty database`, 'not-empty');
    }
    await tx.unsafe(PROGRESS_DDL);
    await tx`
      INSERT INTO regmeta_migration (source, source_file, fingerprint, started_at)
      VALUES (${source.identity}, ${source.file}, ${source.fingerprint}, ${Date.now()})`;
    await tx`INSERT INTO regmeta_migration_table (name) SELECT unnest(${TRANSFER_TABLES.map((t) => t.name)}::text[])`;
    await dropForeignKeys(tx);
    return this.#state(tx, false, undefined);
  }

  async #state(tx: TxSql, resumed: boolean, finishedAt: number | undefined): Promise<MigrationState> {
    const rows = await tx<{ name: string; last_key: string | null; copied: number; done: boolean }[]>`SELECT * FROM regmeta_migration_table`;
    const tables = new Map<string, TableProgress>();
    for (const spec of TRANSFER_TABLES) {
      const row = rows.find((r) => r.name === spec.name);
      tables.set(spec.name, {
        after: row?.last_key == null ? undefined : (JSON.parse(row.last_key) as KeyValues),
        copied: row?.copied ?? 0,
        done: row?.done ?? false,
      });
    }
    return { resumed: resumed && rows.some((r) => r.copied > 0 || r.done), finishedAt, tables };
  }

  /**
   * Copies `rows` of `spec` (the next in key order) and records `last` as the
   * table's high-water mark, in one transaction: both or neither.
   * @throws StoreError DATABASE_INVALID (detail.reason 'written-meanwhile': a
   * key it copies is taken); as translatePgError (a row PostgreSQL refuses, a lost connection).
   */
  async load(spec: TransferTable, rows: readonly TransferRow[], last: KeyValues): Promise<void> {
    await this.#run(async () => {
      try {
        await this.#copy(spec, rows, last);
      } catch (error) {
        // A key the copy brings is taken: something else wrote to the database while the migration was unfinished.
        if (sqlState(error) !== '23505') throw error;
        throw refused(
          this.location,
          `holds rows in ${spec.name} that this migration did not copy (${(error as Error).message}): it was written to while the migration was unfinished; migrate into an empty database`,
          'written-meanwhile',
        );
      }
    });
  }

  async #copy(spec: TransferTable, rows: readonly TransferRow[], last: KeyValues): Promise<void> {
    await this.#sql.begin(async (sql) => {
      const tx = sql as unknown as TxSql;
      // Names from TRANSFER_TABLES, a constant. COPY writes the given values into identity columns.
      const columns = spec.columns.join(', ');
      const writable = await tx.unsafe(`COPY ${spec.name} (${columns}) FROM STDIN`).writable();
      await pipeline(Readable.from([copyText(rows)]), writable);
      await tx`
        UPDATE regmeta_migration_table SET last_key = ${JSON.stringify(last)}, copied = copied + ${rows.length}
        WHERE name = ${spec.name}`;
    });
  }

  /** Records that every row of `table` is copied. */
  async tableDone(table: string): Promise<void> {
    await this.#run(() => this.#sql`UPDATE regmeta_migration_table SET done = true WHERE name = ${table}`);
  }

  /**
   * Ends the copy: adds back the foreign keys (each checked in one pass),
   * moves every identity sequence of the copied tables past the largest id
   * copied and the event log's head and pruned horizon to the source's, so that the next push
   * gets a fresh id and the next event the next seq; records the end.
   * Idempotent (never moves anything back).
   * @throws StoreError DATABASE_ERROR when a row names a parent that is not there (the source's own damage).
   */
  async finish(head: { seq: number; publishedAt: number; horizon?: number; horizonAt?: number | null }): Promise<void> {
    await this.#run(() =>
      this.#sql.begin(async (sql) => {
        const tx = sql as unknown as TxSql;
        const identities = await tx<{ table: string; column: string }[]>`
          SELECT table_name AS table, column_name AS column FROM information_schema.columns
          WHERE table_schema = current_schema() AND is_identity = 'YES' AND table_name IN ${tx(TRANSFER_TABLES.map((t) => t.name))}`;
        for (const { table, column } of identities) {
          await tx`
            SELECT setval(pg_get_serial_sequence(${table}, ${column}), max(${tx(column)}))
            FROM ${tx(table)} HAVING max(${tx(column)}) IS NOT NULL`;
        }
        await restoreForeignKeys(tx);
        await tx`
          UPDATE event_head SET seq = greatest(seq, ${head.seq}), published_at = greatest(published_at, ${head.publishedAt})`;
        // The pruned horizon goes along: a copied webhook cursor below it is reported as on the source.
        await tx`
          UPDATE event_horizon SET seq = greatest(seq, ${head.horizon ?? 0}), published_at = greatest(published_at, ${head.horizonAt ?? null}::bigint)`;
        await tx`UPDATE regmeta_migration SET finished_at = coalesce(finished_at, ${Date.now()})`;
      }),
    );
  }

  /** The digest of `spec`'s rows in key order, read in one snapshot; `onRows` hears of each batch read. */
  async digest(spec: TransferTable, onRows?: (n: number) => void): Promise<{ rows: number; sha256: string }> {
    const digest = new TableDigest();
    await this.#run(() =>
      this.#sql.begin('isolation level repeatable read read only', async (sql) => {
        const tx = sql as unknown as TxSql;
        const query = tx.unsafe(`SELECT ${spec.columns.join(', ')} FROM ${spec.name} ORDER BY ${spec.key.join(', ')}`);
        await query.values().cursor(2000, (rows) => {
          for (const row of rows as unknown as TransferRow[]) digest.add(row);
          onRows?.(rows.length);
        });
      }),
    );
    return { rows: digest.rows, sha256: digest.hex() };
  }

  /** Closes the connection, which also releases the migration's lock. */
  async close(): Promise<void> {
    await this.#sql.end({ timeout: 5 }).catch(() => {});
  }

  async #run<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw translatePgError(error, this.location);
    }
  }
}
