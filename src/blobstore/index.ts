// What the rest of regmeta uses of the blob store: blob content and upload
// sessions for the server and the CLI alike, behind the BlobStore contract
// (types.ts), with its own errors; a backend per kind of storage (fs/, s3/),
// chosen here from where the blobs are kept.

import type { DistributionStorage } from './distribution.js';
import { DirectoryDistribution } from './fs/distribution.js';
import { BucketDistribution } from './s3/distribution.js';
import { DirectoryBlobStore } from './fs/directory.js';
import { S3BlobStore } from './s3/store.js';
import type { BlobStore, BlobStoreOptions, Storage } from './types.js';

export { distributionBlobPath, type DistributionFile, type DistributionStorage } from './distribution.js';

export { BlobStoreError } from './errors.js';
export {
  DEFAULT_BLOB_LIMITS,
  type BlobFile,
  type BlobStore,
  type BlobStoreOptions,
  type S3Options,
  type StagedBlob,
  type Storage,
  type Upload,
} from './types.js';

/**
 * The blob store for `storage`: a directory's, or an S3 bucket's (whose
 * AWS SDK is loaded on first use). Constructing one touches no storage
 * (init does).
 * @throws TypeError for S3 options out of range (a part size under 5 MiB).
 */
export function createBlobStore(storage: Storage, options: BlobStoreOptions = {}): BlobStore {
  if ('directory' in storage) return new DirectoryBlobStore(storage.directory, options);
  return new S3BlobStore(storage.s3, options);
}

/**
 * The CNCF distribution storage at `storage`, read-only: its
 * docker/registry/v2 tree, or `storage` itself when it is that tree (both
 * hold repositories and blobs).
 * @returns undefined when there is none.
 * @throws BlobStoreError STORAGE_UNAVAILABLE (a bucket's service away or
 * failing); the storage's error.
 */
export async function openDistribution(storage: Storage): Promise<DistributionStorage | undefined> {
  if ('directory' in storage) return DirectoryDistribution.find(storage.directory);
  return BucketDistribution.find(storage.s3);
}
