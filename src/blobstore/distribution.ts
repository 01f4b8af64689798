// A CNCF distribution (docker-registry) storage, read-only: what `regmeta
// import` reads its repositories, link files and blob data from, in a
// directory (fs/) or a bucket (s3/) alike. Paths are relative to the
// storage's docker/registry/v2 root and '/'-separated, as distribution's own
// (registry/storage/paths.go):
//   repositories/<name>/_manifests/revisions/<alg>/<hex>/link
//   repositories/<name>/_manifests/tags/<tag>/current/link
//   repositories/<name>/_manifests/tags/<tag>/index/<alg>/<hex>/link
//   repositories/<name>/_layers/<alg>/<hex>/link
//   blobs/<alg>/<2 hex>/<hex>/data

import type { BlobSource, BlobStat } from './types.js';

/** A file of the storage, as a listing finds it. */
export interface DistributionFile {
  /** Relative to the v2 root, '/'-separated. */
  readonly path: string;
  readonly size: number;
  readonly modified: Date;
}

/** A distribution storage's v2 tree, read-only. */
export interface DistributionStorage {
  /** Where the v2 root is, for messages: a directory, or s3://bucket/prefix. */
  readonly location: string;
  /**
   * Every file under `dir`, recursively, in no particular order: one
   * listing (a directory walk, or a bucket's paged listing), no reads.
   * Nothing when `dir` is not there.
   * @throws (as the iteration rejects) the storage's error.
   */
  files(dir: string): AsyncIterable<DistributionFile>;
  /** A small file's bytes (a link file, a manifest), or undefined when it is not there. @throws the storage's error. */
  read(path: string): Promise<Buffer | undefined>;
  /** A file's size and time, or undefined when it is not there. @throws the storage's error. */
  stat(path: string): Promise<BlobStat | undefined>;
  /**
   * Where a blob store's `put` takes the file's bytes from: a file to
   * hard-link (`link`) or copy, or an object a store on the same service
   * copies server-side. Touches no storage.
   */
  source(path: string, options: { link: boolean }): BlobSource;
  /** Where `path` is, for messages. */
  locate(path: string): string;
}

/** Where the bytes of blob `digest` are, relative to the v2 root. */
export function distributionBlobPath(digest: string): string {
  const [algorithm, hex] = digest.split(':');
  return `blobs/${algorithm}/${hex.slice(0, 2)}/${hex}/data`;
}
