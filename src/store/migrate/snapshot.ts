// The raw rows of a SQLite store, for its migration to PostgreSQL: one
// read-only connection of the store's own making, one read transaction held
// from the first read to close(), so that every page comes from one snapshot
// however long the copy takes and whatever a running server writes meanwhile.

import type Database from 'better-sqlite3';
import { openDatabase } from '../sqlite/connection.js';
import { translateError } from '../sqlite/errors.js';
import { checkColumns, keyOf, TableDigest, TRANSFER_TABLES, type KeyValues, type TransferRow, type TransferTable } from './transfer.js';

/** A page of rows, and the key of its last row (undefined when the table has no more). */
interface RowPage {
  rows: TransferRow[];
  last: KeyValues | undefined;
}

/** How much one page may hold: rows, and bytes of BLOB values (manifests can be megabytes). */
interface PageLimits {
  rows: number;
  bytes: number;
}

interface TableReader {
  spec: TransferTable;
  present: boolean;
  first?: Database.Statement;
  after?: Database.Statement;
  count?: Database.Statement;
}

/** The statements that page through `spec` in key order: from the start, and after a key. */
function readerOf(db: Database.Database, spec: TransferTable): TableReader {
  const present = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = :name").get({ name: spec.name }) !== undefined;
  // A version-1 store has no webhook cursors yet: the table is read as empty.
  if (!present) return { spec, present };
  const found = (db.prepare('SELECT name FROM pragma_table_info(:name)').all({ name: spec.name }) as { name: string }[]).map((c) => c.name);
  checkColumns(spec, found, db.name);
  // Names from TRANSFER_TABLES, a constant; values are parameters.
  const columns = spec.columns.map((column) => (found.includes(column) ? column : `${spec.fill?.[column] ?? 'NULL'} AS ${column}`)).join(', ');
  const order = spec.key.join(', ');
  const bound = spec.key.map((_, i) => `:k${i}`).join(', ');
  const after = spec.key.length === 1 ? `${order} > ${bound}` : `(${order}) > (${bound})`;
  return {
    spec,
    present,
    first: db.prepare(`SELECT ${columns} FROM ${spec.name} ORDER BY ${order} LIMIT :limit`).raw(true),
    after: db.prepare(`SELECT ${columns} FROM ${spec.name} WHERE ${after} ORDER BY ${order} LIMIT :limit`).raw(true),
    count: db.prepare(`SELECT count(*) FROM ${spec.name}`).pluck(),
  };
}

/** Tables that otherTables does not report as left behind (see there). */
const NOT_COPIED: ReadonlySet<string> = new Set(['blob_lock', 'job_lease', 'event_horizon']);

/** A consistent, read-only view of a SQLite store's tables. */
export class StoreSnapshot {
  readonly #db: Database.Database;
  readonly #readers: Map<string, TableReader>;

  /** @throws StoreError as openDatabase (read-only), and DATABASE_INVALID for a table of unknown columns. */
  constructor(readonly file: string) {
    this.#db = openDatabase(file, { readOnly: true });
    try {
      this.#readers = new Map(TRANSFER_TABLES.map((spec) => [spec.name, readerOf(this.#db, spec)]));
      // The snapshot starts with the transaction's first read, which is the next statement.
      this.#db.exec('BEGIN');
      this.#db.prepare('SELECT count(*) FROM repository').get();
    } catch (error) {
      this.#db.close();
      throw translateError(error, file);
    }
  }

  /** The tables copied, in the order they are copied in. */
  get tables(): readonly TransferTable[] {
    return TRANSFER_TABLES;
  }

  /**
   * What names this store among others: the id of its first event (a UUIDv7,
   * which no other store has), or its file for a store that has none yet.
   */
  identity(): string {
    const first = this.#read(() => this.#db.prepare('SELECT id FROM event ORDER BY seq LIMIT 1').pluck().get() as string | undefined);
    return first === undefined ? `file:${this.file}` : `event:${first}`;
  }

  /**
   * What changes whenever the store is written: the head of its event log
   * and the counts of the rows that change without an event (blob links).
   */
  fingerprint(): string {
    const head = this.eventHead();
    return `event ${head.seq}, ${this.count('blob')} blobs, ${this.count('blob_link')} blob links`;
  }

  /** The rows of `table`. */
  count(table: string): number {
    const reader = this.#reader(table);
    if (!reader.present) return 0;
    return this.#read(() => reader.count!.get() as number);
  }

  /**
   * The event log's head: the last seq ever handed out (AUTOINCREMENT's,
   * which pruned events do not lower) and the newest time; and its pruned
   * horizon (0 and null in a store older than version 7, which never pruned).
   */
  eventHead(): { seq: number; publishedAt: number; horizon: number; horizonAt: number | null } {
    return this.#read(() => {
      const row = this.#db
        .prepare(`
          SELECT
            max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'event'), 0), coalesce(max(seq), 0)) AS seq,
            coalesce(max(published_at), 0) AS publishedAt
          FROM event`)
        .get() as { seq: number; publishedAt: number };
      const pruned = this.#db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'event_horizon'").get() !== undefined;
      const horizon = pruned ? (this.#db.prepare('SELECT seq, published_at AS at FROM event_horizon').get() as { seq: number; at: number | null } | undefined) : undefined;
      return { ...row, horizon: horizon?.seq ?? 0, horizonAt: horizon?.at ?? null };
    });
  }

  /**
   * The tables of the file that are not copied, with their row counts
   * (upload sessions, say); not the digest locks, which live only while
   * an action runs and which PostgreSQL keeps as advisory locks, nor the
   * job leases, which live only while a job is scheduled, nor the pruned
   * horizon, which goes with the event log's head (eventHead).
   */
  otherTables(): { table: string; rows: number }[] {
    return this.#read(() => {
      const names = this.#db
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite%' ORDER BY name")
        .pluck()
        .all() as string[];
      return names
        .filter((name) => !this.#readers.has(name) && !NOT_COPIED.has(name))
        .map((name) => ({ table: name, rows: this.#db.prepare(`SELECT count(*) FROM "${name.replace(/"/g, '""')}"`).pluck().get() as number }));
    });
  }

  /** The rows of `table` after the key `after` (from the first when undefined), in key order, within `limits`. */
  page(table: string, after: KeyValues | undefined, limits: PageLimits): RowPage {
    const reader = this.#reader(table);
    if (!reader.present) return { rows: [], last: undefined };
    const statement = after === undefined ? reader.first! : reader.after!;
    const params: Record<string, unknown> = { limit: limits.rows };
    after?.forEach((value, i) => (params[`k${i}`] = value));
    return this.#read(() => {
      const rows: TransferRow[] = [];
      let bytes = 0;
      for (const row of statement.iterate(params) as IterableIterator<TransferRow>) {
        rows.push(row);
        for (const value of row) if (Buffer.isBuffer(value)) bytes += value.length;
        // A page ends early at its byte budget; the iterator's return() ends the statement.
        if (bytes >= limits.bytes) break;
      }
      return { rows, last: rows.length === 0 ? undefined : keyOf(reader.spec, rows[rows.length - 1]) };
    });
  }

  /** The digest of `table`'s rows in key order (TableDigest); `onRows` hears of each page read. */
  digest(table: string, onRows?: (n: number) => void): { rows: number; sha256: string } {
    const digest = new TableDigest();
    let after: KeyValues | undefined;
    for (;;) {
      const page = this.page(table, after, { rows: 5000, bytes: 16 << 20 });
      for (const row of page.rows) digest.add(row);
      onRows?.(page.rows.length);
      if (page.last === undefined) break;
      after = page.last;
    }
    return { rows: digest.rows, sha256: digest.hex() };
  }

  /** Ends the read transaction and closes the connection. */
  close(): void {
    if (!this.#db.open) return;
    if (this.#db.inTransaction) this.#db.exec('COMMIT');
    this.#db.close();
  }

  #reader(table: string): TableReader {
    const reader = this.#readers.get(table);
    if (reader === undefined) throw new Error(`no table ${table} is copied`);
    return reader;
  }

  #read<T>(fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      throw translateError(error, this.file);
    }
  }
}
