// What every subcommand shares: argument parsing, exit codes, errors that
// print as one line, and opening the metadata (openMetadata, the one place)
// without ever creating or altering a file that is missing or not ours.

import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type Database from 'better-sqlite3';
import { asyncStore, openStore, probeDatabase, StoreError, type Store, type DatabaseKind, type StoreOptions } from '../index.js';
import { isPostgresUrl, openDatabase, openPostgresStore, sqlitePrimaryCode, translateError } from '../store/index.js';
import { durationMs } from './units.js';

export { counted, durationMs, formatBytes, formatDuration } from './units.js';
export { printJson, println, table } from './output.js';

/** The exit codes of every subcommand; main.ts prints this table in its usage. */
export const Exit = {
  OK: 0,
  /** Problems found: check failed, import skipped something, a lookup found nothing to print. */
  PROBLEMS: 1,
  /** Bad arguments: unknown subcommand or option, malformed name, tag, digest, duration or database URL. */
  USAGE: 2,
  /** The database is missing, not a regmeta store, too new, damaged, busy or unwritable; its server cannot be reached. */
  DATABASE: 3,
  /** The repository, tag, manifest or blob asked for is not there. */
  NOT_FOUND: 4,
  /** A file or directory other than the database could not be read or written. */
  IO: 5,
  /** A bug: reported in one line all the same. */
  INTERNAL: 70,
} as const;

/**
 * An error that main() prints as one line (with a hint) and turns into an
 * exit code; `more` are further problems found at once (a config file's),
 * printed one line each after it, the hint after the last.
 */
export class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
    readonly hint?: string,
    readonly more: readonly string[] = [],
  ) {
    super(message);
  }
}

/** One option as parseArgs reads it. */
export interface OptionConfig {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
}

/**
 * A subcommand: its name, its --help text, its table (the options it parses,
 * which --help lists, and the exit codes --help names) and what it runs.
 * test/cli/help.test.ts holds --help and the operator docs to the table.
 */
export interface Command {
  name: string;
  usage: string;
  /** The options it takes, as it parses them (besides --help). */
  options: Readonly<Record<string, OptionConfig>>;
  /** The exit codes its --help names, besides 0, each with what it means here; the rest are Exit's shared meanings. */
  exits: Readonly<Record<number, string>>;
  /** Resolves to the exit code. @throws CliError, StoreError. */
  run(argv: string[]): Promise<number> | number;
}

/** The options every subcommand that touches the database takes. */
export const DATA_OPTION = { data: { type: 'string' }, database: { type: 'string' } } as const;
export const JSON_OPTION = { json: { type: 'boolean' } } as const;

/** --data in help, for what works on the SQLite file only (backup). */
export const SQLITE_DATA_HELP = `  --data <dir>   the registry's data directory, holding metadata.db
                 (default: $REGMETA_DATA, else ./data)`;

export const DATA_HELP = `${SQLITE_DATA_HELP}
  --database <url>
                 the metadata on PostgreSQL (postgres://user:password@host/db;
                 default: $REGMETA_DATABASE, else the SQLite file in --data);
                 --data then holds only the blobs`;

/**
 * parseArgs, strict, with `--help` built in: returns undefined after printing
 * the usage, so the caller returns 0.
 * @throws CliError USAGE on an unknown option, a missing value or a wrong number of positionals.
 */
export function parse<T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  command: Pick<Command, 'name' | 'usage'>,
  options: T,
  positionals: { min: number; max: number },
) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (error) {
    // Node's message goes on about '--'; its first sentence is the point.
    throw usageError(command.name, (error as Error).message.split('. ')[0]);
  }
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(command.usage.endsWith('\n') ? command.usage : `${command.usage}\n`);
    return undefined;
  }
  const count = parsed.positionals.length;
  if (count < positionals.min) throw usageError(command.name, 'missing argument');
  if (count > positionals.max) throw usageError(command.name, `unexpected argument ${JSON.stringify(parsed.positionals[positionals.max])}`);
  return parsed as { values: { [K in keyof T]?: T[K] extends { type: 'boolean' } ? boolean : string }; positionals: string[] };
}

export function usageError(command: string, message: string): CliError {
  return new CliError(Exit.USAGE, message, `see 'regmeta ${command} --help'`);
}

/** The data directory: --data, else $REGMETA_DATA, else ./data. */
export function dataDir(values: { data?: string }): string {
  return resolve(values.data ?? process.env.REGMETA_DATA ?? 'data');
}

/**
 * The PostgreSQL database's URL: --database, else $REGMETA_DATABASE (empty
 * counts as unset); undefined for the SQLite file under --data.
 * @throws CliError USAGE when it is given but is not a postgres:// URL.
 */
export function databaseUrl(values: { database?: string }): string | undefined {
  const url = values.database ?? (process.env.REGMETA_DATABASE || undefined);
  if (url === undefined || isPostgresUrl(url)) return url;
  // The URL may hold a password: say what is wrong with it, not what it is.
  const why = URL.canParse(url) ? `its scheme is ${new URL(url).protocol}` : 'it does not parse as a URL';
  throw new CliError(Exit.USAGE, `--database (or REGMETA_DATABASE) is not a PostgreSQL URL: ${why}`, 'like postgres://user:password@host:5432/regmeta');
}

export function databaseFile(dir: string): string {
  return join(dir, 'metadata.db');
}

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

/**
 * Checks that `file` exists and is a regmeta database, before the store's
 * read-write connection could create or migrate it. The header tells SQLite
 * from anything else; the application id has to be read through SQLite,
 * because in WAL mode it may sit in the log rather than in the file.
 * `allowEmpty` (import) also accepts an empty file or empty SQLite database,
 * which the store then sets up.
 * @throws CliError DATABASE when it is missing, empty, not SQLite or another program's.
 */
export function checkDatabaseFile(file: string, options: { allowEmpty?: boolean } = {}): void {
  const header = Buffer.alloc(16);
  let read = 0;
  try {
    if (!statSync(file).isFile()) throw new CliError(Exit.DATABASE, `${file} is not a file`, 'point --data at the registry data directory');
    const fd = openSync(file, 'r');
    try {
      read = readSync(fd, header, 0, 16, 0);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    if (error instanceof CliError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new CliError(Exit.DATABASE, `no database at ${file}`, "pass --data <dir> (or set REGMETA_DATA), or create one with 'regmeta import'");
    }
    throw new CliError(Exit.DATABASE, `cannot read ${file}: ${code ?? (error as Error).message}`, 'check the path and its permissions');
  }
  const foreign = (what: string) => new CliError(Exit.DATABASE, `${file} is ${what}, not a regmeta store`, 'point --data at the registry data directory');
  if (read === 0) {
    if (options.allowEmpty) return;
    throw foreign('an empty file');
  }
  if (read < 16 || !header.equals(SQLITE_MAGIC)) throw foreign('not a SQLite database');
  let kind: DatabaseKind;
  try {
    ({ kind } = probeDatabase(file));
  } catch (error) {
    if (error instanceof StoreError && error.code === 'DATABASE_INVALID') throw foreign('not a readable SQLite database');
    // A SQLite file that is damaged, busy or unreadable: the store's words for it.
    throw error instanceof StoreError ? fromStoreError(error) : error;
  }
  if (kind === 'regmeta') return;
  if (kind === 'empty' && options.allowEmpty) return;
  throw foreign(kind === 'empty' ? 'an empty SQLite database' : 'a SQLite database of another program');
}

/** How a command opens the metadata (openMetadata). */
export interface MetadataOptions {
  /** Inspections (check, stats, notify): nothing created, migrated or written. */
  readOnly?: boolean;
  /** Create the store when it is missing (import, serve); a foreign or non-empty non-store file is still refused. */
  create?: boolean;
  /** SQLite's durability: 'normal' for bulk writers that can simply be run again (import). */
  durability?: StoreOptions['durability'];
}

/**
 * The one place a command opens the metadata it reads or writes: the
 * PostgreSQL database of --database (else $REGMETA_DATABASE), or else the
 * SQLite database <data>/metadata.db (--data, else $REGMETA_DATA, else
 * ./data), which must exist and be a regmeta store unless `options.create`;
 * either behind the asynchronous contract every backend implements.
 * On PostgreSQL the schema is created or migrated by whoever opens it first
 * for writing (an empty database only; another program's is refused); a
 * read-only open sets nothing up and its transactions cannot write.
 * @throws CliError USAGE (a --database that is no postgres:// URL), DATABASE
 * (missing, not a regmeta store, a server unreachable or refusing), IO (the
 * data directory cannot be created); StoreError from openStore.
 */
export async function openMetadata(values: { data?: string; database?: string }, options: MetadataOptions = {}): Promise<Store> {
  const url = databaseUrl(values);
  const dir = dataDir(values);
  const file = databaseFile(dir);
  if (url === undefined && !options.create) checkDatabaseFile(file);
  else if (url === undefined && existsSync(file)) checkDatabaseFile(file, { allowEmpty: true });
  if (options.create) {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (error) {
      throw new CliError(Exit.IO, `cannot create the data directory ${dir}: ${(error as NodeJS.ErrnoException).code}`, 'pass --data <dir>');
    }
  }
  if (url !== undefined) return openPostgres(url, options.readOnly === true);
  const storeOptions: StoreOptions = {};
  if (options.readOnly) storeOptions.readOnly = true;
  if (options.durability !== undefined) storeOptions.durability = options.durability;
  return asyncStore(openStore(file, storeOptions));
}

/** What to do with a database that a migration into it has not finished. */
const UNFINISHED_MIGRATION_HINT = "run 'regmeta migrate --to <url>' again to finish it, or migrate into an empty database";

/**
 * The PostgreSQL store at `url`.
 * @throws CliError DATABASE, one line with the URL's password masked, when
 * the server cannot be reached or the database is not (or too new) a regmeta store.
 */
async function openPostgres(url: string, readOnly: boolean): Promise<Store> {
  try {
    return await openPostgresStore(url, { readOnly });
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
 * Refuses what works only on the SQLite file (`what`: a dry run's scratch
 * copy, a backup) when the metadata is on PostgreSQL.
 * @throws CliError USAGE when --database or $REGMETA_DATABASE names a PostgreSQL database.
 */
export function requireSqlite(values: { database?: string }, what: string, hint: string): void {
  if (databaseUrl(values) !== undefined) throw new CliError(Exit.USAGE, `${what} works on the SQLite store only, not with --database`, hint);
}

/**
 * A private copy of the SQLite database in <data> (an empty store when there
 * is none), in a scratch directory, for the dry runs of gc and import: the
 * real sweep or import runs on it, exact, and changes nothing. SQLite only:
 * it copies through SQLite's online backup API. `remove` deletes the copy,
 * once the store on it is closed.
 * @throws CliError DATABASE; StoreError as withReadOnly and openStore.
 */
export async function scratchCopy(dir: string, prefix: string): Promise<{ store: Store; remove(): void }> {
  const scratch = mkdtempSync(join(tmpdir(), prefix));
  const remove = () => rmSync(scratch, { recursive: true, force: true });
  try {
    const copy = join(scratch, 'metadata.db');
    if (existsSync(databaseFile(dir))) await withReadOnly(dir, (source) => source.backup(copy));
    return { store: asyncStore(openStore(copy, { durability: 'normal' })), remove };
  } catch (error) {
    remove();
    throw error;
  }
}

/**
 * A read-only connection of the store's own making (header and schema version
 * checked, nothing written), for what only SQLite's API does: the online
 * backup. Use it through withReadOnly, which translates SQLite's errors.
 * @throws CliError DATABASE; StoreError DATABASE_* from the store.
 */
export function openReadOnly(dir: string): Database.Database {
  const file = databaseFile(dir);
  checkDatabaseFile(file);
  return openDatabase(file, { readOnly: true });
}

/**
 * The one translation of what a raw SQLite call of the CLI threw: a
 * SqliteError becomes the store's StoreError (translateError), so that a
 * damaged or busy database reads the same, and exits 3, whichever connection
 * met it. Anything else is returned as it was.
 */
export function databaseError(error: unknown, file: string): unknown {
  return sqlitePrimaryCode(error) === undefined ? error : translateError(error, file);
}

/**
 * Runs `fn` on a read-only connection (openReadOnly) and closes it.
 * @throws CliError DATABASE; StoreError DATABASE_CORRUPT, DATABASE_BUSY and
 * the like for what SQLite throws inside `fn`; whatever else `fn` throws.
 */
export async function withReadOnly<T>(dir: string, fn: (db: Database.Database, file: string) => T | Promise<T>): Promise<T> {
  const db = openReadOnly(dir);
  try {
    return await fn(db, db.name);
  } catch (error) {
    throw databaseError(error, db.name);
  } finally {
    if (db.open) db.close();
  }
}

/** The exit code and hint for an error the store threw. */
export function fromStoreError(error: StoreError): CliError {
  switch (error.code) {
    case 'NAME_UNKNOWN':
    case 'MANIFEST_UNKNOWN':
    case 'BLOB_UNKNOWN':
      return new CliError(Exit.NOT_FOUND, error.message, "list what is there with 'regmeta repos' or 'regmeta tags <repo>'");
    case 'NAME_INVALID':
    case 'TAG_INVALID':
    case 'DIGEST_INVALID':
    case 'PAGINATION_NUMBER_INVALID':
    case 'EVENT_INVALID':
      return new CliError(Exit.USAGE, error.message, 'names are like library/nginx, tags like v1.2, digests like sha256:<64 hex>');
    case 'DATABASE_BUSY':
      return new CliError(Exit.DATABASE, error.message, 'another process holds the database lock; try again');
    case 'DATABASE_READONLY':
      return new CliError(Exit.DATABASE, error.message, 'check the permissions of the data directory');
    case 'DATABASE_UNAVAILABLE':
      return new CliError(Exit.DATABASE, error.message, 'check that the database server is up and takes connections, then try again');
    case 'DATABASE_TOO_NEW':
      return new CliError(Exit.DATABASE, error.message, 'use a newer regmeta');
    case 'DATABASE_INCOMPLETE':
      return new CliError(Exit.DATABASE, error.message, UNFINISHED_MIGRATION_HINT);
    case 'DATABASE_INVALID':
    case 'DATABASE_CORRUPT':
    case 'DATABASE_FULL':
    case 'DATABASE_ERROR':
      return new CliError(Exit.DATABASE, error.message, "run 'regmeta check' on it, or restore a backup");
    default:
      return new CliError(Exit.PROBLEMS, error.message, `store error ${error.code}`);
  }
}

/**
 * A duration such as `24h`, `30m`, `1h30m`, `7d` or `0` in milliseconds.
 * @throws CliError USAGE.
 */
export function parseDuration(text: string, command: string, option: string): number {
  const ms = durationMs(text);
  if (ms === undefined) throw usageError(command, `--${option} ${JSON.stringify(text)} is not a duration like 24h, 30m or 7d`);
  return ms;
}

/** gc's and check's `--grace` when none is given. */
export const DEFAULT_GRACE = '24h';
export const GRACE_OPTION = { grace: { type: 'string' } } as const;

/**
 * The cut that `--grace` (default DEFAULT_GRACE) makes: what no row names and
 * is older is garbage; what is younger may be a push still in flight.
 * @throws CliError USAGE on a malformed duration.
 */
export function graceCutoff(values: { grace?: string }, command: string): Date {
  return new Date(Date.now() - parseDuration(values.grace ?? DEFAULT_GRACE, command, 'grace'));
}

/**
 * A point in time: an ISO 8601 date (`2026-11-26`, `2026-11-26T10:00:00Z`) or
 * a duration ago (`1h`).
 * @throws CliError USAGE.
 */
export function parseTime(text: string, command: string, option: string): Date {
  if (/^\d+(?:ms|s|m|h|d|w)/.test(text)) return new Date(Date.now() - parseDuration(text, command, option));
  const date = /^\d{4}-\d{2}-\d{2}/.test(text) ? new Date(text) : new Date(Number.NaN);
  if (Number.isNaN(date.getTime())) {
    throw usageError(command, `--${option} ${JSON.stringify(text)} is neither an ISO date (2026-11-26T10:00:00Z) nor a duration ago (1h)`);
  }
  return date;
}
