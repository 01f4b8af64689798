// The metadata store: DTR's ManifestStore + TagStore + EventManager on one
// SQLite connection. A facade: each method delegates to the module of its
// concern, which runs it as one transaction (IMMEDIATE for writes;
// collectBlob's file removal is a deliberate second one, after the commit).

import * as blobs from './blobs.js';
import { StoreContext } from './context.js';
import type { Reference } from '../grammar.js';
import * as events from './events.js';
import * as gc from './gc.js';
import * as inspection from './inspection.js';
import { DEFAULT_POLL_INTERVAL, type StoreLimits } from '../limits.js';
import * as manifests from './manifests.js';
import { SqliteNotificationCursors } from './notifications.js';
import * as repositories from './repositories.js';
import { Subscriptions } from './subscriptions.js';
import * as tags from './tags.js';
import { SqliteUploadSessions } from './uploads.js';
import type { BlobInfo, Context, DatabaseCheck, Descriptor, Event, EventPage, EventQuery, Manifest, ManifestInfo, NewEvent } from '../types.js';
import type { CatalogOptions, PageOptions, PutManifestResult, StoreOptions, StoreStats, StoredManifest, TagHistoryEntry, UntaggedManifest } from '../types.js';

/**
 * The metadata of a registry in one SQLite file. Safe to share the file
 * between processes; one instance is one connection, for one thread.
 */
export class MetadataStore {
  /** The database file, or ':memory:'. */
  readonly file: string;
  /** The limits this store enforces, for callers that must agree with them (a server reading a manifest body). */
  readonly limits: StoreLimits;
  /** The webhook endpoints' cursors into the event log (regmeta serve --notify). */
  readonly notifications: SqliteNotificationCursors;
  /** Blob upload sessions, shared by every process on the file (regmeta serve's blob storage keeps them here). */
  readonly uploads: SqliteUploadSessions;
  readonly #cx: StoreContext;
  readonly #subscriptions: Subscriptions;

  /** @throws StoreError: see openStore. */
  constructor(file: string, options: StoreOptions = {}) {
    this.#cx = new StoreContext(file, options);
    this.file = file;
    this.limits = this.#cx.limits;
    this.notifications = new SqliteNotificationCursors(this.#cx);
    this.uploads = new SqliteUploadSessions(this.#cx);
    this.#subscriptions = new Subscriptions(this.#cx, options.pollInterval ?? DEFAULT_POLL_INTERVAL);
  }

  // --- manifests (ManifestStore) --------------------------------------------
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
   * with `detail.digest`).
   */
  putManifest(
    repo: string,
    digest: string | undefined,
    manifest: Manifest,
    ctx?: Context,
    options: { tag?: string; requireReferences?: boolean } = {},
  ): PutManifestResult {
    return manifests.putManifest(this.#cx, repo, digest, manifest, ctx, options);
  }

  /**
   * The manifest `digest` of `repo`, with its exact bytes.
   * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN; StoreError NAME_INVALID, DIGEST_INVALID.
   */
  getManifest(repo: string, digest: string): StoredManifest {
    return manifests.getManifest(this.#cx, repo, digest);
  }

  /**
   * The manifest `digest` of `repo` without its bytes: what HEAD needs.
   * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN; StoreError NAME_INVALID, DIGEST_INVALID.
   */
  statManifest(repo: string, digest: string): ManifestInfo {
    return manifests.statManifest(this.#cx, repo, digest);
  }

  /**
   * The manifest a reference names in `repo`: by digest, or by tag in one
   * statement (the tag and what it points at read together). A string is
   * parsed as a URL's `<reference>`: a digest when it has an algorithm
   * prefix, else a tag. With `options.head`, without its bytes.
   * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN (no such manifest,
   * or no such tag); StoreError NAME_INVALID, TAG_INVALID, DIGEST_INVALID.
   */
  getManifestByReference(repo: string, reference: string | Reference, options: { head: true }): ManifestInfo;
  getManifestByReference(repo: string, reference: string | Reference, options?: { head?: false }): StoredManifest;
  getManifestByReference(repo: string, reference: string | Reference, options?: { head?: boolean }): ManifestInfo | StoredManifest;
  getManifestByReference(repo: string, reference: string | Reference, options: { head?: boolean } = {}): ManifestInfo | StoredManifest {
    return manifests.getManifestByReference(this.#cx, repo, reference, options);
  }

  /**
   * Removes a manifest from `repo` and, in the same transaction, every tag of
   * it (a DELETE TAG event each).
   * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN; StoreError
   * MANIFEST_REFERENCED while an index in `repo` lists it; NAME_INVALID, DIGEST_INVALID.
   */
  deleteManifest(repo: string, digest: string, ctx?: Context): void {
    manifests.deleteManifest(this.#cx, repo, digest, ctx);
  }

  /**
   * The manifests of `repo` whose `subject` is `digest`, as descriptors for
   * the referrers API, optionally only those of one artifactType. A repository
   * or subject that is not there has no referrers: [].
   * @throws StoreError NAME_INVALID, DIGEST_INVALID.
   */
  referrers(repo: string, digest: string, filter: { artifactType?: string } = {}): Descriptor[] {
    return manifests.referrers(this.#cx, repo, digest, filter);
  }

  // --- tags (TagStore) ------------------------------------------------------
  /**
   * Points `tag` at the manifest `descriptor.digest`, which must be in `repo`.
   * A move keeps createdAt, records the previous digest in the tag's history
   * and event; re-putting the same target changes nothing.
   * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN; StoreError
   * NAME_INVALID, TAG_INVALID, DIGEST_INVALID, SIZE_INVALID.
   */
  putTag(repo: string, tag: string, descriptor: Pick<Descriptor, 'digest'> & Partial<Descriptor>, ctx?: Context): void {
    tags.putTag(this.#cx, repo, tag, descriptor, ctx);
  }

  /**
   * The descriptor of the manifest `tag` points at: its own mediaType, digest and size.
   * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN; StoreError NAME_INVALID, TAG_INVALID.
   */
  getTag(repo: string, tag: string): Descriptor {
    return tags.getTag(this.#cx, repo, tag);
  }

  /**
   * Removes `tag` (not its manifest).
   * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN; StoreError NAME_INVALID, TAG_INVALID.
   */
  deleteTag(repo: string, tag: string, ctx?: Context): void {
    tags.deleteTag(this.#cx, repo, tag, ctx);
  }

  /**
   * The tags of `repo` in byte order: all of them, or `n` after `last`.
   * @throws NotFoundError NAME_UNKNOWN; StoreError NAME_INVALID, TAG_INVALID, PAGINATION_NUMBER_INVALID.
   */
  allTags(repo: string, page?: PageOptions): string[] {
    return tags.allTags(this.#cx, repo, page);
  }

  /**
   * Like allTags, with what each tag points at: one statement, so a tag
   * deleted meanwhile is simply not listed.
   * @throws NotFoundError NAME_UNKNOWN; StoreError NAME_INVALID, TAG_INVALID, PAGINATION_NUMBER_INVALID.
   */
  tagDescriptors(repo: string, page?: PageOptions): (Descriptor & { tag: string })[] {
    return tags.tagDescriptors(this.#cx, repo, page);
  }

  /**
   * The tags of `repo` that point at a digest, in byte order, through an index.
   * @throws NotFoundError NAME_UNKNOWN; StoreError NAME_INVALID, DIGEST_INVALID.
   */
  lookupTags(repo: string, descriptorOrDigest: string | Pick<Descriptor, 'digest'>): string[] {
    return tags.lookupTags(this.#cx, repo, descriptorOrDigest);
  }

  /**
   * Every target `tag` has had, newest first ([] for a tag never set).
   * @throws NotFoundError NAME_UNKNOWN; StoreError NAME_INVALID, TAG_INVALID.
   */
  tagHistory(repo: string, tag: string): TagHistoryEntry[] {
    return tags.tagHistory(this.#cx, repo, tag);
  }

  // --- repositories ---------------------------------------------------------
  /**
   * The repository names in byte order: all, or `n` after `last`; with
   * `prefix`, only those that start with it, sought in the index.
   * @throws StoreError PAGINATION_NUMBER_INVALID; NAME_INVALID for a `last`
   *   that is no name or a `prefix` that is not made of name characters.
   */
  catalog(page?: CatalogOptions): string[] {
    return repositories.catalog(this.#cx, page);
  }

  /**
   * Deletes a repository with its tags, manifests and blob links, writing a
   * DELETE event for each tag and manifest and for the repository.
   * @throws NotFoundError NAME_UNKNOWN; StoreError NAME_INVALID.
   */
  deleteRepository(repo: string, ctx?: Context): void {
    repositories.deleteRepository(this.#cx, repo, ctx);
  }

  // --- blobs ----------------------------------------------------------------
  /**
   * Records that blob `digest` of `size` bytes is present and readable from
   * `repo`, creating the repository on first use. Linking again refreshes the
   * link's time (the garbage collector's grace period counts from it).
   * `options.place`, when given, runs inside the transaction before the link
   * is written: a registry moves the blob's file into place there, so that
   * collectBlob's file removal (also under the write lock) can never undo it.
   * @throws StoreError NAME_INVALID, DIGEST_INVALID, SIZE_INVALID (invalid, or
   * not the size already recorded for that digest); whatever `place` throws.
   */
  linkBlob(repo: string, blob: { digest: string; size: number }, ctx?: Context, options: { place?: () => void } = {}): void {
    blobs.linkBlob(this.#cx, repo, blob, ctx, options);
  }

  /**
   * Links into `repo` a blob that repository `from` has: the spec's
   * cross-repository mount, checked and written in one transaction.
   * @returns the mounted blob.
   * @throws NotFoundError BLOB_UNKNOWN when `from` does not have it (or does
   * not exist); StoreError NAME_INVALID, DIGEST_INVALID.
   */
  mountBlob(repo: string, digest: string, from: string, ctx?: Context): BlobInfo {
    return blobs.mountBlob(this.#cx, repo, digest, from, ctx);
  }

  /**
   * The blob `digest` as linked in `repo`.
   * @throws NotFoundError NAME_UNKNOWN or BLOB_UNKNOWN (not linked there); StoreError NAME_INVALID, DIGEST_INVALID.
   */
  statBlob(repo: string, digest: string): BlobInfo {
    return blobs.statBlob(this.#cx, repo, digest);
  }

  /**
   * Removes the link of blob `digest` from `repo`, with a DELETE BLOB event
   * for `repo@digest`; the blob itself stays for the garbage collector.
   * @throws NotFoundError NAME_UNKNOWN or BLOB_UNKNOWN; StoreError
   * BLOB_REFERENCED while a manifest of `repo` references it, NAME_INVALID,
   * DIGEST_INVALID.
   */
  unlinkBlob(repo: string, digest: string, ctx?: Context): void {
    blobs.unlinkBlob(this.#cx, repo, digest, ctx);
  }

  /**
   * Forgets blob `digest` everywhere, with a DELETE BLOB event for the digest.
   * @throws NotFoundError BLOB_UNKNOWN; StoreError BLOB_REFERENCED while a
   * manifest references it; DIGEST_INVALID.
   */
  deleteBlob(digest: string, ctx?: Context): void {
    blobs.deleteBlob(this.#cx, digest, ctx);
  }

  /**
   * Runs `fn` inside a write transaction, only if the store knows no blob
   * `digest`: how a file that no row names (left by a crash) is removed
   * without racing a push, which places its file under the same lock.
   * @returns whether `fn` ran.
   * @throws StoreError DIGEST_INVALID; whatever `fn` throws.
   */
  whileBlobUnknown(digest: string, fn: () => void): boolean {
    return blobs.whileBlobUnknown(this.#cx, digest, fn);
  }

  /**
   * Every blob the store knows, in digest order: all, or `n` after `last`.
   * What a check of the blob files compares them with.
   * @throws StoreError PAGINATION_NUMBER_INVALID, DIGEST_INVALID (`last`).
   */
  allBlobs(page?: PageOptions): BlobInfo[] {
    return blobs.allBlobs(this.#cx, page);
  }

  // --- garbage collection -----------------------------------------------------
  /**
   * Manifests last pushed before `olderThan` (default now) that no tag, no
   * index in their repository and no present subject keeps alive.
   * @throws StoreError ARGUMENT_INVALID.
   */
  untaggedManifests(options: { olderThan?: Date } = {}): UntaggedManifest[] {
    return gc.untaggedManifests(this.#cx, options);
  }

  /**
   * Blobs no manifest references, neither created nor linked since `olderThan` (default now).
   * @throws StoreError ARGUMENT_INVALID.
   */
  unreferencedBlobs(options: { olderThan?: Date } = {}): BlobInfo[] {
    return gc.unreferencedBlobs(this.#cx, options);
  }

  /**
   * The garbage collector's delete of a manifest that untaggedManifests({
   * olderThan }) listed: the same rule is checked again in the delete's
   * transaction, so one tagged, listed by an index, given a present subject
   * or pushed again since the listing is refused and stays.
   * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN; StoreError
   * MANIFEST_REFERENCED while anything keeps it alive; NAME_INVALID,
   * DIGEST_INVALID, ARGUMENT_INVALID.
   */
  collectManifest(repo: string, digest: string, ctx?: Context, options: { olderThan?: Date } = {}): void {
    gc.collectManifest(this.#cx, repo, digest, ctx, options);
  }

  /**
   * The garbage collector's delete of a blob that unreferencedBlobs({
   * olderThan }) listed, by the same rule checked again in the delete's
   * transaction. `options.removeFile` runs after that commit, in a second
   * write transaction, and only if no one has linked the digest again
   * meanwhile: the file goes only after its row, and never from under a
   * fresh push (linkBlob's `place` runs under the same lock).
   * @throws NotFoundError BLOB_UNKNOWN; StoreError BLOB_REFERENCED while a
   * manifest references it or when it was uploaded or linked since
   * `olderThan`; DIGEST_INVALID, ARGUMENT_INVALID; whatever `removeFile` throws.
   */
  collectBlob(digest: string, ctx?: Context, options: { olderThan?: Date; removeFile?: () => void } = {}): void {
    gc.collectBlob(this.#cx, digest, ctx, options);
  }

  // --- events (EventManager) ----------------------------------------------------
  /**
   * Appends an event, such as DELETE BLOB by GARBAGE_COLLECTOR.
   * @returns the stored event, with id and publishedAt filled in.
   * @throws StoreError EVENT_INVALID, NAME_INVALID.
   */
  createEvent(event: NewEvent): Event {
    return events.createEvent(this.#cx, event);
  }

  /**
   * A page of the events the query's filters select, newest first. The
   * filters do not authorize: who may read which events is the caller's rule.
   * @throws StoreError EVENT_INVALID (a field that is not a filter, a bad
   * filter), NAME_INVALID, PAGINATION_NUMBER_INVALID (bad perPage or page token).
   */
  getEvents(query: EventQuery): EventPage {
    return events.getEvents(this.#cx, query);
  }

  /**
   * Calls `fn` with every event committed after this call, in commit order,
   * once each: this connection's at once, other processes' within the poll
   * interval. With `options.query`, only the events getEvents would return
   * for it (the same filters; page and perPage are ignored). An
   * exception from `fn` goes to `options.onError` (default: console.error)
   * and stops nothing.
   * @returns the function that unsubscribes.
   * @throws StoreError EVENT_INVALID, NAME_INVALID (a bad query); STORE_CLOSED.
   */
  subscribe(fn: (event: Event) => void, options: { query?: EventQuery; onError?: (error: unknown) => void } = {}): () => void {
    return this.#subscriptions.subscribe(fn, options);
  }

  // --- inspection ---------------------------------------------------------------
  /**
   * Checks the database part of a registry, in one snapshot: SQLite's
   * integrity_check and foreign_key_check, every stored manifest re-hashed
   * against its digest and size, every tag pointing at a manifest of its own
   * repository, every blob a manifest references linked in its repository
   * and every child of an index present there. Damage that stops SQLite
   * reading is a problem found, not an error (`complete` is then false).
   * Changes nothing; `options.onProgress` hears of each manifest re-hashed.
   * @throws StoreError DATABASE_BUSY, DATABASE_ERROR (what says nothing about
   * the data); STORE_CLOSED.
   */
  check(options: { onProgress?: (done: number, total: number) => void } = {}): DatabaseCheck {
    return inspection.check(this.#cx, options);
  }

  /**
   * Counts of everything the store holds, the size of its file, and the
   * `options.top` (default 10) largest repositories, read in one snapshot.
   * @throws StoreError ARGUMENT_INVALID (`top`), DATABASE_*, STORE_CLOSED.
   */
  stats(options: { top?: number } = {}): StoreStats {
    return inspection.stats(this.#cx, options);
  }

  /** Takes the write lock and lets it go (a readiness probe). @throws StoreError DATABASE_BUSY, DATABASE_*, STORE_CLOSED. */
  checkWritable(): void {
    this.#cx.write(() => undefined);
  }

  /** Closes the connection; later calls throw STORE_CLOSED. Closing twice is harmless. */
  close(): void {
    this.#subscriptions.close();
    this.#cx.close();
  }
}
