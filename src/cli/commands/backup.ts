// `regmeta backup <file>`: an online, consistent copy through SQLite's backup
// API while the server (or anything else) keeps writing. SQLite only, by
// nature: it opens the file with SQLite's API (openReadOnly), not through
// openMetadata and the asynchronous contract.

import { existsSync, rmSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import {
  CliError,
  counted,
  SQLITE_DATA_HELP,
  Exit,
  JSON_OPTION,
  dataDir,
  databaseError,
  formatBytes,
  openReadOnly,
  parse,
  printJson,
  requireSqlite,
  usageError,
  type Command,
} from '../common.js';
import { Progress } from '../progress.js';
import { sqlitePrimaryCode } from '../../store/index.js';

const options = { data: { type: 'string' }, ...JSON_OPTION, force: { type: 'boolean' }, 'pages-per-step': { type: 'string' } } as const;

/** Not an option of backup: parsed only to refuse it in words rather than as an unknown option. */
const REFUSED = { database: { type: 'string' } } as const;

/** Pages copied per step while nobody writes: small enough for a lively progress bar. */
const STEP_PAGES = 1024;

/** What a failed backup step says about the source database rather than the target file. */
const SOURCE_FAILURES = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB', 'SQLITE_BUSY', 'SQLITE_LOCKED']);

export const backup: Command = {
  name: 'backup',
  usage: `usage: regmeta backup <file> [--force] [--pages-per-step <n>] [--data <dir>] [--json]

Writes a consistent copy of the database to <file> with SQLite's online
backup API; the server may keep running and writing. The copy is then
verified with quick_check (exits 1 when it fails). It is a complete
database: open it with --data pointing at a directory holding it as
metadata.db.

SQLite only: this is the one subcommand that works on the SQLite file
through SQLite's own API rather than through the store. A PostgreSQL
database is backed up with PostgreSQL's tools (pg_dump, base backups):
--database is refused.

options:
  --force        overwrite <file> if it exists
  --pages-per-step <n>
                 pages copied between progress updates (default 1024); a
                 write by another process restarts the copy, which then
                 finishes in one step
${SQLITE_DATA_HELP}
  --json         print {file, pages, bytes, seconds} as JSON

example:
  regmeta backup /backups/metadata-$(date +%F).db
`,
  options,
  exits: { [Exit.PROBLEMS]: 'the copy fails quick_check' },
  async run(argv) {
    const args = parse(argv, backup, { ...options, ...REFUSED }, { min: 1, max: 1 });
    if (!args) return Exit.OK;
    const target = resolve(args.positionals[0]);
    const step = args.values['pages-per-step'] === undefined ? STEP_PAGES : Number(args.values['pages-per-step']);
    if (!Number.isSafeInteger(step) || step < 1) throw usageError('backup', '--pages-per-step must be a positive integer');
    requireSqlite(args.values, 'backup', 'back up a PostgreSQL database with pg_dump or a base backup');
    const dir = dataDir(args.values);
    if (existsSync(target) && !args.values.force) {
      throw new CliError(Exit.IO, `${target} exists`, 'pass --force to overwrite it, or choose another file');
    }
    const db = openReadOnly(dir);
    const started = Date.now();
    const progress = new Progress('backup', { unit: 'pages' });
    let pages = 0;
    try {
      if (existsSync(target)) rmSync(target);
      let previous = Infinity;
      const done = await db.backup(target, {
        progress({ totalPages, remainingPages }) {
          progress.total = totalPages;
          progress.update(totalPages - remainingPages);
          // A write by another connection restarts the backup from the first
          // page; were the steps small, a steady writer would restart it
          // forever. After a restart, copy the rest in one step, which is
          // one read transaction and so cannot be interrupted.
          const restarted = remainingPages > previous;
          previous = remainingPages;
          return restarted ? totalPages : step;
        },
      });
      pages = done.totalPages;
    } catch (error) {
      rmSync(target, { force: true });
      // Damage or a lock on the source is a database error (exit 3); the rest
      // (cannot open, write or fill the target) is the target's.
      if (SOURCE_FAILURES.has(sqlitePrimaryCode(error) ?? '')) throw databaseError(error, db.name);
      throw new CliError(Exit.IO, `backup to ${target} failed: ${(error as Error).message}`, 'check that the target directory exists and is writable');
    } finally {
      progress.finish();
      db.close();
    }
    const copy = new Database(target, { readonly: true, fileMustExist: true });
    let verdict: string;
    try {
      verdict = copy.pragma('quick_check', { simple: true }) as string;
    } finally {
      copy.close();
    }
    if (verdict !== 'ok') throw new CliError(Exit.PROBLEMS, `the copy at ${target} fails quick_check: ${verdict}`, "run 'regmeta check' on the source, then the backup again");
    const result = { file: target, pages, bytes: statSync(target).size, seconds: (Date.now() - started) / 1000 };
    if (args.values.json) printJson(result);
    else process.stderr.write(`backed up ${counted(pages, 'page')} (${formatBytes(result.bytes)}) to ${target} in ${result.seconds.toFixed(1)}s\n`);
    return Exit.OK;
  },
};
