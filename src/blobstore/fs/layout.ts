// Where things are under a data directory: blobs/<algorithm>/<2 hex>/<hex>
// for finished blobs, uploads/<id> for sessions in progress. The same layout
// as distribution's, minus its per-blob directory and `data` file, so a blob
// is one file that one rename puts in place.

import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { isDigest } from '../../store/index.js';
import { BlobStoreError } from '../errors.js';

/**
 * Where blob `digest` lives under a data directory.
 * @throws BlobStoreError DIGEST_INVALID for a digest that does not pass the
 * grammar: nothing from outside reaches the filesystem unchecked.
 */
export function blobPath(dataDir: string, digest: string): string {
  if (!isDigest(digest)) throw new BlobStoreError('DIGEST_INVALID', 'invalid digest');
  const [algorithm, hex] = digest.split(':');
  return path.join(dataDir, 'blobs', algorithm, hex.slice(0, 2), hex);
}

/** The file of upload session `id`. Ids are the store's own UUIDs, never a client's text. */
export function uploadPath(dataDir: string, id: string): string {
  return path.join(dataDir, 'uploads', id);
}

/** A file under blobs/, as a listing finds it. */
interface BlobFile {
  file: string;
  /** The blob its place names; undefined when it is not where a blob would be (a leftover temporary). */
  digest?: string;
  size: number;
  modified: Date;
}

/**
 * Every file under <data>/blobs, read as the caller iterates. A file that
 * disappears between the directory read and its stat (gc took it, a push
 * renamed it) is left out; so is one that cannot be looked at. Never throws.
 */
export function* blobFilesIn(dataDir: string): Generator<BlobFile> {
  const root = path.join(dataDir, 'blobs');
  for (const algorithm of entries(root)) {
    for (const prefix of entries(path.join(root, algorithm.name))) {
      for (const entry of entries(path.join(root, algorithm.name, prefix.name))) {
        if (!entry.isFile()) continue;
        const file = path.join(root, algorithm.name, prefix.name, entry.name);
        const stats = statOf(file);
        if (stats === undefined) continue;
        const digest = `${algorithm.name}:${entry.name}`;
        const named = isDigest(digest) && entry.name.startsWith(prefix.name);
        yield { file, ...(named ? { digest } : {}), size: stats.size, modified: stats.mtime };
      }
    }
  }
}

// A file gone since the listing, or one that cannot be looked at: nothing to judge.
function statOf(file: string) {
  try {
    return statSync(file);
  } catch {
    return undefined;
  }
}

// A directory that is missing or unreadable holds nothing to list.
function entries(dir: string) {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}
