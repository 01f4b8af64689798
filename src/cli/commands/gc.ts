// `regmeta gc`: evict from the mirrors' caches the repositories their
// limits say must go (evict.ts), then sweep untagged manifests, then blobs
// nothing references, that are older than a grace period. Everything goes through the store, one
// transaction per deletion, so a running server only ever sees a consistent
// state; whatever a server changes between our reads and deletes is skipped.

import { StoreError, type Store, type LockedAction } from '../../store/index.js';
import { JSON_OPTION, parse, type Command } from '../args.js';
import { LOCATION_HELP, LOCATION_OPTIONS, location } from '../config/location.js';
import { Exit, usageError } from '../exit.js';
import { openBlobs, openMetadata, scratchCopy, type Location } from '../open.js';
import { printJson, println } from '../output.js';
import { DEFAULT_GRACE, GRACE_OPTION, graceCutoff } from '../time.js';
import { counted } from '../units.js';
import { formatBytes } from '../../store/index.js';
import { Progress } from '../progress.js';
import { DEFAULT_BLOB_LIMITS, type BlobStore } from '../../blobstore/index.js';
import { evictMirrors, type EvictionPolicy, type Eviction } from './evict.js';
import { retentionGc } from './retention.js';

const options = { ...LOCATION_OPTIONS, ...JSON_OPTION, ...GRACE_OPTION, 'dry-run': { type: 'boolean', short: 'n' }, retention: { type: 'boolean' } } as const;

const ACTOR = 'GARBAGE_COLLECTOR';

/** What one sweep did (or, dry, would do). */
export interface GcResult {
  dryRun: boolean;
  olderThan: string;
  /** Cached repositories evicted from the mirrors' namespaces, in order, each with why. */
  repositoriesEvicted: Eviction[];
  manifestsDeleted: { repository: string; digest: string }[];
  blobsDeleted: { digest: string; size: number }[];
  bytesFreed: number;
  filesRemoved: number;
  /** Upload sessions expired (idle past the grace period, and a day at least), with their files. */
  uploadsExpired: number;
  /** Upload bytes (files under <data>/uploads, or objects in the bucket) that no session names, older than the grace period, removed. */
  uploadFilesRemoved: number;
  /** Deletions skipped because the server changed something first. */
  skipped: number;
  /** Files that could not be removed. */
  problems: string[];
  seconds: number;
}

export const gc: Command = {
  name: 'gc',
  usage: `usage: regmeta gc [--retention] [--dry-run] [--grace <duration>] [--data <dir>] [--database <url>] [--json]

First evicts from each mirror (the config's mirrors:) with a maxIdle or a
maxSize whole cached repositories, as 'mirror' with their DELETE events:
those not pulled (or, never pulled, cached) for maxIdle; then, while the
mirror's namespace holds more than maxSize bytes of blobs (each counted
once), the one pulled longest ago. What they held goes in the sweep below.
Then deletes, as GARBAGE_COLLECTOR and with a DELETE event each:
  1. manifests that no tag, no index of their repository and no present
     subject keeps alive, created before the grace period (deleting an index
     frees its children for the next round, until nothing is left);
  2. then blobs that no manifest references, neither uploaded nor linked
     within the grace period; a blob's bytes (its file under <data>/blobs,
     or its object in the bucket) are removed only after its row is gone;
     then blob files or objects that no row names, older than the grace
     period, each while the store still knows no such blob;
  3. upload sessions idle for the grace period (and a day at least), row
     first, then bytes (a multipart upload is aborted); upload bytes older
     than the grace period that no session names (a server's sessions are
     spared).
Safe while the server runs: a manifest tagged or a blob referenced again in
the meantime is skipped. --dry-run runs the same sweep on a copy of the
database and reports what it would delete; it copies the SQLite file, so it
is refused with --database (PostgreSQL) for now. Exits 1 when something
could not be deleted (each listed on stderr); the rest is swept.

With --retention, applies the config file's retention rules instead, as
'retention' with a DELETE event each that says why: in each repository
the first rule matches, the tags no keep condition of the rule keeps (the
newest N, tag patterns, pulled or pushed within a duration; immutable tags
always stay), then the manifests that leaves untagged past the rule's
untaggedGrace that no index lists and no present subject keeps, with
their referrers. A tag moved or pushed again meanwhile stays. Repositories
no rule matches are left alone. --dry-run lists each tag and manifest that
would go, with its rule and why, from the live store (read-only, also on
PostgreSQL). Run gc without --retention afterwards for the blobs.

options:
  --grace <d>    how old garbage must be (default ${DEFAULT_GRACE}; e.g. 30m, 7d, 0)
  --dry-run, -n  report what would be deleted, change nothing
  --retention    apply the retention rules (the config's retention:)
${LOCATION_HELP}
  --json         print the result as JSON

examples:
  regmeta gc --grace 7d --dry-run
  regmeta gc --retention --config regmeta.yaml --dry-run
`,
  options,
  exits: { [Exit.PROBLEMS]: 'it could not finish' },
  async run(argv) {
    const args = parse(argv, gc, options, { min: 0, max: 0 });
    if (!args) return Exit.OK;
    if (args.values.retention) {
      if (args.values.grace !== undefined) throw usageError('gc', '--grace is the sweep\'s: retention rules set their own untaggedGrace');
      await retentionGc(location(args.values, 'gc', { retention: true }), { dryRun: args.values['dry-run'] === true, json: args.values.json === true });
      return Exit.OK;
    }
    const olderThan = graceCutoff(args.values, 'gc');
    const where = location(args.values, 'gc', { mirrors: true });
    const mirrors = where.mirrors ?? [];
    const result = args.values['dry-run'] ? await dryRun(where, olderThan, mirrors) : await sweep(await openMetadata(where), olderThan, where, mirrors);
    if (args.values.json) printJson(result);
    else {
      const verb = result.dryRun ? 'would delete' : 'deleted';
      for (const e of result.repositoriesEvicted) println(`evict     ${e.repository}  ${whyEvicted(e)}`);
      for (const m of result.manifestsDeleted) println(`manifest  ${m.repository}@${m.digest}`);
      for (const b of result.blobsDeleted) println(`blob      ${b.digest}  ${formatBytes(b.size)}`);
      for (const p of result.problems) process.stderr.write(`regmeta gc: ${p}\n`);
      if (result.repositoriesEvicted.length > 0) {
        process.stderr.write(`${result.dryRun ? 'would evict' : 'evicted'} ${counted(result.repositoriesEvicted.length, 'cached repository', 'cached repositories')}\n`);
      }
      process.stderr.write(
        `${verb} ${counted(result.manifestsDeleted.length, 'manifest')} and ${counted(result.blobsDeleted.length, 'blob')} ` +
          `(${formatBytes(result.bytesFreed)}) older than ${result.olderThan}, skipped ${result.skipped}, ` +
          `expired ${counted(result.uploadsExpired, 'idle upload')}, removed ${counted(result.uploadFilesRemoved, 'stray upload file')}, ` +
          `in ${result.seconds.toFixed(1)}s\n`,
      );
    }
    return result.problems.length === 0 ? Exit.OK : Exit.PROBLEMS;
  },
};

/** Why a repository was evicted, for a person. */
function whyEvicted(e: Eviction): string {
  const since = e.pulled ? `last pulled ${e.since}` : `cached ${e.since}, never pulled`;
  return e.reason === 'idle' ? `idle: ${since}` : `over budget: usage ${formatBytes(e.usage!)} of ${formatBytes(e.budget!)}; ${since}`;
}

/** The sweep on a private copy of the database: exact, and changes nothing. */
export async function dryRun(where: Location, olderThan: Date, mirrors: readonly EvictionPolicy[]): Promise<GcResult> {
  const refusal = { what: 'gc --dry-run', hint: "list what gc would take with 'regmeta stats' and 'regmeta tags', or run it on a SQLite copy" };
  const copy = await scratchCopy(where, 'regmeta-gc-', refusal);
  try {
    return { ...(await sweep(copy.store, olderThan, undefined, mirrors)), dryRun: true };
  } finally {
    copy.remove();
  }
}

function skippable(error: unknown): boolean {
  return (
    error instanceof StoreError &&
    ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN', 'BLOB_UNKNOWN', 'MANIFEST_REFERENCED', 'BLOB_REFERENCED'].includes(error.code)
  );
}

const ctx = { actor: ACTOR };

/**
 * Evicts from the `mirrors`' caches, then sweeps `store` (and closes it);
 * removes blob files and uploads at `where` unless it is undefined.
 * @throws StoreError on database failures other than the races it skips.
 */
export async function sweep(store: Store, olderThan: Date, where: Location | undefined, mirrors: readonly EvictionPolicy[] = []): Promise<GcResult> {
  const started = Date.now();
  const result: GcResult = {
    dryRun: false,
    olderThan: olderThan.toISOString(),
    repositoriesEvicted: [],
    manifestsDeleted: [],
    blobsDeleted: [],
    bytesFreed: 0,
    filesRemoved: 0,
    uploadsExpired: 0,
    uploadFilesRemoved: 0,
    skipped: 0,
    problems: [],
    seconds: 0,
  };
  const progress = new Progress('gc');
  try {
    const { evicted, skipped } = await evictMirrors(store, mirrors, progress);
    result.repositoriesEvicted = evicted;
    result.skipped += skipped;
    await sweepManifests(store, olderThan, result, progress);
    // One blob store for blobs and upload sessions alike, on the store's
    // session table: sessions idle past the grace period (a day at least:
    // what a server's own sweeper keeps by default) expire.
    const uploadTtl = Math.max(Date.now() - olderThan.getTime(), DEFAULT_BLOB_LIMITS.uploadTtl);
    const blobs = where === undefined ? undefined : openBlobs(where, { sessions: store.uploads, uploadTtl });
    await sweepBlobs(store, olderThan, blobs, result, progress);
    if (blobs !== undefined) {
      await sweepStrayFiles(store, olderThan, blobs, result);
      await sweepUploads(olderThan, blobs, result);
    }
  } finally {
    progress.finish();
    await store.close();
  }
  result.seconds = (Date.now() - started) / 1000;
  return result;
}

/** Deletes untagged manifests, in rounds until one frees nothing new: deleting an index makes its children untagged. */
async function sweepManifests(store: Store, olderThan: Date, result: GcResult, progress: Progress): Promise<void> {
  const tried = new Set<string>();
  for (;;) {
    const candidates = (await store.untaggedManifests({ olderThan })).filter((m) => !tried.has(`${m.repository}@${m.digest}`));
    if (candidates.length === 0) return;
    for (const { repository, digest } of candidates) {
      tried.add(`${repository}@${digest}`);
      try {
        // A tag set since the listing makes the store refuse the delete
        // (MANIFEST_REFERENCED), in the delete's own transaction.
        await store.collectManifest(repository, digest, ctx, { olderThan });
        result.manifestsDeleted.push({ repository, digest });
      } catch (error) {
        if (!skippable(error)) throw error;
        result.skipped++;
      }
      progress.tick();
    }
  }
}

/**
 * Removes a file, counting it, or records why it could not: synchronously
 * when `remove` is (inside SQLite's transaction), else once it settles.
 */
function remover(result: GcResult, where: string, remove: () => boolean | Promise<boolean>): LockedAction {
  const count = (removed: boolean) => void (removed && result.filesRemoved++);
  const fail = (error: unknown) => void result.problems.push(`cannot remove ${where}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  return () => {
    try {
      const removed = remove();
      if (typeof removed === 'boolean') return count(removed);
      return removed.then(count, fail);
    } catch (error) {
      fail(error);
    }
  };
}

async function sweepBlobs(store: Store, olderThan: Date, blobs: BlobStore | undefined, result: GcResult, progress: Progress): Promise<void> {
  for (const blob of await store.unreferencedBlobs({ olderThan })) {
    // The store removes the file only after the row's delete has committed,
    // under the write lock, and only if no push has linked the digest again
    // (a push moves its file into place under that same lock).
    const { digest } = blob;
    const removeFile = blobs && remover(result, blobs.location(digest), () => blobs.delete(digest));
    try {
      await store.collectBlob(blob.digest, ctx, { olderThan, removeFile });
    } catch (error) {
      if (!skippable(error)) throw error;
      result.skipped++;
      continue;
    }
    result.blobsDeleted.push({ digest: blob.digest, size: blob.size });
    result.bytesFreed += blob.size;
    progress.tick();
  }
}

/**
 * Files no row names (a crash between a file's placing and its link's
 * commit, an interrupted sweep, a leftover temporary), once older than the
 * grace period. A named one goes only while the store still knows no such
 * blob, under the write lock a push places its file under.
 */
async function sweepStrayFiles(store: Store, olderThan: Date, blobs: BlobStore, result: GcResult): Promise<void> {
  for await (const file of blobs.list()) {
    // Young enough to be a push in flight.
    if (file.modified.getTime() >= olderThan.getTime()) continue;
    const remove = remover(result, file.location, () => blobs.remove(file));
    if (file.digest === undefined) await remove();
    else await store.whileBlobUnknown(file.digest, remove);
  }
}

/**
 * Expires upload sessions idle past the grace period, with their bytes (a
 * multipart upload is aborted), and removes upload bytes older than it that
 * no session names, each checked against the table after the listing (a
 * session's row is written before its bytes).
 */
async function sweepUploads(olderThan: Date, blobs: BlobStore, result: GcResult): Promise<void> {
  try {
    const { expired, strays } = await blobs.sweepUploads({ strayBefore: olderThan });
    result.uploadsExpired += expired;
    result.uploadFilesRemoved += strays.length;
  } catch (error) {
    result.problems.push(`cannot sweep the upload sessions: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}
