// `regmeta migrate --blobs-to s3://…`: the blobs of --data's directory store
// copied into another blob storage (a bucket), through the blob store
// contract on both sides. Resumable: what the target holds with its size is
// skipped, so a run after an interruption copies only the rest. Verified:
// every copied byte is hashed by the target's put on the way, and a final
// pass compares the two listings (digests and sizes). A registry may go on
// serving the directory meanwhile; what it stores after the final pass is
// not copied, so the run that finishes goes after it stops taking pushes.

import type { BlobStore } from '../../blobstore/index.js';
import { Progress } from '../progress.js';

/** Blobs copied at once: enough to keep an object store busy, few enough for 2 cores. */
const CONCURRENCY = 4;

/** What a blob migration did, and what its final pass found. */
export interface BlobMigrationSummary {
  source: string;
  target: string;
  /** The blobs the source held at the start, and their bytes. */
  blobs: number;
  bytes: number;
  /** Copied by this run. */
  copied: { blobs: number; bytes: number };
  /** Already in the target with their size (an earlier run's, or a registry's there). */
  skipped: { blobs: number; bytes: number };
  /** Gone from the source while the run went on (gc took them): nothing to copy. */
  gone: number;
  /** Blobs that could not be copied, each with why. */
  problems: { digest: string; problem: string }[];
  /** The final pass: blobs of the source missing from the target, or there with another size. */
  missing: string[];
  sizeDiffers: string[];
  verified: boolean;
  seconds: number;
}

/** A blob as a listing found it. */
interface Listed {
  digest: string;
  size: number;
}

/**
 * Copies every blob of `source` that `target` lacks (or holds with another
 * size), then compares the two.
 * @throws the storage's error when a listing fails (either side).
 */
export async function migrateBlobs(source: BlobStore, target: BlobStore, names: { source: string; target: string }): Promise<BlobMigrationSummary> {
  const started = Date.now();
  const blobs = await listed(source);
  const present = new Map((await listed(target)).map((b) => [b.digest, b.size]));
  const summary: BlobMigrationSummary = {
    ...names,
    blobs: blobs.length,
    bytes: blobs.reduce((sum, b) => sum + b.size, 0),
    copied: { blobs: 0, bytes: 0 },
    skipped: { blobs: 0, bytes: 0 },
    gone: 0,
    problems: [],
    missing: [],
    sizeDiffers: [],
    verified: false,
    seconds: 0,
  };
  const bar = new Progress('copy blobs', { total: summary.bytes, unit: 'B' });
  const todo = blobs.filter((b) => {
    if (present.get(b.digest) !== b.size) return true;
    summary.skipped.blobs++;
    summary.skipped.bytes += b.size;
    return false;
  });
  bar.update(summary.skipped.bytes);
  try {
    let next = 0;
    const worker = async () => {
      while (next < todo.length) await copyOne(source, target, todo[next++], summary, bar);
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, todo.length) }, worker));
  } finally {
    bar.finish();
  }
  await compare(source, target, summary);
  summary.seconds = (Date.now() - started) / 1000;
  return summary;
}

/**
 * Copies one blob: the target's put hashes the bytes as they come and
 * refuses them unless they match the digest, then they are placed. Nothing
 * collects blobs from the target while it is not yet served, so the placing
 * needs no metadata lock; a registry that serves it already loses nothing
 * either (gc there removes only what its store does not know).
 */
async function copyOne(source: BlobStore, target: BlobStore, blob: Listed, summary: BlobMigrationSummary, bar: Progress): Promise<void> {
  const body = source.read(blob.digest);
  body.on('data', (chunk: Buffer) => bar.tick(chunk.byteLength));
  try {
    const staged = await target.put(blob.digest, body);
    try {
      await staged.place();
    } finally {
      await staged.discard();
    }
    summary.copied.blobs++;
    summary.copied.bytes += blob.size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && (await source.stat(blob.digest).catch(() => undefined)) === undefined) summary.gone++;
    else summary.problems.push({ digest: blob.digest, problem: describe(error) });
  } finally {
    body.destroy();
  }
}

/** The final pass: every blob the source holds now is in the target with its size. */
async function compare(source: BlobStore, target: BlobStore, summary: BlobMigrationSummary): Promise<void> {
  const bar = new Progress('verify', {});
  const there = new Map<string, number>();
  for (const blob of await listed(target)) {
    there.set(blob.digest, blob.size);
    bar.tick();
  }
  for (const blob of await listed(source)) {
    const size = there.get(blob.digest);
    if (size === undefined) summary.missing.push(blob.digest);
    else if (size !== blob.size) summary.sizeDiffers.push(blob.digest);
    bar.tick();
  }
  bar.finish();
  summary.verified = summary.missing.length === 0 && summary.sizeDiffers.length === 0 && summary.problems.length === 0;
}

/** The blobs a store holds (leftovers that name no digest left out), in digest order. */
async function listed(store: BlobStore): Promise<Listed[]> {
  const found: Listed[] = [];
  for await (const file of store.list()) if (file.digest !== undefined) found.push({ digest: file.digest, size: file.size });
  return found.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
}

function describe(error: unknown): string {
  const { code, name, message } = error as NodeJS.ErrnoException;
  return code ?? (name && name !== 'Error' ? `${name}: ${message}` : message);
}

