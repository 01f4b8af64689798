// `regmeta <subcommand>`: the operator's command line. Dispatches to one
// module per subcommand and turns every failure into one line on stderr and
// a documented exit code.

import { readFileSync } from 'node:fs';
import { StoreError } from '../store/index.js';
import type { Command } from './args.js';
import { fromStoreError } from './errors.js';
import { CliError, Exit } from './exit.js';

// Each module is loaded only when its command runs: startup stays small.
export const COMMANDS: readonly { name: string; summary: string; load: () => Promise<Command> }[] = [
  { name: 'import', summary: "import a distribution registry's storage (a directory or a bucket)", load: async () => (await import('./commands/import.js')).importCommand },
  { name: 'check', summary: 'verify the database and the blob files', load: async () => (await import('./commands/check.js')).check },
  { name: 'gc', summary: 'delete untagged manifests and unreferenced blobs', load: async () => (await import('./commands/gc.js')).gc },
  { name: 'backup', summary: 'copy the database online, while writers keep writing', load: async () => (await import('./commands/backup.js')).backup },
  { name: 'migrate', summary: 'copy the SQLite store into an empty PostgreSQL database, or the blob files into a bucket, verified', load: async () => (await import('./commands/migrate.js')).migrate },
  { name: 'repos', summary: 'list the repositories', load: async () => (await import('./commands/repos.js')).repos },
  { name: 'tags', summary: 'list the tags of a repository and what they point at', load: async () => (await import('./commands/tags.js')).tags },
  { name: 'lookup', summary: 'list the tags that point at a digest', load: async () => (await import('./commands/lookup.js')).lookup },
  { name: 'history', summary: 'list every digest a tag has pointed at, newest first', load: async () => (await import('./commands/history.js')).history },
  { name: 'manifest', summary: 'print a manifest by tag or digest', load: async () => (await import('./commands/manifest.js')).manifest },
  { name: 'events', summary: 'print the event log, newest first, or follow it', load: async () => (await import('./commands/events.js')).events },
  { name: 'notify', summary: 'show where each webhook endpoint\'s delivery stands (notify status)', load: async () => (await import('./commands/notify.js')).notify },
  { name: 'stats', summary: 'print counts, database size and the largest repositories', load: async () => (await import('./commands/stats.js')).stats },
  { name: 'usage', summary: 'print the storage each namespace takes, each blob once, with its quota', load: async () => (await import('./commands/usage.js')).usage },
  { name: 'serve', summary: 'run the registry server', load: async () => (await import('./commands/serve.js')).serve },
  { name: 'passwd', summary: "add a user to an htpasswd file or change their password (bcrypt)", load: async () => (await import('./commands/passwd.js')).passwd },
];

/** The options of `regmeta` itself, in place of a command: the help's list and the dispatch both read this. */
const OPTIONS: { flags: [string, string]; summary: string; run: () => string }[] = [
  { flags: ['-h', '--help'], summary: 'print this help and exit', run: () => USAGE },
  { flags: ['-v', '--version'], summary: 'print the version and exit', run: () => `${packageVersion()}\n` },
];

/**
 * The version in the package.json of the package this file runs from (one
 * directory above src/ and dist/ alike), read when asked for.
 * @throws CliError INTERNAL when that file cannot be read.
 */
function packageVersion(): string {
  try {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    if (typeof version === 'string') return version;
  } catch {
    // reported below
  }
  throw new CliError(Exit.INTERNAL, "cannot read the version from regmeta's package.json", 'reinstall regmeta');
}

/** The overview, with the exit codes every subcommand shares. */
export const USAGE = `usage: regmeta <command> [options]
       regmeta --help | --version

The metadata store of a container registry, from the command line.

commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(9)} ${c.summary}`).join('\n')}

options:
${OPTIONS.map((o) => `  ${o.flags.join(', ').padEnd(15)} ${o.summary}`).join('\n')}

Every command takes --help. Those that read or write the database take
--data <dir> (default: $REGMETA_DATA, else ./data) and use <dir>/metadata.db;
import and serve create it. With --database postgres://… (default:
$REGMETA_DATABASE) they use that PostgreSQL database instead, and <dir>
holds only the blobs. Both may come from serve's config file, named by
--config <file> (default: $REGMETA_CONFIG). Those that print data take --json.

exit codes:
  0   ok
  1   problems found (check failed, import skipped something, gc could not finish,
      migrate found the copy differs, lookup found no tag, a backup failed its check)
  2   usage error (unknown command or option, bad name, tag, digest, duration or URL)
  3   database error (missing, not a regmeta store, too new, damaged, busy, unwritable,
      a PostgreSQL server that cannot be reached)
  4   not found (repository, tag or manifest)
  5   i/o error (a file other than the database could not be read or written)
  70  internal error

example:
  regmeta import /var/lib/docker-registry --data ./data
`;

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

function report(command: string, error: CliError): number {
  const hint = error.hint ? ` (hint: ${error.hint})` : '';
  const lines = [error.message, ...error.more].map((line) => `regmeta${command ? ` ${command}` : ''}: ${oneLine(line)}`);
  process.stderr.write(`${lines.join('\n')}${hint}\n`);
  return error.exitCode;
}

/**
 * Runs `regmeta` with `argv` (without node and the script).
 * @returns the exit code; never throws.
 */
export async function main(argv: string[]): Promise<number> {
  // The AWS SDK release regmeta pins runs on Node 20; its multi-line warning
  // about later releases would say nothing to an operator and would break
  // serve's one-record-per-line log. An operator's own setting wins.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // `regmeta events | head` closes stdout early: that is not an error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  });
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help') {
    process.stdout.write(USAGE);
    return name === undefined ? Exit.USAGE : Exit.OK;
  }
  const option = OPTIONS.find((o) => o.flags.includes(name));
  if (option !== undefined) {
    try {
      process.stdout.write(option.run());
      return Exit.OK;
    } catch (error) {
      if (error instanceof CliError) return report('', error);
      throw error;
    }
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (entry === undefined) {
    return report('', new CliError(Exit.USAGE, `unknown command ${JSON.stringify(name)}`, "see 'regmeta --help'"));
  }
  const command = { name: entry.name, run: async (argv: string[]) => (await entry.load()).run(argv) };
  try {
    return await command.run(rest);
  } catch (error) {
    if (error instanceof CliError) return report(command.name, error);
    if (error instanceof StoreError) return report(command.name, fromStoreError(error));
    // Loaded only on a failure: a command's start loads no blob store it does not use.
    const { BlobStoreError } = await import('../blobstore/index.js');
    if (error instanceof BlobStoreError && error.code === 'STORAGE_UNAVAILABLE') {
      return report(command.name, new CliError(Exit.IO, error.message, 'check that the object storage is up and reachable (the endpoint of --storage), then try again'));
    }
    const message = error instanceof Error ? error.message : String(error);
    return report(command.name, new CliError(Exit.INTERNAL, `internal error: ${message}`, 'please report this with the command line'));
  }
}
