// The blob store's contract: what the server and the CLI may ask of blob
// content and upload sessions, and what every backend implements (the
// directory store in fs/; an object store beside it).
//
// The one rule every backend keeps: a blob appears under its digest or
// disappears from it only inside an operation the caller runs under the
// metadata store's lock, as the store's LockedAction: `StagedBlob.place`
// inside linkBlob, `delete` and `remove` inside collectBlob or
// whileBlobUnknown. So gc, which removes a blob only while no row names it,
// can never race a push or an import. Each of those operations is one
// function that may finish at once or return a promise: a backend whose
// operations finish at once (the directory store's rename, fsync and unlink)
// runs inside the metadata store's transaction; one whose operations are
// asynchronous (an object store's requests) runs under the digest's lock
// held across its awaits, which every Store does (only the synchronous
// MetadataStore refuses a promise). Callers pass `place` on as it is, and
// `delete` and `remove` (whose result says whether the blob was there)
// inside a LockedAction of their own; none asks which backend it has.

import type { Readable } from 'node:stream';
import type { LockedAction, UploadSessions } from '../store/index.js';

/** A blob as stored. */
export interface BlobStat {
  size: number;
  modified: Date;
}

/**
 * A stored blob opened for reads at any position: what a server sends a blob
 * from, in pieces as large as it likes, into buffers it reuses. Close it
 * once done.
 */
export interface BlobFile {
  /**
   * Reads up to `length` bytes at `position` into `buffer` from `offset`.
   * @returns the bytes read: 0 at the end of the blob.
   * @throws the storage's error.
   */
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<number>;
  /** Lets go of the blob. Never throws. */
  close(): Promise<void>;
}

/** Something stored under blobs, as `list` finds it. */
export interface StoredFile {
  /** Where it is, for messages: a path, for the directory store. */
  readonly location: string;
  /** The blob its place names; undefined when it is not where a blob would be (a leftover temporary). */
  readonly digest?: string;
  readonly size: number;
  readonly modified: Date;
}

/** Bytes checked and flushed, not yet visible under their digest. */
export interface StagedBlob {
  readonly size: number;
  /**
   * Makes the blob visible under its digest: pass it as it is (it needs no
   * `this`) to the store's linkBlob as its `place` option, which runs it
   * under the lock. Placing a blob that is there already is harmless (same
   * digest, same bytes).
   * @throws the storage's error (or rejects with it).
   */
  readonly place: LockedAction;
  /** Removes what is still staged: after `place`, nothing; after a failed link, the bytes. Never throws. */
  discard(): Promise<void>;
}

/**
 * An object in an S3-compatible bucket (a distribution registry's blob): a
 * store on the same service copies it there (server-side, nothing through
 * this process); any other store reads it through `read`.
 */
interface ObjectSource {
  readonly object: { readonly endpoint?: string; readonly bucket: string; readonly key: string };
  /** The object's bytes. A failure fails the stream. */
  read(): Readable;
}

/** Where `put` takes a blob's bytes from: a stream, a file to hard-link (`link`) or copy, or an object. */
export type BlobSource = Readable | { file: string; link?: boolean } | ObjectSource;

/** An upload session, as callers see it. */
export interface Upload {
  readonly id: string;
  /** The repository it was opened for: no other may touch it. */
  readonly repo: string;
  /** Bytes committed so far, as this handle last saw them (an append through it updates them). */
  readonly size: number;
}

/**
 * Checks a chunk against the session once the caller has it alone, and
 * returns the chunk's length (undefined: not known). What it throws ends the
 * append with nothing written.
 */
export type ChunkClaim = (upload: Upload) => number | undefined;

export interface BlobStoreOptions {
  /** The largest blob accepted, in bytes. */
  maxBlobSize?: number;
  /** Sessions idle longer than this (ms) are dropped with their bytes. */
  uploadTtl?: number;
  /** Upload sessions one client address may hold open at once; 0 turns the cap off. */
  maxUploadsPerAddress?: number;
  /**
   * How long (ms) a writer's claim on a session lasts unless renewed (it is,
   * every third of it, while a body streams): a writer that died holds a
   * session this long at most.
   */
  claimLease?: number;
  /**
   * Where the sessions are kept: the metadata store's (`store.uploads`), for
   * a registry whose processes share the storage (and for sessions that
   * outlive a restart); default, a MemorySessionTable in this process.
   */
  sessions?: UploadSessions;
}

/**
 * The defaults: 64 GiB blobs; a day for an idle session (a resumable push
 * may pause); 256 sessions, dozens of concurrent pushes' worth; a claim of a
 * minute, renewed while a body streams.
 */
export const DEFAULT_BLOB_LIMITS: Required<Omit<BlobStoreOptions, 'sessions'>> = {
  maxBlobSize: 64 * 1024 ** 3,
  uploadTtl: 24 * 3600 * 1000,
  maxUploadsPerAddress: 256,
  claimLease: 60_000,
};

/**
 * Blob content and upload sessions. Digests passed in must have passed the
 * grammar; a malformed one is refused with BlobStoreError DIGEST_INVALID
 * before it reaches the storage. What the session table refuses with the
 * store's TOOMANYREQUESTS or BLOB_UPLOAD_UNKNOWN comes out as a
 * BlobStoreError of that code; its other errors, and failures of the
 * storage itself (a full disk: ENOSPC, EDQUOT), pass through as they are.
 */
export interface BlobStore {
  /** The largest blob accepted, in bytes. */
  readonly maxBlobSize: number;

  /**
   * Prepares the storage for upload sessions and starts expiring idle ones.
   * Sessions already there (another process's, or this one's before a
   * restart) stay. Reading, putting and deleting need no init.
   * @throws the storage's error.
   */
  init(): void;
  /** Ends what init started (the expiry of idle sessions). Never throws. */
  close(): void;
  /**
   * Upload sessions open now (started, not yet finished, cancelled or
   * expired) in the session table: with a table in the metadata database,
   * every process's. @throws the table's error.
   */
  countUploads(): Promise<number>;

  /** Where blob `digest` is kept, for messages. @throws BlobStoreError DIGEST_INVALID. */
  location(digest: string): string;
  /** The stored blob's size and time, or undefined when it is not there. @throws BlobStoreError DIGEST_INVALID; the storage's error. */
  stat(digest: string): Promise<BlobStat | undefined>;
  /**
   * The blob's bytes `start`..`end` (inclusive; default all). A blob that is
   * not there fails the stream, not the call.
   * @throws BlobStoreError DIGEST_INVALID.
   */
  read(digest: string, start?: number, end?: number): Readable;
  /**
   * The blob opened for positional reads, or undefined when it is not there.
   * @throws BlobStoreError DIGEST_INVALID; the storage's error.
   */
  open(digest: string): Promise<BlobFile | undefined>;
  /**
   * Removes the blob: run it under the store's lock (collectBlob's
   * `removeFile`, whileBlobUnknown), as `() => blobs.delete(digest)`.
   * @returns false when it was not there (at once, or as a promise).
   * @throws BlobStoreError DIGEST_INVALID; the storage's error (or rejects with it).
   */
  delete(digest: string): boolean | Promise<boolean>;
  /**
   * Writes a file where uploads are written, moves it where blobs are kept
   * and removes it, as a push does: that the storage takes blobs now.
   * @throws the storage's error (EROFS, ENOSPC, EACCES, ENOTDIR).
   */
  checkWritable(): Promise<void>;
  /** The bytes free for blobs, for this process's user; Infinity where the storage sets no bound (an object store). @throws the storage's error. */
  freeBytes(): Promise<number>;
  /**
   * A short-lived URL from which a client may fetch the blob's bytes itself,
   * without the registry in the data path (an object store's pre-signed
   * GET); undefined where the storage has none (a directory). Nothing checks
   * that the blob is there.
   * @throws BlobStoreError DIGEST_INVALID; the storage's error.
   */
  signedUrl(digest: string, expiresInSeconds: number): Promise<string | undefined>;
  /**
   * Everything stored under blobs, blobs and leftovers alike, read as the
   * caller iterates. @throws (as the iteration rejects) the storage's error.
   */
  list(): AsyncIterable<StoredFile>;
  /**
   * Removes one thing `list` gave out; one that names a digest only under
   * the store's lock (whileBlobUnknown), as `() => blobs.remove(file)`.
   * @returns false when it was gone already (at once, or as a promise).
   * @throws TypeError for anything `list` did not give out (no caller names
   * an arbitrary place); the storage's error (or rejects with either).
   */
  remove(file: StoredFile): boolean | Promise<boolean>;

  /**
   * Stages the bytes of blob `digest` from `source`. Copied bytes are hashed
   * on the way and must match `digest`; a hard link reads nothing and is
   * taken as it is (its source is content-addressed already; `regmeta check`
   * hashes every blob). Linking falls back to a copy where the storage cannot
   * link (another filesystem, links not permitted).
   * @throws BlobStoreError DIGEST_INVALID (malformed, or copied bytes that
   * hash otherwise; `detail.digest` says what they hash to), SIZE_INVALID
   * (above maxBlobSize, with `limit`), BLOB_UPLOAD_INVALID (the stream
   * closed before its end); what the stream fails with; the storage's error
   * (ENOENT: no such source file). Nothing stays staged then.
   */
  put(digest: string, source: BlobSource): Promise<StagedBlob>;

  /**
   * Opens an empty upload session for `repo` on behalf of client address `client`.
   * @throws BlobStoreError TOOMANYREQUESTS (with `retryAfter`) when `client`
   * holds as many sessions as it may; the storage's error.
   */
  startUpload(repo: string, client: string): Promise<Upload>;
  /**
   * The session `id`, which must belong to `repo`: one repository cannot
   * touch another's uploads. Any process sharing the session table may
   * take it up.
   * @throws BlobStoreError BLOB_UPLOAD_UNKNOWN; the table's error.
   */
  upload(repo: string, id: string): Promise<Upload>;
  /**
   * Appends `body` to the session, hashing as it goes, after any append
   * already running on it in any process sharing the session table (one
   * writer at a time: a claim in the table). A body that fails half way (the
   * client went away, the size limit) is cut back off, so the session stays
   * at its previous size. `claim` is the body's length, or a ChunkClaim,
   * which sees the session's committed size.
   * @throws BlobStoreError BLOB_UPLOAD_UNKNOWN (finished or cancelled
   * meanwhile), SIZE_INVALID (longer or shorter than claimed; above
   * maxBlobSize, with `limit`), BLOB_UPLOAD_INVALID (the body ended early),
   * TOOMANYREQUESTS (another writer held the session longer than a claim
   * lease; `retryAfter` set); what `claim` throws; the storage's error.
   */
  append(upload: Upload, body: Readable, claim?: number | ChunkClaim): Promise<void>;
  /**
   * Ends the session as blob `digest`, after any append running on it: checks
   * the digest and flushes the bytes. The session is over either way; on a
   * failure nothing is left of it.
   * @throws BlobStoreError DIGEST_INVALID (`detail.digest` is what the bytes
   * hash to), BLOB_UPLOAD_UNKNOWN (finished meanwhile), TOOMANYREQUESTS (as
   * append's); the storage's error.
   */
  finish(upload: Upload, digest: string): Promise<StagedBlob>;
  /**
   * Ends the session and discards its bytes; a session already over is no error.
   * @throws BlobStoreError BLOB_UPLOAD_UNKNOWN for a handle this store did not give out; the storage's error.
   */
  cancel(upload: Upload): Promise<void>;
  /**
   * Expires the sessions idle past the upload TTL, with their bytes, and
   * removes upload bytes older than `strayBefore` (default: the TTL) that no
   * session names, each checked against the session table after the
   * listing: what init's sweeper runs, and `regmeta gc`.
   * @returns how many sessions it expired, and where the stray bytes it removed were.
   * @throws the table's or the storage's error.
   */
  sweepUploads(options?: { strayBefore?: Date }): Promise<{ expired: number; strays: string[] }>;
}

/**
 * An S3-compatible bucket to keep blobs in (AWS S3, MinIO, Ceph RGW,
 * Cloudflare R2, GCS's XML API). Credentials come from the AWS SDK's
 * standard chain (environment, shared config and credentials files, SSO,
 * web identity, the container or instance role), never from here.
 */
export interface S3Options {
  bucket: string;
  /** The key prefix everything goes under, without a leading or trailing slash; '' for the bucket's root. */
  prefix: string;
  /** The service's URL (http://127.0.0.1:9000); default, AWS S3 for `region`. */
  endpoint?: string;
  /** The signing region; default, the SDK's chain, else us-east-1. */
  region?: string;
  /** Path-style URLs (endpoint/bucket/key), as MinIO and most self-hosted services want. */
  forcePathStyle?: boolean;
  /**
   * Bytes per multipart part, at least 5 MiB (S3's smallest but the last);
   * default 16 MiB; raised where the largest blob would need more than S3's
   * 10,000 parts. A writer holds about three parts in memory.
   */
  partSize?: number;
}

/** Where blobs are kept: a directory, or an S3-compatible bucket. */
export type Storage = { directory: string } | { s3: S3Options };
