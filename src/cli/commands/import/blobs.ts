// Blobs: each layer linked in the store with the size of its data file and,
// unless --blobs none, that file staged and moved into <data>/blobs inside
// the link's transaction.

import { closeSync, copyFileSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { NotFoundError, StoreError } from 'regmeta';
import { DirectoryBlobStore } from '../../../blobstore/index.js';
import { blobData, type RepositoryScan } from './scan.js';
import { problemOf, type ImportRun, type Target } from './summary.js';

/**
 * Stages the blob file `source` next to `target` (hard link or copy, fsynced,
 * under a temporary name) unless `target` is there already; the slow part,
 * done before the store's write lock is taken.
 * @returns the rename that puts it in place (run inside linkBlob) and the
 * clean-up of what is left staged, or undefined when there is nothing to place.
 * @throws the filesystem's error.
 */
function stageBlob(source: string, target: string, options: Target): { place: () => void; discard: () => void } | undefined {
  if (existsSync(target)) return undefined;
  // A dry run counts the file it would place, and places nothing.
  if (options.dryRun) return { place: () => {}, discard: () => {} };
  mkdirSync(dirname(target), { recursive: true });
  const temporary = `${target}.import-${process.pid}`;
  rmSync(temporary, { force: true });
  let copied = options.blobs === 'copy';
  if (!copied) {
    try {
      linkSync(source, temporary);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK') throw error;
      copied = true; // another filesystem, or links not allowed there
    }
  }
  if (copied) {
    copyFileSync(source, temporary);
    const fd = openSync(temporary, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
  return { place: () => renameSync(temporary, target), discard: () => rmSync(temporary, { force: true }) };
}

/**
 * Links the repository's layers, blobs before manifests: a registry accepts
 * a manifest only once its blobs are linked.
 * @throws StoreError on database failures.
 */
export function importBlobs(run: ImportRun, repo: RepositoryScan): void {
  const { store, ctx, summary, bar, target } = run;
  const { name } = repo;
  const problems = summary.problems;
  for (const digest of repo.layers) {
    bar.tick();
    let linked = false;
    try {
      store.statBlob(name, digest);
      linked = true;
    } catch (error) {
      if (!(error instanceof NotFoundError)) problemOf(error);
    }
    const source = blobData(run.v2, digest);
    let size: number;
    try {
      size = statSync(source).size;
    } catch (error) {
      if (linked) summary.blobs.present++;
      else problems.push({ repository: name, subject: digest, problem: `layer linked but its blob data is missing (${(error as NodeJS.ErrnoException).code})` });
      continue;
    }
    // The file is staged first, then renamed into place inside linkBlob's
    // transaction, under the write lock that gc's file removal also takes:
    // whoever finds the row finds the bytes, and gc cannot remove them
    // between the placing and the link. Linking an already linked blob again
    // refreshes its grace period.
    let staged: ReturnType<typeof stageBlob>;
    try {
      staged = target.blobs === 'none' ? undefined : stageBlob(source, new DirectoryBlobStore(target.dir).location(digest), target);
    } catch (error) {
      problems.push({ repository: name, subject: digest, problem: `cannot place the blob file: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` });
      continue;
    }
    try {
      store.linkBlob(name, { digest, size }, ctx, { place: staged?.place });
      if (linked) summary.blobs.present++;
      else summary.blobs.linked++;
      if (staged) summary.blobs.filesPlaced++;
    } catch (error) {
      const problem =
        error instanceof StoreError
          ? problemOf(error)
          : `cannot place the blob file: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
      problems.push({ repository: name, subject: digest, problem });
    } finally {
      staged?.discard();
    }
  }
}
