// `regmeta migrate --to postgres://…`: the SQLite store under --data copied
// into an empty PostgreSQL database, so that a registry outgrowing one
// machine moves to replicas without pushing anything again. The store
// reads the SQLite rows in one snapshot (StoreSnapshot) and loads them with
// COPY, one transaction per batch with its high-water mark (PgLoader); this
// file drives the two, table by table, then verifies every table.

import { join } from 'node:path';
import { isPostgresUrl, openMigrationSource, openPostgresLoader, StoreError, type PgLoader, type StoreSnapshot, type TransferTable } from '../../store/index.js';
import { JSON_OPTION, parse, type Command } from '../args.js';
import { DATA_HELP, DATA_OPTIONS, location } from '../config/location.js';
import { CliError, Exit, usageError } from '../exit.js';
import { checkDatabaseFile, databaseFile } from '../open.js';
import { printJson, println, table } from '../output.js';
import { counted } from '../units.js';
import { formatBytes } from '../../store/index.js';
import { createBlobStore } from '../../blobstore/index.js';
import { s3Argument, s3Url } from '../config/storage.js';
import { migrateBlobs, type BlobMigrationSummary } from './migrate-blobs.js';
import { Progress } from '../progress.js';

const options = {
  ...DATA_OPTIONS,
  to: { type: 'string' },
  'blobs-to': { type: 'string' },
  'verify-only': { type: 'boolean' },
  batch: { type: 'string' },
  ...JSON_OPTION,
} as const;

/** Rows per batch (one transaction each), and the bytes of manifests one batch may hold. */
const DEFAULT_BATCH = 5000;
const BATCH_BYTES = 16 << 20;

/** One table's part of the summary. */
interface TableSummary {
  table: string;
  rows: number;
  /** Rows copied by this run (a resumed run copies the rest). */
  copied: number;
  seconds: number;
  /** Both sides hold the same rows: the same count and the same digest of the rows in key order. */
  verified: boolean;
  sha256: string;
}

interface MigrateSummary {
  source: string;
  target: string;
  resumed: boolean;
  verifyOnly: boolean;
  tables: TableSummary[];
  /** Tables of the source that are not copied (upload sessions in flight), with their rows. */
  notCopied: { table: string; rows: number }[];
  /** Tables whose rows differ between the two. */
  mismatches: string[];
  seconds: number;
}

export const migrate: Command = {
  name: 'migrate',
  usage: `usage: regmeta migrate --to <postgres-url> | --blobs-to <s3-url> [--data <dir>] [--verify-only] [--batch <n>] [--json]

Copies the SQLite store <dir>/metadata.db into an empty PostgreSQL database
whose schema it creates: repositories, manifests (their bytes exact), tags
and their history, blobs and blob links, the references between manifests,
the event log with its seqs, ids and times, and the webhook cursors (so
delivery goes on from where it stood). Upload sessions in flight are not
copied. Then 'regmeta serve --database <url> --data <dir>' serves the same
registry; the blob files stay where they are.

The store is read in one snapshot, so a running server does not tear the
copy, but what it writes after the snapshot is not copied: stop the server
(or make it read-only) before the run that finishes. Resumable: each batch
is one transaction with its progress, so a run interrupted (Ctrl-C, a lost
connection) continues where it stopped when run again; a database holding
other data, or a migration from another store or from one written to since,
or one that a regmeta server or command is connected to, is refused. The copied tables' foreign keys are dropped while it runs and
added back (and checked) at its end. Until a run has finished, serve and
every other command refuse the database (exit 3): it holds part of a
registry. A statement that waits over 30 s for a lock another session
holds (a server left running on the database) fails the run. Every table is
then verified: its rows counted and hashed in key order on both sides; a
difference exits 1.

With --blobs-to, copies instead the blob files under <dir>/blobs into the
bucket, where 'regmeta serve --storage <the same URL>' serves them:
resumable (a blob the bucket holds with its size is skipped, so a run after
an interruption copies only the rest), verified (the bytes are hashed on
their way in; a final pass compares the two listings, digests and sizes; a
difference exits 1). A registry may serve the directory meanwhile: stop its
pushes (or make it read-only), run it once more, then restart it with
--storage on the bucket; the metadata stays where it is.

options:
  --to <url>     the PostgreSQL database (postgres://user:password@host/db),
                 empty or holding this migration's unfinished copy
  --blobs-to <url>
                 the bucket for the blobs: s3://bucket/prefix, with
                 ?endpoint=…&region=…&forcePathStyle=true as --storage
                 takes them; credentials from the AWS chain
${DATA_HELP}
  --verify-only  copy nothing: compare the two and report
  --batch <n>    rows per transaction (default ${DEFAULT_BATCH})
  --json         print the summary as JSON

example:
  regmeta migrate --data /srv/regmeta --to postgres://regmeta@db/regmeta
  regmeta migrate --data /srv/regmeta --blobs-to s3://registry/blobs
`,
  options,
  exits: { [Exit.PROBLEMS]: 'the copy differs from the store (or the bucket from the blob files)', [Exit.DATABASE]: 'the database is not empty, is an unfinished copy of another store, or a lock stays taken' },
  async run(argv) {
    const args = parse(argv, migrate, options, { min: 0, max: 0 });
    if (!args) return Exit.OK;
    const to = args.values.to;
    if (args.values['blobs-to'] !== undefined) return runBlobMigration(args.values);
    if (to === undefined) throw usageError('migrate', '--to <postgres-url> or --blobs-to <s3-url> is required');
    if (!isPostgresUrl(to)) throw usageError('migrate', `--to is not a PostgreSQL URL (like postgres://user:password@host:5432/regmeta)`);
    const batch = args.values.batch === undefined ? DEFAULT_BATCH : Number(args.values.batch);
    if (!Number.isSafeInteger(batch) || batch < 1) throw usageError('migrate', '--batch must be a positive integer');
    const file = databaseFile(location(args.values, 'migrate', { database: false }).data);
    checkDatabaseFile(file);
    const summary = await migrateStore(file, to, { batch, verifyOnly: args.values['verify-only'] === true });
    if (args.values.json) printJson(summary);
    else printSummary(summary);
    return summary.mismatches.length === 0 ? Exit.OK : Exit.PROBLEMS;
  },
};

/**
 * Copies (unless verifyOnly) and verifies the store in `file` into the database at `url`.
 * @throws CliError DATABASE (either side unreachable, refused or failing).
 */
async function migrateStore(file: string, url: string, options: { batch: number; verifyOnly: boolean }): Promise<MigrateSummary> {
  const started = Date.now();
  const { snapshot, tables: specs } = await openMigrationSource(file);
  let loader: PgLoader | undefined;
  try {
    loader = await onTarget(openPostgresLoader(url, { readOnly: options.verifyOnly }));
    const copied = options.verifyOnly ? { resumed: false, rows: new Map<string, { copied: number; seconds: number }>() } : await copyAll(snapshot, loader, specs, options.batch);
    const tables = await verifyAll(snapshot, loader, specs, copied.rows);
    return {
      source: file,
      target: loader.location,
      resumed: copied.resumed,
      verifyOnly: options.verifyOnly,
      tables,
      notCopied: snapshot.otherTables(),
      mismatches: tables.filter((t) => !t.verified).map((t) => t.table),
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    snapshot.close();
    await loader?.close();
  }
}

/** The hint for each reason the target gives for a refusal; any other reason is a database that is not this migration's. */
const REFUSAL_HINTS: Record<string, string> = {
  running: 'wait for the other migration to end, or stop it',
  'in-use': 'stop the servers and commands using the database, then run it again',
};

/** What the target's refusals and failures say, with the hint that fits. */
function targetError(error: unknown): unknown {
  if (!(error instanceof StoreError)) return error;
  const reason = (error.detail as { reason?: string } | undefined)?.reason;
  let hint = 'check --to and that the server is up and takes connections';
  if (reason !== undefined) hint = REFUSAL_HINTS[reason] ?? 'create an empty database (createdb) and migrate into it';
  else if (error.code === 'DATABASE_BUSY') hint = 'another session holds a lock in the database: stop what else uses it (a regmeta serve?) and run again';
  return new CliError(Exit.DATABASE, error.message, hint);
}

/** `promise`, a call of the target's, with its StoreError turned into the CLI's words for it. */
function onTarget<T>(promise: Promise<T>): Promise<T> {
  return promise.catch((error: unknown) => {
    throw targetError(error);
  });
}

/** Copies every table in foreign-key order, each from where the last run left it. */
async function copyAll(snapshot: StoreSnapshot, loader: PgLoader, specs: readonly TransferTable[], batch: number) {
  const source = { identity: snapshot.identity(), file: snapshot.file, fingerprint: snapshot.fingerprint() };
  const state = await onTarget(loader.start(source));
  const rows = new Map<string, { copied: number; seconds: number }>();
  for (const spec of specs) {
    const progress = state.tables.get(spec.name)!;
    rows.set(spec.name, progress.done ? { copied: 0, seconds: 0 } : await copyTable(snapshot, loader, spec, progress, batch));
  }
  if (state.finishedAt === undefined) await onTarget(loader.finish(snapshot.eventHead()));
  return { resumed: state.resumed, rows };
}

/** Copies the rows of one table after its high-water mark, a batch per transaction. */
async function copyTable(snapshot: StoreSnapshot, loader: PgLoader, spec: TransferTable, from: { after?: readonly (string | number)[]; copied: number }, batch: number) {
  const started = Date.now();
  const bar = new Progress(`copy ${spec.name}`.padEnd(25), { total: snapshot.count(spec.name), unit: 'rows' });
  bar.update(from.copied);
  let after = from.after;
  let copied = 0;
  try {
    for (;;) {
      const page = snapshot.page(spec.name, after, { rows: batch, bytes: BATCH_BYTES });
      if (page.last === undefined) break;
      await onTarget(loader.load(spec, page.rows, page.last));
      copied += page.rows.length;
      bar.update(from.copied + copied);
      after = page.last;
    }
    await onTarget(loader.tableDone(spec.name));
  } finally {
    bar.finish();
  }
  return { copied, seconds: (Date.now() - started) / 1000 };
}

/** Counts and hashes every table on both sides. */
async function verifyAll(snapshot: StoreSnapshot, loader: PgLoader, specs: readonly TransferTable[], copied: Map<string, { copied: number; seconds: number }>): Promise<TableSummary[]> {
  const total = specs.reduce((sum, spec) => sum + snapshot.count(spec.name), 0);
  const bar = new Progress('verify'.padEnd(25), { total: total * 2, unit: 'rows' });
  const tick = (n: number) => bar.tick(n);
  const tables: TableSummary[] = [];
  try {
    for (const spec of specs) {
      const source = snapshot.digest(spec.name, tick);
      const target = await onTarget(loader.digest(spec, tick));
      const run = copied.get(spec.name) ?? { copied: 0, seconds: 0 };
      const verified = source.rows === target.rows && source.sha256 === target.sha256;
      tables.push({ table: spec.name, rows: source.rows, copied: run.copied, seconds: run.seconds, verified, sha256: source.sha256 });
    }
  } finally {
    bar.finish();
  }
  return tables;
}

function printSummary(summary: MigrateSummary): void {
  const rows = summary.tables.map((t) => [
    t.table,
    String(t.rows),
    String(t.copied),
    t.seconds > 0 ? `${Math.round(t.copied / t.seconds)}/s` : '-',
    t.verified ? 'ok' : 'DIFFERS',
  ]);
  for (const line of table([['table', 'rows', 'copied', 'rate', 'verified'], ...rows])) println(line);
  for (const t of summary.notCopied) println(`not copied: ${t.table} (${counted(t.rows, 'row')})`);
  const verb = summary.verifyOnly ? 'compared' : summary.resumed ? 'migrated (resumed)' : 'migrated';
  const verdict = summary.mismatches.length === 0 ? 'all tables verified' : `${summary.mismatches.length} tables differ: ${summary.mismatches.join(', ')}`;
  println(`${verb} ${summary.source} to ${summary.target} in ${summary.seconds.toFixed(1)}s: ${verdict}`);
}

/**
 * `--blobs-to`: the blob files of --data's directory into the bucket.
 * @throws CliError USAGE (with --to, --verify-only or --batch; a bad URL), IO (a listing fails).
 */
async function runBlobMigration(values: { 'blobs-to'?: string; to?: string; 'verify-only'?: boolean; batch?: string; json?: boolean; data?: string; config?: string }): Promise<number> {
  for (const other of ['to', 'verify-only', 'batch'] as const) {
    if (values[other] !== undefined) throw usageError('migrate', `--blobs-to and --${other} exclude each other`);
  }
  const data = location(values, 'migrate', { database: false }).data;
  const bucket = s3Argument(values['blobs-to']!, 'migrate', '--blobs-to');
  const source = createBlobStore({ directory: data });
  const target = createBlobStore({ s3: bucket }, { maxBlobSize: Number.POSITIVE_INFINITY });
  let summary: BlobMigrationSummary;
  try {
    summary = await migrateBlobs(source, target, { source: join(data, 'blobs'), target: s3Url(bucket) });
  } catch (error) {
    // The storage's errors name their code and message, never a credential or signature.
    throw new CliError(Exit.IO, `cannot list the blobs: ${(error as Error).message}`, 'check --data, the bucket URL, the AWS credentials, and that the service is up');
  }
  if (values.json) printJson(summary);
  else {
    for (const p of summary.problems) process.stderr.write(`regmeta migrate: ${p.digest}: ${p.problem}\n`);
    for (const d of summary.missing) println(`missing     ${d}`);
    for (const d of summary.sizeDiffers) println(`size differs ${d}`);
    const verdict = summary.verified ? 'all blobs verified' : 'the bucket differs: run it again';
    println(
      `copied ${counted(summary.copied.blobs, 'blob')} (${formatBytes(summary.copied.bytes)}), skipped ${summary.skipped.blobs} already there ` +
        `(${formatBytes(summary.skipped.bytes)}), of ${counted(summary.blobs, 'blob')} in ${summary.source}, to ${summary.target} in ${summary.seconds.toFixed(1)}s: ${verdict}`,
    );
  }
  return summary.verified ? Exit.OK : Exit.PROBLEMS;
}
