// What the rest of regmeta uses of the blob store: blob content and upload
// sessions for the server and the CLI alike, behind the BlobStore contract
// (types.ts), with its own errors; the directory backend (fs/) is the one there is.

export { BlobStoreError, type BlobStoreErrorCode, type BlobStoreErrorOptions } from './errors.js';
export { DirectoryBlobStore } from './fs/directory.js';
export { MemorySessionTable } from './sessions.js';
export {
  DEFAULT_BLOB_LIMITS,
  type BlobFile,
  type BlobSource,
  type BlobStat,
  type BlobStore,
  type BlobStoreOptions,
  type ChunkClaim,
  type StagedBlob,
  type StoredFile,
  type Upload,
} from './types.js';
