// What an import reports, and what each of its steps shares: the store, the
// actor, where blob files go, the running summary and the progress bar.

import { StoreError, type Store } from '../../../store/index.js';
import type { BlobStore, DistributionStorage } from '../../../blobstore/index.js';
import type { Location } from '../../open.js';
import type { Progress } from '../../progress.js';

/** What to do with the bytes of linked blobs: hard-link them (else copy), copy them into <data>/blobs, or leave them out. */
export type BlobMode = 'none' | 'link' | 'copy';

export interface Target {
  /** Where the registry is: blob files go to its data directory. */
  where: Location;
  blobs: BlobMode;
  /** Count the files that would be placed, place none. */
  dryRun: boolean;
}

/** One thing the import could not take in, and why. */
export interface ImportProblem {
  repository: string;
  subject: string;
  problem: string;
}

/** The summary an import prints. */
export interface ImportSummary {
  root: string;
  dryRun: boolean;
  repositories: number;
  manifests: { imported: number; present: number };
  tags: { set: number; unchanged: number };
  blobs: { linked: number; present: number; filesPlaced: number };
  problems: ImportProblem[];
  seconds: number;
}

/** One import run, as its steps see it. */
export interface ImportRun {
  /** The distribution storage's docker/registry/v2 tree. */
  root: DistributionStorage;
  store: Store;
  ctx: { actor: string };
  target: Target;
  /** Where blob files go: the blob store on the target's data directory. */
  blobs: BlobStore;
  summary: ImportSummary;
  bar: Progress;
}

/** A summary with nothing done yet. */
export function emptySummary(root: string): ImportSummary {
  return {
    root,
    dryRun: false,
    repositories: 0,
    manifests: { imported: 0, present: 0 },
    tags: { set: 0, unchanged: 0 },
    blobs: { linked: 0, present: 0, filesPlaced: 0 },
    problems: [],
    seconds: 0,
  };
}

/**
 * A store error about one item (bad input, a conflict) as a problem to list;
 * the import goes on with the rest.
 * @throws the error itself when it is about the database (DATABASE_*,
 * STORE_CLOSED) or not the store's: the import cannot go on.
 */
export function problemOf(error: unknown): string {
  if (error instanceof StoreError && !error.code.startsWith('DATABASE_') && error.code !== 'STORE_CLOSED') return `${error.code}: ${error.message}`;
  throw error;
}
