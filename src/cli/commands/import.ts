// `regmeta import <root>`: a CNCF distribution registry's filesystem storage
// into the store. Everything goes through the store's public API; every write
// checks first whether it is already done, so a second run, or a run after a
// kill, ends in the same state as one clean run. The parts are in import/:
// scan the layout (scan.ts), stage blobs (blobs.ts), read revisions
// (revisions.ts), replay tags (tags.ts), in that order per repository (run.ts).

import { resolve } from 'node:path';
import type { Store } from '../../store/index.js';
import { JSON_OPTION, parse, type Command } from '../args.js';
import { LOCATION_HELP, LOCATION_OPTIONS, location } from '../config/location.js';
import { CliError, Exit, usageError } from '../exit.js';
import { openMetadata, scratchCopy, type Location } from '../open.js';
import { printJson, println } from '../output.js';
import { counted } from '../units.js';
import { importInto } from './import/run.js';
import { openDistribution, type DistributionStorage, type Storage } from '../../blobstore/index.js';
import { s3Argument, s3Url } from '../config/storage.js';
import { unreadable } from './import/scan.js';
import type { BlobMode, ImportSummary, Target } from './import/summary.js';

const options = {
  ...LOCATION_OPTIONS,
  ...JSON_OPTION,
  'dry-run': { type: 'boolean', short: 'n' },
  actor: { type: 'string' },
  blobs: { type: 'string' },
} as const;

export const importCommand: Command = {
  name: 'import',
  usage: `usage: regmeta import <root|s3-url> [--blobs none|link|copy] [--dry-run] [--actor <name>] [--data <dir>] [--database <url>] [--storage <s3-url>] [--json]

Imports the repositories, manifests, tags (with their history) and blob links
of a CNCF distribution (docker-registry) storage: its filesystem storage,
whose rootdirectory is <root> (the directory holding docker/registry/v2), or
its s3 storage, given as s3://<bucket>/<rootdirectory> (with ?endpoint=…,
region and forcePathStyle as --storage takes them; credentials from the AWS
chain). The tree is listed once, then each link file read.
Creates the database if it is missing.

Blobs go where the registry keeps them (--storage, or <data>/blobs). With
--storage on the same bucket, at the distribution's <rootdirectory>/docker/
registry/v2, they are in place already (regmeta's bucket layout is
distribution's): each is checked there with its size and linked, nothing
copied. Then the bucket is the registry's: its gc removes what no row
names, distribution's manifest data and deleted content included, so do
not go on serving it with distribution. Elsewhere on the same service
they are copied server-side (CopyObject); from another service or a
directory, streamed and hashed on the way.

Every manifest's bytes are read from the blob store and verified against their
digest; a mismatch, a missing file or an unsupported manifest (schema 1) is
reported as a problem and skipped. Blobs are linked first (with their sizes
from the blob files), then manifests (an index after its children), then tags.
Idempotent and resumable: running it again, also after an interruption, ends
in the same state.

options:
  --blobs <mode>   the bytes of linked blobs, which the server serves from
                   <data>/blobs (or the bucket of --storage): link (default)
                   hard-links them there, copying where links are not
                   possible (another filesystem, a bucket); copy copies
                   them; none leaves them out, for a store without a
                   server. 'regmeta check --deep' hashes them
  --dry-run, -n    import into a scratch copy of the database and report
                   what would change; the database is not touched (SQLite
                   only: refused with --database for now)
  --actor <name>   the actor of the import's events (default regmeta-import)
${LOCATION_HELP}
  --json           print the summary as JSON

exit: 0 when all was imported, 1 when problems were found (the rest is in).

example:
  regmeta import /var/lib/docker-registry --data /srv/regmeta
  regmeta import s3://registry/prod --storage s3://registry/prod/docker/registry/v2 --database postgres://regmeta@db/regmeta
`,
  options,
  exits: { [Exit.PROBLEMS]: 'problems found (the rest is imported)' },
  async run(argv) {
    const args = parse(argv, importCommand, options, { min: 1, max: 1 });
    if (!args) return Exit.OK;
    const root = args.positionals[0];
    const bucket = /^s3:\/\//i.test(root) ? s3Argument(root, 'import', '<root>') : undefined;
    const v2 = await distributionRoot(bucket === undefined ? { directory: resolve(root) } : { s3: bucket });
    const where = location(args.values, 'import');
    const actor = args.values.actor ?? 'regmeta-import';
    const blobs = (args.values.blobs ?? 'link') as BlobMode;
    if (!['none', 'link', 'copy'].includes(blobs)) throw usageError('import', '--blobs must be none, link or copy');
    const dryRunning = args.values['dry-run'] === true;
    const target: Target = { where, blobs, dryRun: dryRunning };
    const summary = dryRunning ? await dryRun(v2, target, actor) : await importInto(v2, await openTarget(where), actor, target);
    summary.root = bucket === undefined ? resolve(root) : s3Url(bucket);
    if (args.values.json) printJson(summary);
    else {
      for (const p of summary.problems) process.stderr.write(`regmeta import: ${p.repository} ${p.subject}: ${p.problem}\n`);
      const verb = summary.dryRun ? 'would import' : 'imported';
      println(
        `${verb} ${counted(summary.repositories, 'repository', 'repositories')}: ${counted(summary.manifests.imported, 'manifest')} (${summary.manifests.present} already there), ` +
          `${counted(summary.tags.set, 'tag')} set (${summary.tags.unchanged} unchanged), ${counted(summary.blobs.linked, 'blob')} linked ` +
          `(${summary.blobs.present} already there, ${counted(summary.blobs.filesPlaced, 'file')} placed), ${counted(summary.problems.length, 'problem')}, ` +
          `in ${summary.seconds.toFixed(1)}s`,
      );
    }
    return summary.problems.length === 0 ? Exit.OK : Exit.PROBLEMS;
  },
};

/** The store to import into: created when missing, refused when foreign. */
function openTarget(where: Location): Promise<Store> {
  // 'normal': no fsync per commit. A power loss may take back the last
  // manifests, and running the import again puts them back.
  return openMetadata(where, { create: true, durability: 'normal' });
}

/** The import on a scratch copy of the database (or an empty one): exact, and changes nothing. */
async function dryRun(v2: DistributionStorage, target: Target, actor: string): Promise<ImportSummary> {
  const refusal = { what: 'import --dry-run', hint: 'import into an empty SQLite store with --data first to see what would change' };
  const copy = await scratchCopy(target.where, 'regmeta-import-', refusal);
  try {
    return { ...(await importInto(v2, copy.store, actor, target)), dryRun: true };
  } finally {
    copy.remove();
  }
}

/**
 * The distribution storage at `root`: its docker/registry/v2, or `root` itself.
 * @throws CliError USAGE when there is none there, IO when it cannot be read.
 */
async function distributionRoot(root: Storage): Promise<DistributionStorage> {
  const where = 'directory' in root ? root.directory : s3Url(root.s3);
  let found: DistributionStorage | undefined;
  try {
    found = await openDistribution(root);
  } catch (error) {
    throw unreadable(where, error);
  }
  if (found !== undefined) return found;
  throw new CliError(
    Exit.USAGE,
    `no distribution storage at ${where} (no docker/registry/v2/repositories and blobs under it)`,
    'directory' in root ? "pass the registry's storage.filesystem.rootdirectory" : "pass s3://<its storage.s3.bucket>/<its rootdirectory>, with ?endpoint=… for a service other than AWS",
  );
}
