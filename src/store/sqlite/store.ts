// The metadata store on SQLite: the Store contract (../contract.ts, where
// each method is documented), synchronous, on one connection. A facade:
// each method delegates to the module of its concern, which runs it as one
// transaction (IMMEDIATE for writes); the checks of the arguments
// (../checks.ts) run in front of every method.

import { AwaitingBlobs } from './awaiting.js';
import { backup } from './backup.js';
import * as blobs from './blobs.js';
import { STORE_CHECKS, applyChecks } from '../checks.js';
import type { Store, Synchronous } from '../contract.js';
import { StoreContext } from './context.js';
import type { Reference } from '../grammar.js';
import * as events from './events.js';
import * as gc from './gc.js';
import * as inspection from './inspection.js';
import { DEFAULT_POLL_INTERVAL, type StoreLimits } from '../limits.js';
import * as maintenance from './maintenance.js';
import * as manifests from './manifests.js';
import * as pulls from './pulls.js';
import * as sizes from './sizes.js';
import { SqliteNotificationCursors } from './notifications.js';
import * as repositories from './repositories.js';
import * as retention from './retention.js';
import { Subscriptions } from './subscriptions.js';
import * as tagDetails from './tag-details.js';
import * as tags from './tags.js';
import { SqliteUploadSessions } from './uploads.js';
import type { BlobInfo, Context, DatabaseCheck, Descriptor, Event, EventPage, EventQuery, Manifest, ManifestInfo, NewEvent } from '../types.js';
import type { BackupOptions, BackupResult, CatalogOptions, PageOptions, PutManifestResult, StoreOptions, StoreStats, StoredManifest, TagHistoryEntry, UntaggedManifest } from '../types.js';
import type { ManifestToRetire, NamespaceRepository, PruneOptions, PruneResult, Pull, RecordPullsOptions, RepositoryLinks, StorePolicy, TagDetailsPage, TagQuery, TagToRetire, Usage, UsageOptions } from '../types.js';

/**
 * The metadata of a registry in a SQLite file: the Store contract,
 * synchronous (each method as Store's of the same name, throwing its
 * errors). Safe to share the file between processes; one instance is one
 * connection, for one thread.
 */
export class MetadataStore implements Omit<Synchronous<Store>, 'backup'> {
  /** The database file, or ':memory:'. */
  readonly file: string;
  /** The limits this store enforces, for callers that must agree with them (a server reading a manifest body). */
  readonly limits: StoreLimits;
  /** The immutable tags and quotas this store enforces (StoreOptions.policy). */
  readonly policy: StorePolicy;
  /** The webhook endpoints' cursors into the event log (regmeta serve --notify). */
  readonly notifications: SqliteNotificationCursors;
  /** Blob upload sessions, shared by every process on the file (regmeta serve's blob storage keeps them here). */
  readonly uploads: SqliteUploadSessions;
  /** @internal The blob methods whose callbacks may await: what asyncStore runs. */
  readonly awaiting: AwaitingBlobs;
  readonly #cx: StoreContext;
  readonly #subscriptions: Subscriptions;

  /** @throws StoreError: see openStore. */
  constructor(file: string, options: StoreOptions = {}) {
    this.#cx = new StoreContext(file, options);
    this.file = file;
    this.limits = this.#cx.limits;
    this.policy = this.#cx.policy.policy;
    this.notifications = new SqliteNotificationCursors(this.#cx);
    this.uploads = new SqliteUploadSessions(this.#cx);
    this.awaiting = new AwaitingBlobs(this.#cx);
    this.#subscriptions = new Subscriptions(this.#cx, options.pollInterval ?? DEFAULT_POLL_INTERVAL);
  }

  // --- manifests --------------------------------------------------------------
  putManifest(
    repo: string,
    digest: string | undefined,
    manifest: Manifest,
    ctx?: Context,
    options: { tag?: string; requireReferences?: boolean } = {},
  ): PutManifestResult {
    return manifests.putManifest(this.#cx, repo, digest, manifest, ctx, options);
  }

  getManifest(repo: string, digest: string): StoredManifest {
    return manifests.getManifest(this.#cx, repo, digest);
  }

  statManifest(repo: string, digest: string): ManifestInfo {
    return manifests.statManifest(this.#cx, repo, digest);
  }

  getManifestByReference(repo: string, reference: string | Reference, options: { head: true }): ManifestInfo;
  getManifestByReference(repo: string, reference: string | Reference, options?: { head?: false }): StoredManifest;
  getManifestByReference(repo: string, reference: string | Reference, options?: { head?: boolean }): ManifestInfo | StoredManifest;
  getManifestByReference(repo: string, reference: string | Reference, options: { head?: boolean } = {}): ManifestInfo | StoredManifest {
    return manifests.getManifestByReference(this.#cx, repo, reference, options);
  }

  deleteManifest(repo: string, digest: string, ctx?: Context): void {
    manifests.deleteManifest(this.#cx, repo, digest, ctx);
  }

  referrers(repo: string, digest: string, filter: { artifactType?: string } = {}): Descriptor[] {
    return manifests.referrers(this.#cx, repo, digest, filter);
  }

  // --- tags -------------------------------------------------------------------
  putTag(repo: string, tag: string, descriptor: Pick<Descriptor, 'digest'> & Partial<Descriptor>, ctx?: Context): void {
    tags.putTag(this.#cx, repo, tag, descriptor, ctx);
  }

  getTag(repo: string, tag: string): Descriptor {
    return tags.getTag(this.#cx, repo, tag);
  }

  deleteTag(repo: string, tag: string, ctx?: Context): void {
    tags.deleteTag(this.#cx, repo, tag, ctx);
  }

  allTags(repo: string, page?: PageOptions): string[] {
    return tags.allTags(this.#cx, repo, page);
  }

  tagDescriptors(repo: string, page?: PageOptions): (Descriptor & { tag: string })[] {
    return tags.tagDescriptors(this.#cx, repo, page);
  }

  lookupTags(repo: string, descriptorOrDigest: string | Pick<Descriptor, 'digest'>): string[] {
    return tags.lookupTags(this.#cx, repo, descriptorOrDigest);
  }

  tagHistory(repo: string, tag: string): TagHistoryEntry[] {
    return tags.tagHistory(this.#cx, repo, tag);
  }

  tagDetails(repo: string, query?: TagQuery): TagDetailsPage {
    return tagDetails.tagDetails(this.#cx, repo, query);
  }

  // --- repositories -----------------------------------------------------------
  catalog(page?: CatalogOptions): string[] {
    return repositories.catalog(this.#cx, page);
  }

  deleteRepository(repo: string, ctx?: Context): void {
    repositories.deleteRepository(this.#cx, repo, ctx);
  }

  recordPulls(batch: readonly Pull[], options?: RecordPullsOptions): number {
    return pulls.recordPulls(this.#cx, batch, options);
  }

  namespaceUsage(prefix: string): NamespaceRepository[] {
    return pulls.namespaceUsage(this.#cx, prefix);
  }

  usage(options: UsageOptions = {}): Usage {
    return sizes.usage(this.#cx, options);
  }

  checkQuota(repo: string, blob: { size: number; digest?: string }): void {
    sizes.checkQuota(this.#cx, repo, blob);
  }

  // --- blobs -----------------------------------------------------------------
  // linkBlob's place, whileBlobUnknown's fn and collectBlob's removeFile run
  // inside SQLite's write transaction and must be
  // synchronous (ARGUMENT_INVALID otherwise; asyncStore's may await). A
  // digest locked by an action that awaits (asyncStore's, in any process) is
  // waited for up to the busy timeout, then DATABASE_BUSY; at once when this
  // process holds it, since only its event loop can let it go.
  linkBlob(repo: string, blob: { digest: string; size: number }, ctx?: Context, options: { place?: () => void } = {}): void {
    blobs.linkBlob(this.#cx, repo, blob, ctx, options);
  }

  mountBlob(repo: string, digest: string, from: string, ctx?: Context): BlobInfo {
    return blobs.mountBlob(this.#cx, repo, digest, from, ctx);
  }

  statBlob(repo: string, digest: string): BlobInfo {
    return blobs.statBlob(this.#cx, repo, digest);
  }

  unlinkBlob(repo: string, digest: string, ctx?: Context): void {
    blobs.unlinkBlob(this.#cx, repo, digest, ctx);
  }

  deleteBlob(digest: string, ctx?: Context): void {
    blobs.deleteBlob(this.#cx, digest, ctx);
  }

  whileBlobUnknown(digest: string, fn: () => void): boolean {
    return blobs.whileBlobUnknown(this.#cx, digest, fn);
  }

  allBlobs(page?: PageOptions): BlobInfo[] {
    return blobs.allBlobs(this.#cx, page);
  }

  // --- garbage collection -----------------------------------------------------
  untaggedManifests(options: { olderThan?: Date } = {}): UntaggedManifest[] {
    return gc.untaggedManifests(this.#cx, options);
  }

  unreferencedBlobs(options: { olderThan?: Date } = {}): BlobInfo[] {
    return gc.unreferencedBlobs(this.#cx, options);
  }

  collectManifest(repo: string, digest: string, ctx?: Context, options: { olderThan?: Date } = {}): void {
    gc.collectManifest(this.#cx, repo, digest, ctx, options);
  }

  collectBlob(digest: string, ctx?: Context, options: { olderThan?: Date; removeFile?: () => void } = {}): void {
    gc.collectBlob(this.#cx, digest, ctx, options);
  }

  // --- retention --------------------------------------------------------------
  repositoryLinks(repo: string): RepositoryLinks {
    return retention.repositoryLinks(this.#cx, repo);
  }

  retireTags(repo: string, tagsToRetire: readonly TagToRetire[], ctx?: Context): string[] {
    return retention.retireTags(this.#cx, repo, tagsToRetire, ctx);
  }

  retireManifests(repo: string, manifestsToRetire: readonly ManifestToRetire[], ctx: Context | undefined, options: { olderThan: Date }): string[] {
    return retention.retireManifests(this.#cx, repo, manifestsToRetire, ctx, options);
  }

  // --- events -----------------------------------------------------------------
  createEvent(event: NewEvent): Event {
    return events.createEvent(this.#cx, event);
  }

  getEvents(query: EventQuery): EventPage {
    return events.getEvents(this.#cx, query);
  }

  subscribe(fn: (event: Event) => void, options: { query?: EventQuery; onError?: (error: unknown) => void } = {}): () => void {
    return this.#subscriptions.subscribe(fn, options);
  }

  // --- keeping the store in shape ---------------------------------------------
  pruneEvents(options: PruneOptions): PruneResult {
    return maintenance.pruneEvents(this.#cx, options);
  }

  leaseJob(name: string, holder: string, ttlMs: number): boolean {
    return maintenance.leaseJob(this.#cx, name, holder, ttlMs);
  }

  releaseJob(name: string, holder: string): boolean {
    return maintenance.releaseJob(this.#cx, name, holder);
  }

  // --- inspection -------------------------------------------------------------
  check(options: { onProgress?: (done: number, total: number) => void } = {}): DatabaseCheck {
    return inspection.check(this.#cx, options);
  }

  stats(options: { top?: number } = {}): StoreStats {
    return inspection.stats(this.#cx, options);
  }

  /**
   * As Store.backup, and asynchronous here too: SQLite's online backup copies
   * the file in steps, between which this and other connections go on.
   * @throws StoreError as Store.backup: ARGUMENT_INVALID, BACKUP_FAILED, DATABASE_*, STORE_CLOSED.
   */
  backup(target: string, options?: BackupOptions): Promise<BackupResult> {
    return backup(this.#cx, target, options);
  }

  // Takes the write lock and lets it go.
  checkWritable(): void {
    this.#cx.write(() => undefined);
  }

  close(): void {
    this.#subscriptions.close();
    this.#cx.close();
  }
}

applyChecks(MetadataStore.prototype, STORE_CHECKS, 'throw');
