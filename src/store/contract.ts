// The one asynchronous contract that the server, the CLI, webhooks and
// migration reach metadata through, and that every backend implements: the
// SQLite store (src/store/sqlite/) and the PostgreSQL store (src/store/postgres/).

import type { Reference } from './grammar.js';
import type { StoreLimits } from './limits.js';
import type { BlobInfo, Context, DatabaseCheck, Descriptor, Event, EventPage, EventQuery, Manifest, ManifestInfo } from './types.js';
import type { BackupOptions, BackupResult, CatalogOptions, NewEvent, NotificationEvent, NotificationStatus, PageOptions, PutManifestResult, StoreStats } from './types.js';
import type { StoredManifest, TagHistoryEntry, UntaggedManifest, UploadClaim, UploadSession } from './types.js';

/** A callback run inside a store's transaction (under its write lock): it may be asynchronous. */
export type LockedAction = () => void | Promise<void>;

/** The webhook cursors of a Store: MetadataStore.notifications, asynchronous. */
export interface NotificationCursors {
  open(endpoint: string): Promise<void>;
  eventsAfter(endpoint: string, limit: number): Promise<NotificationEvent[]>;
  advance(endpoint: string, eventId: string): Promise<void>;
  recordFailure(endpoint: string, error: string): Promise<void>;
  remove(endpoint: string): Promise<boolean>;
  status(): Promise<NotificationStatus[]>;
  /**
   * Whether this process may deliver to `endpoint` now. Takes the endpoint's
   * delivery lock when it is free, so that of several replicas one at a time
   * delivers to it; a process that stops or dies lets go. Always true on
   * SQLite, whose file one server serves.
   * @throws StoreError ARGUMENT_INVALID (a bad endpoint), the database's errors.
   */
  claim(endpoint: string): Promise<boolean>;
  /** Lets go of the endpoint's delivery lock, if this process holds it. Never throws. */
  release(endpoint: string): Promise<void>;
}

/** The upload sessions of a Store: MetadataStore.uploads (see SqliteUploadSessions), asynchronous. */
export interface UploadSessions {
  open(repo: string, client: string, max: number): Promise<UploadSession>;
  get(repo: string, id: string): Promise<UploadSession>;
  claim(repo: string, id: string, owner: string, leaseMs: number): Promise<UploadClaim>;
  renew(id: string, owner: string, leaseMs: number): Promise<boolean>;
  commit(id: string, owner: string, size: number): Promise<void>;
  release(id: string, owner: string): Promise<void>;
  end(repo: string, id: string): Promise<boolean>;
  idle(idleBefore: Date, limit?: number): Promise<UploadSession[]>;
  expire(id: string, idleBefore: Date): Promise<boolean>;
  has(id: string): Promise<boolean>;
  count(): Promise<number>;
}

/**
 * The registry's metadata, asynchronously: what both backends implement.
 * Every method is MetadataStore's method of the same name (see its TSDoc for
 * what it does and throws), as one transaction, rejecting with the same
 * StoreError family and codes. Callbacks that MetadataStore runs inside its
 * transaction (`place`, `removeFile`, whileBlobUnknown's `fn`) run inside
 * this store's transaction, under a lock that every replica honours, and may
 * return a promise.
 */
export interface Store {
  /** Which backend this is, for messages and metrics ('sqlite' or 'postgres'). */
  readonly backend: 'sqlite' | 'postgres';
  /** Where the metadata lives: the SQLite file, or the PostgreSQL URL with its password masked. */
  readonly location: string;
  readonly limits: StoreLimits;
  readonly notifications: NotificationCursors;
  readonly uploads: UploadSessions;

  putManifest(
    repo: string,
    digest: string | undefined,
    manifest: Manifest,
    ctx?: Context,
    options?: { tag?: string; requireReferences?: boolean },
  ): Promise<PutManifestResult>;
  getManifest(repo: string, digest: string): Promise<StoredManifest>;
  statManifest(repo: string, digest: string): Promise<ManifestInfo>;
  getManifestByReference(repo: string, reference: string | Reference, options: { head: true }): Promise<ManifestInfo>;
  getManifestByReference(repo: string, reference: string | Reference, options?: { head?: false }): Promise<StoredManifest>;
  getManifestByReference(repo: string, reference: string | Reference, options?: { head?: boolean }): Promise<ManifestInfo | StoredManifest>;
  deleteManifest(repo: string, digest: string, ctx?: Context): Promise<void>;
  referrers(repo: string, digest: string, filter?: { artifactType?: string }): Promise<Descriptor[]>;

  putTag(repo: string, tag: string, descriptor: Pick<Descriptor, 'digest'> & Partial<Descriptor>, ctx?: Context): Promise<void>;
  getTag(repo: string, tag: string): Promise<Descriptor>;
  deleteTag(repo: string, tag: string, ctx?: Context): Promise<void>;
  allTags(repo: string, page?: PageOptions): Promise<string[]>;
  tagDescriptors(repo: string, page?: PageOptions): Promise<(Descriptor & { tag: string })[]>;
  lookupTags(repo: string, descriptorOrDigest: string | Pick<Descriptor, 'digest'>): Promise<string[]>;
  tagHistory(repo: string, tag: string): Promise<TagHistoryEntry[]>;

  catalog(page?: CatalogOptions): Promise<string[]>;
  deleteRepository(repo: string, ctx?: Context): Promise<void>;

  linkBlob(repo: string, blob: { digest: string; size: number }, ctx?: Context, options?: { place?: LockedAction }): Promise<void>;
  mountBlob(repo: string, digest: string, from: string, ctx?: Context): Promise<BlobInfo>;
  statBlob(repo: string, digest: string): Promise<BlobInfo>;
  unlinkBlob(repo: string, digest: string, ctx?: Context): Promise<void>;
  deleteBlob(digest: string, ctx?: Context): Promise<void>;
  whileBlobUnknown(digest: string, fn: LockedAction): Promise<boolean>;
  allBlobs(page?: PageOptions): Promise<BlobInfo[]>;

  untaggedManifests(options?: { olderThan?: Date }): Promise<UntaggedManifest[]>;
  unreferencedBlobs(options?: { olderThan?: Date }): Promise<BlobInfo[]>;
  collectManifest(repo: string, digest: string, ctx?: Context, options?: { olderThan?: Date }): Promise<void>;
  collectBlob(digest: string, ctx?: Context, options?: { olderThan?: Date; removeFile?: LockedAction }): Promise<void>;

  createEvent(event: NewEvent): Promise<Event>;
  getEvents(query: EventQuery): Promise<EventPage>;
  /**
   * As MetadataStore.subscribe: every event committed after the returned
   * promise resolves reaches `fn` once, in commit order, whichever process
   * or replica committed it.
   * @returns the function that unsubscribes.
   */
  subscribe(fn: (event: Event) => void, options?: { query?: EventQuery; onError?: (error: unknown) => void }): Promise<() => void>;

  check(options?: { onProgress?: (done: number, total: number) => void }): Promise<DatabaseCheck>;
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
   */
  checkWritable(): Promise<void>;
  /** Closes the store (its connection or pool); later calls reject with STORE_CLOSED. Closing twice is harmless. */
  close(): Promise<void>;
}
