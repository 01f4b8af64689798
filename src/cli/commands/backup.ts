// `regmeta backup <file>`: an online, consistent copy of the database while
// the server (or anything else) keeps writing, by the store's backup: SQLite's
// online backup API and quick_check. A PostgreSQL store makes no such copy.

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_BACKUP_PAGES_PER_STEP } from '../../store/index.js';
import { JSON_OPTION, parse, type Command } from '../args.js';
import { LOCATION_HELP, LOCATION_OPTIONS, location } from '../config/location.js';
import { CliError, Exit, usageError } from '../exit.js';
import { copyRefused, openMetadata } from '../open.js';
import { printJson } from '../output.js';
import { Progress } from '../progress.js';
import { counted } from '../units.js';
import { formatBytes } from '../../store/index.js';

const options = { ...LOCATION_OPTIONS, ...JSON_OPTION, force: { type: 'boolean' }, 'pages-per-step': { type: 'string' } } as const;

export const backup: Command = {
  name: 'backup',
  usage: `usage: regmeta backup <file> [--force] [--pages-per-step <n>] [--data <dir>] [--json]

Writes a consistent copy of the database to <file> with SQLite's online
backup API; the server may keep running and writing. The copy is then
verified with quick_check (exits 1 when it fails). It is a complete
database: open it with --data pointing at a directory holding it as
metadata.db.

SQLite only: a PostgreSQL database is backed up with PostgreSQL's tools
(pg_dump, base backups), and --database is refused.

options:
  --force        overwrite <file> if it exists
  --pages-per-step <n>
                 pages copied between progress updates (default ${DEFAULT_BACKUP_PAGES_PER_STEP}); a
                 write by another process restarts the copy, which then
                 finishes in one step
${LOCATION_HELP}
  --json         print {file, pages, bytes, seconds} as JSON

example:
  regmeta backup /backups/metadata-$(date +%F).db
`,
  options,
  exits: { [Exit.PROBLEMS]: 'the copy fails quick_check' },
  async run(argv) {
    const args = parse(argv, backup, options, { min: 1, max: 1 });
    if (!args) return Exit.OK;
    const target = resolve(args.positionals[0]);
    const step = args.values['pages-per-step'] === undefined ? DEFAULT_BACKUP_PAGES_PER_STEP : Number(args.values['pages-per-step']);
    if (!Number.isSafeInteger(step) || step < 1) throw usageError('backup', '--pages-per-step must be a positive integer');
    const where = location(args.values, 'backup');
    if (existsSync(target) && !args.values.force) {
      throw new CliError(Exit.IO, `${target} exists`, 'pass --force to overwrite it, or choose another file');
    }
    const store = await openMetadata(where, { readOnly: true });
    const started = Date.now();
    const progress = new Progress('backup', { unit: 'pages' });
    let done;
    try {
      done = await store.backup(target, {
        pagesPerStep: step,
        replace: args.values.force === true,
        onProgress(copied, total) {
          progress.total = total;
          progress.update(copied);
        },
      });
    } catch (error) {
      throw copyRefused(error, 'backup', 'back up a PostgreSQL database with pg_dump or a base backup');
    } finally {
      progress.finish();
      await store.close();
    }
    const result = { file: target, pages: done.pages, bytes: done.bytes, seconds: (Date.now() - started) / 1000 };
    if (args.values.json) printJson(result);
    else process.stderr.write(`backed up ${counted(result.pages, 'page')} (${formatBytes(result.bytes)}) to ${target} in ${result.seconds.toFixed(1)}s\n`);
    return Exit.OK;
  },
};
