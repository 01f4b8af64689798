// Opening what a command works on, in one place: the metadata (the SQLite
// file in the data directory, or the PostgreSQL database) behind the store's
// asynchronous contract, and the blobs (in the data directory or a bucket), at the
// Location that config/location.ts reads. A file that is missing or not a
// regmeta store is never created or altered unless asked for.

import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBlobStore, type BlobStore, type BlobStoreOptions } from '../blobstore/index.js';
import { DATABASE_FILE } from '../server/index.js';
import { asyncStore, openPostgresStore, openStore, probeDatabase, StoreError, type DatabaseKind, type Store, type StoreOptions, type StorePolicy } from '../store/index.js';
import type { Location } from './config/location.js';
import { fromStoreError, UNFINISHED_MIGRATION_HINT } from './errors.js';
import { CliError, Exit } from './exit.js';

export type { Location } from './config/location.js';

/** The metadata's file in a data directory, when it is not on PostgreSQL. */
export function databaseFile(dir: string): string {
  return join(dir, DATABASE_FILE);
}

/**
 * Checks that `file` exists and is a regmeta database, before the store's
 * read-write connection could create or migrate it, by the store's own
 * probe. `allowEmpty` (import, serve) also accepts an empty file or empty
 * SQLite database, which the store then sets up.
 * @throws CliError DATABASE when it is missing, empty, not SQLite or another program's.
 */
export function checkDatabaseFile(file: string, options: { allowEmpty?: boolean } = {}): void {
  let size: number;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) throw new CliError(Exit.DATABASE, `${file} is not a file`, 'point --data at the registry data directory');
    size = stat.size;
  } catch (error) {
    if (error instanceof CliError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new CliError(Exit.DATABASE, `no database at ${file}`, "pass --data <dir> (or set REGMETA_DATA), or create one with 'regmeta import'");
    }
    throw new CliError(Exit.DATABASE, `cannot read ${file}: ${code ?? (error as Error).message}`, 'check the path and its permissions');
  }
  const foreign = (what: string) => new CliError(Exit.DATABASE, `${file} is ${what}, not a regmeta store`, 'point --data at the registry data directory');
  if (size === 0) {
    if (options.allowEmpty) return;
    throw foreign('an empty file');
  }
  let kind: DatabaseKind;
  try {
    ({ kind } = probeDatabase(file));
  } catch (error) {
    if (error instanceof StoreError && error.code === 'DATABASE_INVALID') throw foreign('not a SQLite database');
    // A SQLite file that is damaged, busy or unreadable: the store's words for it.
    throw error instanceof StoreError ? fromStoreError(error) : error;
  }
  if (kind === 'regmeta') return;
  if (kind === 'empty' && options.allowEmpty) return;
  throw foreign(kind === 'empty' ? 'an empty SQLite database' : 'a SQLite database of another program');
}

/** How a command opens the metadata (openMetadata). */
interface MetadataOptions {
  /** Inspections (check, stats, notify, backup): nothing created, migrated or written. */
  readOnly?: boolean;
  /** Create the store when it is missing (import, serve); a foreign or non-empty non-store file is still refused. */
  create?: boolean;
  /** SQLite's durability: 'normal' for bulk writers that can simply be run again (import). */
  durability?: StoreOptions['durability'];
  /** What the store enforces in its transactions (serve: the immutable tags and the quotas of the config). */
  policy?: StorePolicy;
}

/**
 * The one place a command opens the metadata it reads or writes: the
 * PostgreSQL database of `where.database`, or else the SQLite database
 * <data>/metadata.db, which must exist and be a regmeta store unless
 * `options.create`; either behind the asynchronous contract every backend
 * implements. On PostgreSQL the schema is created or migrated by whoever
 * opens it first for writing (an empty database only; another program's is
 * refused); a read-only open sets nothing up and its transactions cannot write.
 * @throws CliError DATABASE (missing, not a regmeta store, a server
 * unreachable or refusing), IO (the data directory cannot be created);
 * StoreError from openStore.
 */
export async function openMetadata(where: Location, options: MetadataOptions = {}): Promise<Store> {
  const file = databaseFile(where.data);
  if (where.database === undefined && !options.create) checkDatabaseFile(file);
  else if (where.database === undefined && existsSync(file)) checkDatabaseFile(file, { allowEmpty: true });
  if (options.create) {
    try {
      mkdirSync(where.data, { recursive: true });
    } catch (error) {
      throw new CliError(Exit.IO, `cannot create the data directory ${where.data}: ${(error as NodeJS.ErrnoException).code}`, 'pass --data <dir>');
    }
  }
  if (where.database !== undefined) return openPostgres(where.database, options.readOnly === true, options.policy);
  const storeOptions: StoreOptions = {};
  if (options.policy !== undefined) storeOptions.policy = options.policy;
  if (options.readOnly) storeOptions.readOnly = true;
  if (options.durability !== undefined) storeOptions.durability = options.durability;
  return asyncStore(openStore(file, storeOptions));
}

/**
 * The PostgreSQL store at `url`.
 * @throws CliError DATABASE, one line with the URL's password masked, when
 * the server cannot be reached or the database is not (or too new) a regmeta store.
 */
async function openPostgres(url: string, readOnly: boolean, policy: StorePolicy | undefined): Promise<Store> {
  try {
    return await openPostgresStore(url, policy === undefined ? { readOnly } : { readOnly, policy });
  } catch (error) {
    if (!(error instanceof StoreError)) throw error;
    const hint =
      error.code === 'DATABASE_TOO_NEW'
        ? 'use a newer regmeta'
        : error.code === 'DATABASE_INCOMPLETE'
          ? UNFINISHED_MIGRATION_HINT
          : 'check --database (or REGMETA_DATABASE) and that the server is up and takes connections';
    throw new CliError(Exit.DATABASE, `cannot open the metadata: ${error.message}`, hint);
  }
}

/**
 * The blob store of the registry at `where`: its bucket, or <data>/blobs and
 * <data>/uploads. Opening it touches no storage.
 * @throws TypeError from createBlobStore for S3 options it refuses.
 */
export function openBlobs(where: Location, options?: BlobStoreOptions): BlobStore {
  return createBlobStore(where.storage === undefined ? { directory: where.data } : { s3: where.storage }, options);
}

/**
 * The refusal of what needs a copy of the database (`what`: backup, a dry
 * run's scratch copy) when the store makes none (PostgreSQL's UNSUPPORTED).
 */
export function copyRefused(error: unknown, what: string, hint: string): unknown {
  if (!(error instanceof StoreError) || error.code !== 'UNSUPPORTED') return error;
  return new CliError(Exit.USAGE, `${what} works on the SQLite store only, not with --database`, hint);
}

/**
 * A private copy of the metadata at `where` (an empty store when there is
 * none yet), made by the store's backup in a scratch directory, for the dry
 * runs of gc and import: the real sweep or import runs on it, exact, and
 * changes nothing. `remove` deletes the copy, once the store on it is closed.
 * @throws CliError USAGE (`refusal`: the store makes no copies), DATABASE;
 * StoreError as openMetadata and Store.backup.
 */
export async function scratchCopy(where: Location, prefix: string, refusal: { what: string; hint: string }): Promise<{ store: Store; remove(): void }> {
  const scratch = mkdtempSync(join(tmpdir(), prefix));
  const remove = () => rmSync(scratch, { recursive: true, force: true });
  try {
    const none = where.database === undefined && !existsSync(databaseFile(where.data));
    if (!none) {
      const source = await openMetadata(where, { readOnly: true });
      try {
        await source.backup(databaseFile(scratch));
      } catch (error) {
        throw copyRefused(error, refusal.what, refusal.hint);
      } finally {
        await source.close();
      }
    }
    return { store: await openMetadata({ data: scratch }, { create: true, durability: 'normal' }), remove };
  } catch (error) {
    remove();
    throw error;
  }
}
