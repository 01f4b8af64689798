// Blobs: each layer linked in the store with the size of its data file and,
// unless --blobs none, that file put into the blob store (hard-linked where
// the filesystem allows, else copied) and moved into place inside the link's
// transaction, so that a server on the data directory serves what was imported.

import { NotFoundError, StoreError } from '../../../store/index.js';
import { distributionBlobPath, type StagedBlob } from '../../../blobstore/index.js';
import { unreadable, type RepositoryScan } from './scan.js';
import { problemOf, type ImportRun } from './summary.js';

// What a dry run stages: nothing, but it counts as a file placed.
const NOTHING_STAGED: StagedBlob = { size: 0, place: () => {}, discard: async () => {} };

/**
 * Links the repository's layers, blobs before manifests: a registry accepts
 * a manifest only once its blobs are linked.
 * @throws StoreError on database failures.
 */
export async function importBlobs(run: ImportRun, repo: RepositoryScan): Promise<void> {
  const { store, ctx, summary, bar } = run;
  const { name } = repo;
  const problems = summary.problems;
  for (const digest of repo.layers) {
    bar.tick();
    let linked = false;
    try {
      await store.statBlob(name, digest);
      linked = true;
    } catch (error) {
      if (!(error instanceof NotFoundError)) problemOf(error);
    }
    const source = distributionBlobPath(digest);
    let size: number | undefined;
    try {
      size = (await run.root.stat(source))?.size;
    } catch (error) {
      throw unreadable(run.root.locate(source), error);
    }
    if (size === undefined) {
      if (linked) summary.blobs.present++;
      else problems.push({ repository: name, subject: digest, problem: 'layer linked but its blob data is missing (ENOENT)' });
      continue;
    }
    // The file is staged first, then renamed into place inside linkBlob's
    // transaction, under the write lock that gc's file removal also takes:
    // whoever finds the row finds the bytes, and gc cannot remove them
    // between the placing and the link. Linking an already linked blob again
    // refreshes its grace period.
    let staged: StagedBlob | undefined;
    try {
      staged = await stage(run, source, { digest, size });
    } catch (error) {
      problems.push({ repository: name, subject: digest, problem: `cannot place the blob file: ${errorCode(error)}` });
      continue;
    }
    try {
      await store.linkBlob(name, { digest, size }, ctx, { place: staged?.place });
      if (linked) summary.blobs.present++;
      else summary.blobs.linked++;
      if (staged) summary.blobs.filesPlaced++;
    } catch (error) {
      const problem = error instanceof StoreError ? problemOf(error) : `cannot place the blob file: ${errorCode(error)}`;
      problems.push({ repository: name, subject: digest, problem });
    } finally {
      await staged?.discard();
    }
  }
}

/**
 * Stages the data file `source` (relative to the distribution root) as
 * blob `digest` unless the blob store has it already with its size or
 * --blobs is none; the slow part, done before the store's write lock is taken.
 * @returns what to place, or undefined when there is nothing to place.
 * @throws BlobStoreError, the filesystem's error.
 */
async function stage(run: ImportRun, source: string, { digest, size }: { digest: string; size: number }): Promise<StagedBlob | undefined> {
  const { target, blobs } = run;
  if (target.blobs === 'none') return undefined;
  // Already in place: the registry's storage is the distribution's own (the
  // same bucket and root: nothing is copied), or an earlier run placed it.
  const present = await blobs.stat(digest);
  if (present !== undefined && present.size !== size) throw new Error(`the blob store holds ${present.size} bytes, the source ${size}`);
  if (present !== undefined) return undefined;
  if (target.dryRun) return NOTHING_STAGED;
  return blobs.put(digest, run.root.source(source, { link: target.blobs === 'link' }));
}

function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}
