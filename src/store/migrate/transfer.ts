// What a migration from SQLite to PostgreSQL copies: the tables of the
// metadata, in foreign-key order, each with its columns and its key (the order
// rows are copied in, and the high-water mark a resumed copy starts after),
// and the two encodings both sides share: PostgreSQL's COPY text format, and
// the digest of a table's rows in key order that verifies the copy.
//
// Tables not listed here are not copied (upload sessions are in flight, and
// belong to the server that holds their bytes); a column not listed here
// makes the copy refuse, so that a schema change cannot drop data silently.

import { createHash, type Hash } from 'node:crypto';
import { StoreError } from '../errors.js';

/** A table to copy: its columns in the order rows carry them, and its primary key. */
export interface TransferTable {
  readonly name: string;
  readonly columns: readonly string[];
  readonly key: readonly string[];
  /** Columns added by a later schema version: a source written before it lacks them, and they are read as NULL. */
  readonly added: readonly string[];
}

/** A value as both databases return it: integers as numbers, BLOB/bytea as a Buffer. */
type TransferValue = string | number | Buffer | null;
/** A row, its values in the order of its table's columns. */
export type TransferRow = readonly TransferValue[];
/** The key values of a row: where a resumed copy starts after. */
export type KeyValues = readonly (string | number)[];

const table = (name: string, columns: string, key: string, added = ''): TransferTable => ({
  name,
  columns: columns.split(' '),
  key: key.split(' '),
  added: added === '' ? [] : added.split(' '),
});

/** Every table of the metadata, parents before the tables whose foreign keys name them. */
export const TRANSFER_TABLES: readonly TransferTable[] = [
  table('repository', 'id name created_at pulled_at', 'id', 'pulled_at'),
  table('manifest', 'id repository_id digest media_type artifact_type annotations subject size created_at pushed_at pulled_at pull_count', 'id', 'pulled_at pull_count'),
  table('manifest_payload', 'manifest_id payload', 'manifest_id'),
  table('tag', 'repository_id name manifest_id created_at updated_at pulled_at pull_count', 'repository_id name', 'pulled_at pull_count'),
  table('tag_history', 'id repository_id tag digest tagged_at', 'id'),
  table('blob', 'digest size created_at', 'digest'),
  table('blob_link', 'repository_id digest linked_at', 'repository_id digest'),
  table('manifest_blob', 'manifest_id digest', 'manifest_id digest'),
  table('manifest_child', 'repository_id parent_id digest', 'parent_id digest'),
  table('event', 'seq id published_at actor type object_type object_id repository tag digest previous_digest count reason', 'seq', 'count reason'),
  // The webhook cursors name events by seq, which the copy keeps: delivery
  // from the replicas goes on where the SQLite server's stopped.
  table('notification_cursor', 'endpoint seq published_at event_id created_at delivered_at failures last_error last_failure_at', 'endpoint'),
];

/** The key values of `row` in `table`. */
export function keyOf(spec: TransferTable, row: TransferRow): KeyValues {
  return spec.key.map((column) => row[spec.columns.indexOf(column)] as string | number);
}

/**
 * Refuses a table whose columns are not exactly those `spec` lists (its
 * later additions aside, which an older store lacks).
 * @throws StoreError DATABASE_INVALID.
 */
export function checkColumns(spec: TransferTable, found: readonly string[], location: string): void {
  const missing = spec.columns.filter((column) => !found.includes(column) && !spec.added.includes(column));
  const extra = found.filter((column) => !spec.columns.includes(column));
  if (missing.length === 0 && extra.length === 0) return;
  const what = [...missing.map((c) => `no column ${c}`), ...extra.map((c) => `a column ${c} this regmeta does not know`)].join(', ');
  throw new StoreError('DATABASE_INVALID', `${location}: table ${spec.name} has ${what}: migrate with the regmeta that wrote it`);
}

// COPY's text format: a backslash, tab, newline or carriage return in a value is escaped.
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

function copyValue(value: TransferValue): string {
  if (value === null) return '\\N';
  if (typeof value === 'number') return String(value);
  // bytea in hex, its own backslash escaped for COPY.
  if (Buffer.isBuffer(value)) return `\\\\x${value.toString('hex')}`;
  return value.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]);
}

/** `rows` as the data of `COPY … FROM STDIN` in the text format. */
export function copyText(rows: readonly TransferRow[]): string {
  let text = '';
  for (const row of rows) text += `${row.map(copyValue).join('\t')}\n`;
  return text;
}

const TAG_NULL = Buffer.from([0]);

/**
 * The SHA-256 of a table's rows in key order: each value framed by its type
 * and length, so that no two different rows (or splits of rows) hash alike.
 */
export class TableDigest {
  readonly #hash: Hash = createHash('sha256');
  rows = 0;

  add(row: TransferRow): void {
    const hash = this.#hash;
    for (const value of row) {
      if (value === null) hash.update(TAG_NULL);
      else if (typeof value === 'number') hash.update(`n${value};`);
      else {
        const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8');
        hash.update(`${Buffer.isBuffer(value) ? 'b' : 's'}${bytes.length}:`);
        hash.update(bytes);
      }
    }
    this.rows++;
  }

  hex(): string {
    return this.#hash.copy().digest('hex');
  }
}
