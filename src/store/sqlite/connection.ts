// Connection setup in one place: every pragma with its reason, a check that
// WAL really took, and the schema migration.

import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { StoreError } from '../errors.js';
import { sqlitePrimaryCode, translateError } from './errors.js';
import { DEFAULT_BUSY_TIMEOUT } from '../limits.js';
import { MIGRATION_STEPS } from './migrations.js';
import type { StoreOptions } from '../types.js';

/** The schema version this code writes; schema.sql ends by setting it. */
const SCHEMA_VERSION = 7;
/**
 * The oldest schema a read-only open reads without migrating: version 2 only
 * adds the webhook cursors, so check, stats and the listings work on a store
 * that an older regmeta wrote and no newer one has opened for writing yet.
 */
const READABLE_FROM = 1;
/** 'rgmt', set by schema.sql, so another program's database is refused rather than altered. */
const APPLICATION_ID = 0x72676d74;

// A new file gets schema.sql, always the newest version, whole; an older
// file gets the steps of migrations.ts from its version up.
const schemaSql = () => readFileSync(new URL('../../../schema.sql', import.meta.url), 'utf8');

/**
 * Runs `fn` again while SQLite answers SQLITE_BUSY without having waited (it
 * does so for a journal-mode switch, and to avoid deadlocks), until `timeout`
 * ms have passed. `fn` must be safe to repeat.
 */
export function retryBusy<T>(timeout: number, fn: () => T): T {
  // The deadline is set at the first failure: the common path costs a try.
  let deadline = Infinity;
  for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
    try {
      return fn();
    } catch (error) {
      if (sqlitePrimaryCode(error) !== 'SQLITE_BUSY') throw error;
      if (deadline === Infinity) deadline = Date.now() + timeout;
      else if (Date.now() >= deadline) throw error;
      Atomics.wait(SLEEPER, 0, 0, wait);
    }
  }
}

// Atomics.wait on a private cell is a synchronous sleep: the store's API is
// synchronous, so a retry cannot yield to the event loop.
const SLEEPER = new Int32Array(new SharedArrayBuffer(4));

/**
 * @internal Opens `file`, configures the connection and brings the schema up to date.
 * With `options.readOnly`, opens an existing store for reading only: nothing
 * is created, migrated or written, not even the journal mode.
 * @throws StoreError DATABASE_INVALID (not a database, another program's,
 * or, read-only, not a regmeta store of this schema version yet),
 * DATABASE_TOO_NEW, DATABASE_READONLY, DATABASE_ERROR.
 */
export function openDatabase(file: string, options: StoreOptions = {}): Database.Database {
  const busyTimeout = options.busyTimeout ?? DEFAULT_BUSY_TIMEOUT;
  let db: Database.Database | undefined;
  try {
    // better-sqlite3's `timeout` is SQLite's busy_timeout: a write that finds
    // the file locked waits this long before SQLITE_BUSY, so that several
    // processes can share the file without the caller ever seeing BUSY.
    db = new Database(file, options.readOnly ? { readonly: true, fileMustExist: true, timeout: busyTimeout } : { timeout: busyTimeout });
    const opened = db;
    // Several processes may open the same new file at once; the journal-mode
    // switch and the first schema write can meet a lock SQLite does not wait
    // on, so the whole setup (idempotent) is retried.
    retryBusy(busyTimeout, () => {
      // Before any pragma that writes: switching to WAL rewrites the file
      // header, and a file that is not ours must be left as it was. One read
      // transaction, so that another process's migration committing between
      // the header and the table count cannot look like a foreign database.
      const found = opened.transaction(() => header(opened, true)).deferred();
      refuse(file, found, options.readOnly === true);
      if (!options.readOnly) configureWriter(opened, file, options);
      tune(opened);
      if (!options.readOnly) migrate(opened, file);
    });
    return db;
  } catch (error) {
    db?.close();
    throw translateError(error, file);
  }
}

/**
 * What the SQLite database `file` is, read without writing anything: a
 * regmeta store, an empty database (which openStore would set up), or
 * another program's; and its schema version.
 * @throws StoreError DATABASE_INVALID (not a SQLite database), DATABASE_CORRUPT,
 * DATABASE_BUSY, DATABASE_ERROR (missing, unreadable).
 */
export function probeDatabase(file: string): { kind: DatabaseKind; version: number } {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true, timeout: DEFAULT_BUSY_TIMEOUT });
    const opened = db;
    const found = retryBusy(DEFAULT_BUSY_TIMEOUT, () => opened.transaction(() => header(opened, true)).deferred());
    return { kind: kindOf(found), version: found.version };
  } catch (error) {
    throw translateError(error, file);
  } finally {
    db?.close();
  }
}

/** What a database is to regmeta: its own, empty (to be set up), or another program's. */
export type DatabaseKind = 'regmeta' | 'empty' | 'foreign';

interface Header {
  version: number;
  applicationId: number;
  /** Tables that are not SQLite's own; read only where the kind is decided. */
  tables?: number;
}

function header(db: Database.Database, withTables: boolean): Header {
  const found: Header = {
    version: db.pragma('user_version', { simple: true }) as number,
    applicationId: db.pragma('application_id', { simple: true }) as number,
  };
  if (withTables) found.tables = db.prepare("SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'").pluck().get() as number;
  return found;
}

/**
 * The one rule for whose a database is: ours by application_id (schema.sql
 * sets it with the first tables); unmarked and without tables, empty;
 * anything else another program's, to be left as it is.
 */
function kindOf({ applicationId, tables }: Header): DatabaseKind {
  if (applicationId === APPLICATION_ID) return 'regmeta';
  if (applicationId !== 0 || tables !== 0) return 'foreign';
  return 'empty';
}

/**
 * Refuses another program's database and a newer schema; read-only, also
 * an empty or older one, which only a migration could make readable.
 * @throws StoreError DATABASE_INVALID, DATABASE_TOO_NEW.
 */
function refuse(file: string, found: Header, readOnly: boolean): void {
  const kind = kindOf(found);
  if (kind === 'foreign') {
    throw new StoreError('DATABASE_INVALID', `${file} is another program's SQLite database, not a regmeta store`);
  }
  if (found.version > SCHEMA_VERSION) {
    throw new StoreError(
      'DATABASE_TOO_NEW',
      `${file} has schema version ${found.version}, newer than this regmeta's ${SCHEMA_VERSION}: upgrade regmeta`,
    );
  }
  if (readOnly && (kind === 'empty' || found.version < READABLE_FROM)) {
    throw new StoreError(
      'DATABASE_INVALID',
      `${file} is not a regmeta store of schema version ${READABLE_FROM} or later (it has ${found.version}), and a read-only open does not set one up`,
    );
  }
}

function configureWriter(db: Database.Database, file: string, options: StoreOptions): void {
  // WAL: readers never block the writer nor the writer readers, and a commit
  // is one append, which is what lets several processes share the file.
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (mode !== 'wal' && !(db.memory && mode === 'memory')) {
    // Litestream's lesson: a pragma that silently did not take (a network
    // filesystem, a read-only directory) must not pass for WAL.
    throw new StoreError('DATABASE_ERROR', `${file}: could not switch to WAL (journal_mode is ${String(mode)})`);
  }
  // In WAL mode FULL syncs the log on every commit: no acknowledged write is
  // lost on power loss. NORMAL syncs only at checkpoints: it may lose the
  // last commits on power loss, never the file's integrity.
  db.pragma(`synchronous = ${options.durability === 'normal' ? 'NORMAL' : 'FULL'}`);
}

/** The settings of every connection, reader or writer; none of them writes to the file. */
function tune(db: Database.Database): void {
  // SQLite leaves foreign keys off for compatibility; the schema relies on them.
  db.pragma('foreign_keys = ON');
  // Sorts and temporary indexes stay in memory rather than in temp files.
  db.pragma('temp_store = MEMORY');
  // Reads through a memory map skip a read() and a copy per page, which keeps
  // random reads of a large store close to those of a small one (npm run
  // bench). The trade-off, as in Rails' defaults: an I/O error on
  // the file kills the process (SIGBUS) instead of failing one call.
  db.pragma('mmap_size = 268435456');
}

function migrate(db: Database.Database, file: string): void {
  // Fast path without the write lock: an up-to-date file needs nothing.
  if (header(db, false).version === SCHEMA_VERSION) return;

  // The header is read again under the write lock: of several processes
  // opening the same new file, only the first one migrates.
  db.transaction(() => {
    const found = header(db, true);
    refuse(file, found, false);
    if (found.version === 0) db.exec(schemaSql());
    else for (let version = found.version; version < SCHEMA_VERSION; version++) db.exec(MIGRATION_STEPS[version]!);
  }).immediate();
}

/**
 * @internal Prepares every statement of `sql` on `db`, keyed as given; those named in
 * `plucked` return their first column rather than a row object.
 */
export function prepareAll<K extends string>(
  db: Database.Database,
  sql: Readonly<Record<K, string>>,
  plucked: readonly NoInfer<K>[] = [],
): Record<K, Database.Statement> {
  const statements = {} as Record<K, Database.Statement>;
  for (const key of Object.keys(sql) as K[]) {
    const statement = db.prepare(sql[key]);
    statements[key] = plucked.includes(key) ? statement.pluck() : statement;
  }
  return statements;
}
