// What the rest of regmeta uses of the blob store: blob content and upload
// sessions for the server and the CLI alike, behind the BlobStore contract
// (types.ts), with its own errors; the directory backend (fs/) is the one there is.

export { BlobStoreError } from './errors.js';
export { DirectoryBlobStore } from './fs/directory.js';
export { DEFAULT_BLOB_LIMITS, type BlobFile, type BlobStore, type BlobStoreOptions, type StagedBlob, type Upload } from './types.js';
