// `regmeta check`: is the database sound and does it agree with itself and
// with the blob files? The store checks the database part on a read-only
// connection, so that checking never changes what it checks; the blob files
// are checked here.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { StoreError, type Store, type BlobInfo } from '../../store/index.js';
import { JSON_OPTION, parse, type Command } from '../args.js';
import { LOCATION_HELP, LOCATION_OPTIONS, location } from '../config/location.js';
import { Exit, usageError } from '../exit.js';
import { openBlobs, openMetadata, type Location } from '../open.js';
import { printJson, println } from '../output.js';
import { DEFAULT_GRACE, GRACE_OPTION, graceCutoff } from '../time.js';
import { counted } from '../units.js';
import { formatBytes } from '../../store/index.js';
import { BlobStoreError, type BlobStore } from '../../blobstore/index.js';
import { Progress } from '../progress.js';

const options = { ...LOCATION_OPTIONS, ...JSON_OPTION, ...GRACE_OPTION, files: { type: 'boolean' }, 'no-files': { type: 'boolean' }, deep: { type: 'boolean' }, 'no-deep': { type: 'boolean' } } as const;

/** One thing found wrong, or (in `pending`) not yet settled. */
interface Problem {
  kind: string;
  subject: string;
  detail: string;
}

export const check: Command = {
  name: 'check',
  usage: `usage: regmeta check [--files | --no-files] [--deep | --no-deep] [--grace <duration>] [--data <dir>] [--database <url>] [--json]

Runs, read-only:
  - SQLite's integrity_check and foreign_key_check;
  - every stored manifest re-hashed against its digest and size;
  - every tag pointing at a manifest of its own repository;
  - every blob a manifest references linked in its repository, and every
    child of an index present there;
  - every blob present in the blob storage (a file under
    <data>/blobs/<algorithm>/<2 hex>/<hex>, or an object in the bucket of
    --storage) with the recorded size and (--deep) hash, and nothing there
    that no blob row names (with --storage, when <data>/blobs exists, or
    with --files).
Lists each problem on a line and exits 1 when there is any, damage that
stops SQLite reading included. A file no row names that is younger than the
grace period is listed as pending, not as a problem: a push may be in flight,
or it died and gc removes the file once the grace has passed. Exits 3 when
the database cannot be opened (missing, not a regmeta store, header damaged)
or stays busy.

options:
  --files        check blob files even if <data>/blobs is missing
  --no-files     do not check blob files
  --deep         re-hash every blob's bytes, read through the blob store
                 (the default)
  --no-deep      check only that each blob is there with its size: a
                 listing or HEAD per blob, not its bytes (for a large bucket)
  --grace <d>    files no row names that are younger are pending (default
                 ${DEFAULT_GRACE}, as gc; e.g. 30m, 7d, 0)
${LOCATION_HELP}
  --json         print {ok, checked, problems, pending} as JSON

example:
  regmeta check --data /srv/registry || echo "restore from backup"
`,
  options,
  exits: { [Exit.PROBLEMS]: 'a problem found', [Exit.DATABASE]: 'the database cannot be opened or stays busy' },
  async run(argv) {
    const args = parse(argv, check, options, { min: 0, max: 0 });
    if (!args) return Exit.OK;
    if (args.values.files && args.values['no-files']) throw usageError('check', '--files and --no-files exclude each other');
    if (args.values.deep && args.values['no-deep']) throw usageError('check', '--deep and --no-deep exclude each other');
    const olderThan = graceCutoff(args.values, 'check');
    const where = location(args.values, 'check');
    const problems: Problem[] = [];
    const pending: Problem[] = [];
    const checked = { integrity: false, foreignKeys: false, manifests: 0, tags: 0, blobReferences: 0, blobFiles: 0, blobBytes: 0 };
    const metadata = await openMetadata(where, { readOnly: true });
    try {
      let bar: Progress | undefined;
      const database = await metadata.check({
        onProgress: (done, total) => (bar ??= new Progress('manifests', { total })).update(done),
      });
      bar?.finish();
      problems.push(...database.problems);
      Object.assign(checked, database.checked);
      const checkFiles = args.values['no-files'] ? false : args.values.files || where.storage !== undefined || existsSync(join(where.data, 'blobs'));
      if (database.complete && checkFiles) await inspectBlobFiles(metadata, where, { problems, pending, olderThan, deep: !args.values['no-deep'] }, checked);
    } finally {
      await metadata.close();
    }
    if (args.values.json) printJson({ ok: problems.length === 0, checked, problems, pending });
    else {
      for (const p of [...problems, ...pending]) println(`${p.kind}  ${p.subject}  ${p.detail}`);
      const files = checked.blobFiles > 0 ? `, ${counted(checked.blobFiles, 'blob file')} (${formatBytes(checked.blobBytes)})` : '';
      const waiting = pending.length > 0 ? `, ${pending.length} pending` : '';
      process.stderr.write(
        `checked ${counted(checked.manifests, 'manifest')}, ${counted(checked.tags, 'tag')}, ${counted(checked.blobReferences, 'blob reference')}${files}: ` +
          `${problems.length === 0 ? 'ok' : counted(problems.length, 'problem')}${waiting}\n`,
      );
    }
    return problems.length === 0 ? Exit.OK : Exit.PROBLEMS;
  },
};

/** Where inspectBlobFiles reports: problems, and files not yet settled (younger than `olderThan`); `deep`: re-hash. */
interface Findings {
  problems: Problem[];
  pending: Problem[];
  olderThan: Date;
  deep: boolean;
}

async function inspectBlobFiles(metadata: Store, where: Location, findings: Findings, checked: Record<string, number | boolean>): Promise<void> {
  const { problems } = findings;
  const store = openBlobs(where);
  let blobs: BlobInfo[];
  try {
    blobs = await metadata.allBlobs();
  } catch (error) {
    // As in the store's check: damage that stops SQLite reading is a problem found.
    if (!(error instanceof StoreError) || error.code !== 'DATABASE_CORRUPT') throw error;
    const cause = error.cause instanceof Error ? error.cause.message : error.message;
    problems.push({ kind: 'integrity', subject: 'database', detail: `SQLite stopped reading: ${cause}` });
    return;
  }
  const totalBytes = blobs.reduce((sum, b) => sum + b.size, 0);
  const progress = new Progress('blob files', { total: totalBytes, unit: 'B' });
  let done = 0;
  for (const blob of blobs) {
    let file: string;
    try {
      file = store.location(blob.digest);
    } catch {
      problems.push({ kind: 'blob-digest', subject: JSON.stringify(blob.digest), detail: 'malformed digest in the blob table' });
      continue;
    }
    let size: number | undefined;
    try {
      size = (await store.stat(blob.digest))?.size;
    } catch (error) {
      // An object storage that cannot answer now says nothing of the blob: the check stops.
      if (error instanceof BlobStoreError && error.code === 'STORAGE_UNAVAILABLE') throw error;
      // Unreadable is as good as missing: the registry cannot serve it either.
    }
    checked.blobFiles = (checked.blobFiles as number) + 1;
    if (size === undefined) {
      problems.push({ kind: 'blob-file', subject: blob.digest, detail: `missing: ${file}` });
      continue;
    }
    if (size !== blob.size) {
      problems.push({ kind: 'blob-file', subject: blob.digest, detail: `${file} has ${size} bytes, recorded ${blob.size}` });
      continue;
    }
    if (findings.deep) {
      const hashed = await hashOf(store, blob.digest, (n) => progress.update((done += n)));
      if (hashed !== true) problems.push({ kind: 'blob-file', subject: blob.digest, detail: `${file} ${hashed}` });
    } else progress.update((done += size));
    checked.blobBytes = (checked.blobBytes as number) + size;
  }
  progress.update(totalBytes);
  progress.finish();
  await inspectStrayFiles(store, new Set(blobs.map((b) => b.digest)), findings);
}

/**
 * Re-hashes the blob's bytes as the blob store reads them out (any storage).
 * @returns true when they hash to `digest`, else what is wrong with them.
 */
async function hashOf(store: BlobStore, digest: string, onBytes: (n: number) => void): Promise<true | string> {
  const [algorithm, hex] = digest.split(':');
  const hash = createHash(algorithm);
  try {
    for await (const chunk of store.read(digest)) {
      hash.update(chunk as Buffer);
      onBytes((chunk as Buffer).byteLength);
    }
  } catch (error) {
    // Gone since its stat (gc), or unreadable: the registry cannot serve it either.
    return `cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
  }
  return hash.digest('hex') === hex ? true : 'does not hash to its digest';
}

/**
 * Files no row names: a push between placing its file and committing its
 * row (pending), or what a crash or an interrupted gc left (problems, once
 * past the grace period; gc removes them by the same rule).
 */
async function inspectStrayFiles(store: BlobStore, known: Set<string>, { problems, pending, olderThan }: Findings): Promise<void> {
  // A file gone since the listing (gc took it, a push renamed it into place) is not listed.
  for await (const { location: file, digest, modified } of store.list()) {
    if (digest !== undefined && known.has(digest)) continue;
    const old = modified.getTime() < olderThan.getTime();
    const subject = digest ?? file;
    if (old) problems.push({ kind: 'blob-orphan', subject, detail: `${file} belongs to no blob of the store (gc removes it)` });
    else pending.push({ kind: 'blob-pending', subject, detail: `${file} belongs to no blob of the store yet, within the grace period` });
  }
}
