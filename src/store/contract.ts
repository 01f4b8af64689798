// The one contract of the registry's metadata, documented here and only
// here: what the server, the CLI, webhooks and migration use, and what every
// backend implements: the SQLite store (src/store/sqlite/, synchronous, and
// asynchronous through asyncStore) and the PostgreSQL store (src/store/postgres/).
// Its methods of keeping a registry in shape (tag details, pull statistics,
// sizes, retention, event pruning, job leases) are documented beside it, in
// contract-governance.ts, whose interface Store extends.

import type { GovernanceMethods } from './contract-governance.js';
import type { Reference } from './grammar.js';
import type { StoreLimits } from './limits.js';
import type { BlobInfo, Context, DatabaseCheck, Descriptor, Event, EventPage, EventQuery, Manifest, ManifestInfo } from './types.js';
import type { BackupOptions, BackupResult, CatalogOptions, NewEvent, PageOptions, PutManifestResult, StoreStats } from './types.js';
import type { StoredManifest, StorePolicy, TagHistoryEntry, UntaggedManifest } from './types.js';
import type { NotificationCursors } from './notifications.js';
import type { UploadSessions } from './uploads.js';
import { methodList } from './methods.js';

export type { Synchronous } from './methods.js';

export type { NotificationCursors, UploadSessions };

/**
 * A callback a store runs under the lock that guards a blob's file (its
 * digest's), which every process and replica on the store respects. Every
 * Store awaits one that returns a promise, the lock held across the awaits:
 * PostgreSQL inside its transaction (an advisory lock), SQLite between two
 * transactions (a row of its lock table, leased; see asyncStore). The
 * synchronous MetadataStore runs one inside its transaction and refuses a
 * promise with ARGUMENT_INVALID.
 */
export type LockedAction = () => void | Promise<void>;

/**
 * The metadata of a registry: DTR's ManifestStore, TagStore and
 * EventManager. Every method (GovernanceMethods' too) is one transaction (collectBlob's file removal
 * is a deliberate second one, after the commit; on SQLite, a locked action
 * that awaits runs between two) and fails with the
 * StoreError family: a promise that rejects here, an exception from
 * MetadataStore, whose methods are these, synchronous.
 */
export interface Store extends GovernanceMethods {
  /** Which backend this is, for messages and metrics ('sqlite' or 'postgres'). */
  readonly backend: 'sqlite' | 'postgres';
  /** Where the metadata lives: the SQLite file, or the PostgreSQL URL with its password masked. */
  readonly location: string;
  /** The limits this store enforces, for callers that must agree with them (a server reading a manifest body). */
  readonly limits: StoreLimits;
  /** The immutable tags and quotas this store enforces (StoreOptions.policy), for callers that check early (a server refusing an upload before its bytes). */
  readonly policy: StorePolicy;
  /** The webhook endpoints' cursors into the event log (regmeta serve --notify). */
  readonly notifications: NotificationCursors;
  /** Blob upload sessions, shared by every process on the store (regmeta serve's blob storage keeps them here). */
  readonly uploads: UploadSessions;

  // --- manifests ----------------------------------------------------------------
  /**
   * Stores a manifest's exact bytes in `repo`, creating the repository on first
   * use, and records the blobs, child manifests and subject it references.
   * `digest` is checked against the payload; when undefined (a push by tag),
   * the payload's sha256 is the digest. Putting the same manifest again
   * changes nothing but the time the garbage collector's grace period counts
   * from. With `options.tag`, the tag is pointed at it in the same
   * transaction (a push by tag). With `options.requireReferences`, every blob
   * it references must be linked in `repo` (non-distributable layers, which
   * clients fetch elsewhere, aside) and every child manifest present
   * there (its subject may be missing), checked in the same transaction, so
   * that no concurrent delete slips between the check and the write.
   * @returns its digest and subject: what a registry answers with, so that
   * nothing parses the manifest a second time.
   * @throws StoreError NAME_INVALID, TAG_INVALID, DIGEST_INVALID (malformed, or
   * not the hash of the payload), MANIFEST_INVALID, SIZE_INVALID (above
   * `limits.maxManifestSize`), MANIFEST_BLOB_UNKNOWN (a missing reference,
   * with `detail.digest`), DENIED (`options.tag` is immutable and points
   * elsewhere: see putTag).
   */
  putManifest(
    repo: string,
    digest: string | undefined,
    manifest: Manifest,
    ctx?: Context,
    options?: { tag?: string; requireReferences?: boolean },
  ): Promise<PutManifestResult>;
  /**
   * The manifest `digest` of `repo`, with its exact bytes.
   * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN; StoreError NAME_INVALID, DIGEST_INVALID.
   */
  getManifest(repo: string, digest: string): Promise<StoredManifest>;
  /**
   * The manifest `digest` of `repo` without its bytes: what HEAD needs.
   * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN; StoreError NAME_INVALID, DIGEST_INVALID.
   */
  statManifest(repo: string, digest: string): Promise<ManifestInfo>;
  /**
   * The manifest a reference names in `repo`: by digest, or by tag in one
   * statement (the tag and what it points at read together). A string is
   * parsed as a URL's `<reference>`: a digest when it has an algorithm
   * prefix, else a tag. With `options.head`, without its bytes.
   * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN (no such manifest,
   * or no such tag); StoreError NAME_INVALID, TAG_INVALID, DIGEST_INVALID.
   */
  getManifestByReference(repo: string, reference: string | Reference, options: { head: true }): Promise<ManifestInfo>;
  getManifestByReference(repo: string, reference: string | Reference, options?: { head?: false }): Promise<StoredManifest>;
  getManifestByReference(repo: string, reference: string | Reference, options?: { head?: boolean }): Promise<ManifestInfo | StoredManifest>;
  /**
   * Removes a manifest from `repo` and, in the same transaction, every tag of
   * it (a DELETE TAG event each). A tag of it that is immutable refuses the
   * delete, as deleteTag does, unless `ctx.admin`.
   * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN; StoreError
   * MANIFEST_REFERENCED while an index in `repo` lists it; DENIED (an
   * immutable tag on it); NAME_INVALID, DIGEST_INVALID.
   */
  deleteManifest(repo: string, digest: string, ctx?: Context): Promise<void>;
  /**
   * The manifests of `repo` whose `subject` is `digest`, as descriptors for
   * the referrers API, optionally only those of one artifactType. A repository
   * or subject that is not there has no referrers: [].
   * @throws StoreError NAME_INVALID, DIGEST_INVALID, MANIFEST_INVALID (an artifactType that is not a string).
   */
  referrers(repo: string, digest: string, filter?: { artifactType?: string }): Promise<Descriptor[]>;

  // --- tags -----------------------------------------------------------------------
  /**
   * Points `tag` at the manifest `descriptor.digest`, which must be in `repo`.
   * A move keeps createdAt, records the previous digest in the tag's history
   * and event; re-putting the same target changes nothing. A tag that a
   * rule of `policy.immutable` protects is created once and never moved,
   * checked in the move's transaction, unless `ctx.admin`: the move is then
   * done and its event carries the reason ('immutable tag override by an admin').
   * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN; StoreError
   * DENIED (an immutable tag moved by no admin: `detail` { repository, tag,
   * rule }), NAME_INVALID, TAG_INVALID, DIGEST_INVALID, SIZE_INVALID.
   */
  putTag(repo: string, tag: string, descriptor: Pick<Descriptor, 'digest'> & Partial<Descriptor>, ctx?: Context): Promise<void>;
  /**
   * The descriptor of the manifest `tag` points at: its own mediaType, digest and size.
   * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN; StoreError NAME_INVALID, TAG_INVALID.
   */
  getTag(repo: string, tag: string): Promise<Descriptor>;
  /**
   * Removes `tag` (not its manifest). An immutable tag (`policy.immutable`)
   * is removed only when `ctx.admin`, its event carrying the reason.
   * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN; StoreError DENIED
   * (an immutable tag, no admin), NAME_INVALID, TAG_INVALID.
   */
  deleteTag(repo: string, tag: string, ctx?: Context): Promise<void>;
  /**
   * The tags of `repo` in byte order: all of them, or `n` after `last`.
   * @throws NotFoundError NAME_UNKNOWN; StoreError NAME_INVALID, TAG_INVALID, PAGINATION_NUMBER_INVALID.
   */
  allTags(repo: string, page?: PageOptions): Promise<string[]>;
  /**
   * Like allTags, with what each tag points at: one statement, so a tag
   * deleted meanwhile is simply not listed.
   * @throws NotFoundError NAME_UNKNOWN; StoreError NAME_INVALID, TAG_INVALID, PAGINATION_NUMBER_INVALID.
   */
  tagDescriptors(repo: string, page?: PageOptions): Promise<(Descriptor & { tag: string })[]>;
  /**
   * The tags of `repo` that point at a digest, in byte order, through an index.
   * @throws NotFoundError NAME_UNKNOWN; StoreError NAME_INVALID, DIGEST_INVALID.
   */
  lookupTags(repo: string, descriptorOrDigest: string | Pick<Descriptor, 'digest'>): Promise<string[]>;
  /**
   * Every target `tag` has had, newest first ([] for a tag never set).
   * @throws NotFoundError NAME_UNKNOWN; StoreError NAME_INVALID, TAG_INVALID.
   */
  tagHistory(repo: string, tag: string): Promise<TagHistoryEntry[]>;

  // --- repositories -------------------------------------------------------------
  /**
   * The repository names in byte order: all, or `n` after `last`; with
   * `prefix`, only those that start with it, sought in the index.
   * @throws StoreError PAGINATION_NUMBER_INVALID; NAME_INVALID for a `last`
   *   that is no name or a `prefix` that is not made of name characters.
   */
  catalog(page?: CatalogOptions): Promise<string[]>;
  /**
   * Deletes a repository with its tags, manifests and blob links, writing a
   * DELETE event for each tag and manifest and for the repository. One that
   * holds an immutable tag is deleted only when `ctx.admin` (those tags'
   * events carry the reason).
   * @throws NotFoundError NAME_UNKNOWN; StoreError DENIED (an immutable tag in
   * it, no admin), NAME_INVALID.
   */
  deleteRepository(repo: string, ctx?: Context): Promise<void>;
  // --- blobs ----------------------------------------------------------------------
  /**
   * Records that blob `digest` of `size` bytes is present and readable from
   * `repo`, creating the repository on first use. Linking again refreshes the
   * link's time (the garbage collector's grace period counts from it).
   * `options.place`, when given, runs under the digest's lock, after the
   * size and the quota are checked and before the blob's row and link are
   * written (only if it succeeds; the quota is checked again after it, and a
   * refusal then, when a concurrent link took the room, leaves a file
   * without a row, which the garbage collector's sweep of such files removes): a registry moves the blob's file into place there, so that
   * collectBlob's file removal (under the same lock) can never undo it. A
   * link that writes the digest's first row waits for the lock too, place
   * or not: a whileBlobUnknown may be removing a file of that name.
   * A link that would take the namespace over its quota (StorePolicy.quotas)
   * is refused; a blob the namespace already has costs nothing.
   * @throws StoreError NAME_INVALID, DIGEST_INVALID, SIZE_INVALID (invalid, or
   * not the size already recorded for that digest); DENIED (over the
   * namespace's quota, `detail`: { namespace, usage, limit, size }); LOCK_LOST (SQLite: the
   * lock's lease ran out while `place` awaited and another took it; nothing
   * written); whatever `place` throws or rejects with.
   */
  linkBlob(repo: string, blob: { digest: string; size: number }, ctx?: Context, options?: { place?: LockedAction }): Promise<void>;
  /**
   * Links into `repo` a blob that repository `from` has: the spec's
   * cross-repository mount, checked and written in one transaction, under
   * `repo`'s namespace's quota as linkBlob.
   * @returns the mounted blob.
   * @throws NotFoundError BLOB_UNKNOWN when `from` does not have it (or does
   * not exist); StoreError NAME_INVALID, DIGEST_INVALID, DENIED (as linkBlob).
   */
  mountBlob(repo: string, digest: string, from: string, ctx?: Context): Promise<BlobInfo>;
  /**
   * The blob `digest` as linked in `repo`.
   * @throws NotFoundError NAME_UNKNOWN or BLOB_UNKNOWN (not linked there); StoreError NAME_INVALID, DIGEST_INVALID.
   */
  statBlob(repo: string, digest: string): Promise<BlobInfo>;
  /**
   * Removes the link of blob `digest` from `repo`, with a DELETE BLOB event
   * for `repo@digest`; the blob itself stays for the garbage collector.
   * @throws NotFoundError NAME_UNKNOWN or BLOB_UNKNOWN; StoreError
   * BLOB_REFERENCED while a manifest of `repo` references it, NAME_INVALID,
   * DIGEST_INVALID.
   */
  unlinkBlob(repo: string, digest: string, ctx?: Context): Promise<void>;
  /**
   * Forgets blob `digest` everywhere, with a DELETE BLOB event for the digest.
   * @throws NotFoundError BLOB_UNKNOWN; StoreError BLOB_REFERENCED while a
   * manifest references it; DIGEST_INVALID.
   */
  deleteBlob(digest: string, ctx?: Context): Promise<void>;
  /**
   * Runs `fn` under the digest's lock, only if the store knows no blob
   * `digest`, and no linkBlob can write its row until `fn` has finished: how
   * a file that no row names (left by a crash) is removed without racing a
   * push, which places its file under the same lock.
   * @returns whether `fn` ran.
   * @throws StoreError DIGEST_INVALID; LOCK_LOST (SQLite: the lock's lease
   * ran out while `fn` awaited and another took it); whatever `fn` throws or
   * rejects with.
   */
  whileBlobUnknown(digest: string, fn: LockedAction): Promise<boolean>;
  /**
   * Every blob the store knows, in digest order: all, or `n` after `last`.
   * What a check of the blob files compares them with.
   * @throws StoreError PAGINATION_NUMBER_INVALID, DIGEST_INVALID (`last`).
   */
  allBlobs(page?: PageOptions): Promise<BlobInfo[]>;

  // --- garbage collection -------------------------------------------------------
  /**
   * Manifests last pushed before `olderThan` (default now) that no tag, no
   * index in their repository and no present subject keeps alive.
   * @throws StoreError ARGUMENT_INVALID.
   */
  untaggedManifests(options?: { olderThan?: Date }): Promise<UntaggedManifest[]>;
  /**
   * Blobs no manifest references, neither created nor linked since `olderThan` (default now).
   * @throws StoreError ARGUMENT_INVALID.
   */
  unreferencedBlobs(options?: { olderThan?: Date }): Promise<BlobInfo[]>;
  /**
   * The garbage collector's delete of a manifest that untaggedManifests({
   * olderThan }) listed: the same rule is checked again in the delete's
   * transaction, so one tagged, listed by an index, given a present subject
   * or pushed again since the listing is refused and stays.
   * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN; StoreError
   * MANIFEST_REFERENCED while anything keeps it alive; NAME_INVALID,
   * DIGEST_INVALID, ARGUMENT_INVALID.
   */
  collectManifest(repo: string, digest: string, ctx?: Context, options?: { olderThan?: Date }): Promise<void>;
  /**
   * The garbage collector's delete of a blob that unreferencedBlobs({
   * olderThan }) listed, by the same rule checked again in the delete's
   * transaction. `options.removeFile` runs after that commit, as
   * whileBlobUnknown's `fn`: under the digest's lock, and only if no one has
   * linked the digest again meanwhile: the file goes only after its row, and
   * never from under a fresh push (linkBlob's `place` runs under the same lock).
   * @throws NotFoundError BLOB_UNKNOWN; StoreError BLOB_REFERENCED while a
   * manifest references it or when it was uploaded or linked since
   * `olderThan`; DIGEST_INVALID, ARGUMENT_INVALID, LOCK_LOST (as
   * whileBlobUnknown); whatever `removeFile` throws or rejects with.
   */
  collectBlob(digest: string, ctx?: Context, options?: { olderThan?: Date; removeFile?: LockedAction }): Promise<void>;

  // --- events -------------------------------------------------------------------
  /**
   * Appends an event, such as DELETE BLOB by GARBAGE_COLLECTOR.
   * @returns the stored event, with id and publishedAt filled in.
   * @throws StoreError EVENT_INVALID, NAME_INVALID.
   */
  createEvent(event: NewEvent): Promise<Event>;
  /**
   * A page of the events the query's filters select, newest first. The
   * filters do not authorize: who may read which events is the caller's rule.
   * @throws StoreError EVENT_INVALID (a field that is not a filter, a bad
   * filter), NAME_INVALID, PAGINATION_NUMBER_INVALID (bad perPage or page token).
   */
  getEvents(query: EventQuery): Promise<EventPage>;
  /**
   * Calls `fn` with every event committed after this call, in commit order,
   * once each, whichever process or replica committed it: this store's own
   * at once, others' within the poll interval (SQLite) or on their
   * notification (PostgreSQL). With `options.query`, only the events
   * getEvents would return for it (the same filters; page and
   * perPage are ignored). An exception from `fn` goes to `options.onError`
   * (default: console.error) and stops nothing.
   * @returns the function that unsubscribes.
   * @throws StoreError EVENT_INVALID, NAME_INVALID (a bad query); STORE_CLOSED.
   */
  subscribe(fn: (event: Event) => void, options?: { query?: EventQuery; onError?: (error: unknown) => void }): Promise<() => void>;

  // --- inspection -----------------------------------------------------------------
  /**
   * Checks the database part of a registry, in one snapshot: the database's
   * own integrity checks (SQLite's integrity_check and foreign_key_check; on
   * PostgreSQL a full read of every table, and amcheck where installed),
   * every stored manifest re-hashed against its digest and size, every tag
   * pointing at a manifest of its own repository, every blob a manifest
   * references linked in its repository and every child of an index present
   * there, and the kept sizes (usage) against a count of the links (a
   * problem of kind 'size' for each that disagrees). Damage that stops the database reading is a problem found, not an
   * error (`complete` is then false). Changes nothing; `options.onProgress`
   * hears of each manifest re-hashed.
   * @throws StoreError DATABASE_BUSY, DATABASE_ERROR (what says nothing about
   * the data); STORE_CLOSED.
   */
  check(options?: { onProgress?: (done: number, total: number) => void }): Promise<DatabaseCheck>;
  /**
   * Counts of everything the store holds, the size of its database, and the
   * `options.top` (default 10) largest repositories, read in one snapshot.
   * @throws StoreError ARGUMENT_INVALID (`top`), DATABASE_*, STORE_CLOSED.
   */
  stats(options?: { top?: number }): Promise<StoreStats>;
  /**
   * Writes a consistent copy of the database to the new file `target` while
   * writers keep writing, then checks the copy (SQLite's quick_check). The
   * copy is a complete store: openStore opens it. An existing `target` is
   * refused unless `options.replace`; a copy that failed part-way is removed, one
   * that fails its check is left for inspection. PostgreSQL makes no such
   * copy: back it up with pg_dump or a base backup.
   * @throws StoreError UNSUPPORTED (PostgreSQL); BACKUP_FAILED (`detail.target`:
   * the target exists or cannot be created, written or filled; with
   * `detail.check`, the copy fails its check); ARGUMENT_INVALID (`pagesPerStep`);
   * DATABASE_CORRUPT, DATABASE_BUSY and the like for the source; STORE_CLOSED.
   */
  backup(target: string, options?: BackupOptions): Promise<BackupResult>;
  /**
   * That the database answers and may be written now, writing nothing (a
   * registry's readiness probe): SQLite takes its write lock and lets it go;
   * PostgreSQL checks it is connected to a server that accepts writes.
   * @throws StoreError DATABASE_BUSY, DATABASE_READONLY, DATABASE_UNAVAILABLE, DATABASE_*, STORE_CLOSED.
   */
  checkWritable(): Promise<void>;
  /** Closes the store (its connection or pool); later calls fail with STORE_CLOSED. Closing twice is harmless. */
  close(): Promise<void>;
}

/** Every method of Store: what an adapter derives its methods from. */
export const STORE_METHODS = methodList<Store>()([
  'putManifest', 'getManifest', 'statManifest', 'getManifestByReference', 'deleteManifest', 'referrers',
  'putTag', 'getTag', 'deleteTag', 'allTags', 'tagDescriptors', 'lookupTags', 'tagHistory', 'tagDetails',
  'catalog', 'deleteRepository', 'recordPulls', 'namespaceUsage', 'usage', 'checkQuota',
  'linkBlob', 'mountBlob', 'statBlob', 'unlinkBlob', 'deleteBlob', 'whileBlobUnknown', 'allBlobs',
  'untaggedManifests', 'unreferencedBlobs', 'collectManifest', 'collectBlob',
  'repositoryLinks', 'retireTags', 'retireManifests',
  'createEvent', 'getEvents', 'subscribe',
  'pruneEvents', 'leaseJob', 'releaseJob',
  'check', 'stats', 'backup', 'checkWritable', 'close',
]);
