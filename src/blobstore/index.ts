// What the rest of regmeta uses of the blob store: blob content and upload
// sessions for the server and the CLI alike, behind the BlobStore contract
// (types.ts), with its own errors; a backend per kind of storage (fs/, s3/),
// chosen here from where the blobs are kept.

import { DirectoryBlobStore } from './fs/directory.js';
import type { BlobStore, BlobStoreOptions, Storage } from './types.js';

export { BlobStoreError } from './errors.js';
export {
  DEFAULT_BLOB_LIMITS,
  type BlobFile,
  type BlobStore,
  type BlobStoreOptions,
  type S3Options,
  type StagedBlob,
  type Upload,
} from './types.js';

/**
 * The blob store for `storage`. Constructing one touches no storage (init
 * does).
 * @throws TypeError for a kind of storage this build does not have.
 */
export function createBlobStore(storage: Storage, options: BlobStoreOptions = {}): BlobStore {
  if ('directory' in storage) return new DirectoryBlobStore(storage.directory, options);
  throw new TypeError('S3 storage is not built yet');
}
