// The one asynchronous contract that the server and the CLI reach metadata
// through, implemented twice: by the SQLite store (a thin adapter over the
// synchronous MetadataStore, which embedders keep using as it is) and by the
// PostgreSQL store (regmeta/postgres). Same method names, semantics, error
// codes and events as MetadataStore, whose TSDoc each method refers to.
//
// Why a separate interface rather than making MetadataStore async: SQLite
// through better-sqlite3 is fastest and simplest synchronously, and one
// transaction per call is easiest to keep when nothing can interleave.

import { StoreError } from '../errors.js';
import { checkEndpoint } from './notifications.js';
import type { Reference } from '../grammar.js';
import type { StoreLimits } from '../limits.js';
import type { MetadataStore } from './store.js';
import type { BlobInfo, Context, DatabaseCheck, Descriptor, Event, EventPage, EventQuery, Manifest, ManifestInfo } from '../types.js';
import type { CatalogOptions, NewEvent, NotificationEvent, NotificationStatus, PageOptions, PutManifestResult, StoreStats } from '../types.js';
import type { StoredManifest, TagHistoryEntry, UntaggedManifest, UploadClaim, UploadSession } from '../types.js';

/** A callback run inside a store's transaction (under its write lock): it may be asynchronous. */
export type LockedAction = () => void | Promise<void>;

/** The webhook cursors of an AsyncStore: MetadataStore.notifications, asynchronous. */
export interface AsyncNotificationCursors {
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

/** The upload sessions of an AsyncStore: MetadataStore.uploads (see UploadSessions), asynchronous. */
export interface AsyncUploadSessions {
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
export interface AsyncStore {
  /** Which backend this is, for messages and metrics ('sqlite' or 'postgres'). */
  readonly backend: 'sqlite' | 'postgres';
  /** Where the metadata lives: the SQLite file, or the PostgreSQL URL with its password masked. */
  readonly location: string;
  readonly limits: StoreLimits;
  readonly notifications: AsyncNotificationCursors;
  readonly uploads: AsyncUploadSessions;

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
   * That the database answers and may be written now, writing nothing (a
   * registry's readiness probe): SQLite takes its write lock and lets it go;
   * PostgreSQL checks it is connected to a server that accepts writes.
   */
  checkWritable(): Promise<void>;
  /** Closes the store (its connection or pool); later calls reject with STORE_CLOSED. Closing twice is harmless. */
  close(): Promise<void>;
}

/**
 * The SQLite store behind the asynchronous contract. Each call runs the
 * synchronous method at once and returns its settled promise, so the adapter
 * adds one promise per call and nothing else. Callbacks run inside SQLite's
 * transaction must be synchronous there: one that returns a promise fails
 * the call with ARGUMENT_INVALID and its transaction rolls back.
 */
export function asyncStore(store: MetadataStore): AsyncStore {
  return new SqliteAsyncStore(store);
}

/** The MetadataStore an AsyncStore made by asyncStore wraps, or undefined for another backend. */
export function syncStoreOf(store: AsyncStore): MetadataStore | undefined {
  return store instanceof SqliteAsyncStore ? store.sync : undefined;
}

class SqliteAsyncStore implements AsyncStore {
  readonly backend = 'sqlite';
  readonly sync: MetadataStore;
  readonly notifications: AsyncNotificationCursors;
  readonly uploads: AsyncUploadSessions;
  constructor(store: MetadataStore) {
    this.sync = store;
    this.uploads = asyncUploads(store);
    const cursors = store.notifications;
    this.notifications = {
      open: (endpoint) => settle(() => cursors.open(endpoint)),
      eventsAfter: (endpoint, limit) => settle(() => cursors.eventsAfter(endpoint, limit)),
      advance: (endpoint, eventId) => settle(() => cursors.advance(endpoint, eventId)),
      recordFailure: (endpoint, error) => settle(() => cursors.recordFailure(endpoint, error)),
      remove: (endpoint) => settle(() => cursors.remove(endpoint)),
      status: () => settle(() => cursors.status()),
      claim: (endpoint) => settle(() => (checkEndpoint(endpoint), true)),
      release: async () => {},
    };
  }
  get location(): string {
    return this.sync.file;
  }
  get limits(): StoreLimits {
    return this.sync.limits;
  }
  putManifest(...args: Parameters<MetadataStore['putManifest']>) {
    return settle(() => this.sync.putManifest(...args));
  }
  getManifest(repo: string, digest: string) {
    return settle(() => this.sync.getManifest(repo, digest));
  }
  statManifest(repo: string, digest: string) {
    return settle(() => this.sync.statManifest(repo, digest));
  }
  getManifestByReference(repo: string, reference: string | Reference, options: { head: true }): Promise<ManifestInfo>;
  getManifestByReference(repo: string, reference: string | Reference, options?: { head?: false }): Promise<StoredManifest>;
  getManifestByReference(repo: string, reference: string | Reference, options?: { head?: boolean }): Promise<ManifestInfo | StoredManifest>;
  getManifestByReference(repo: string, reference: string | Reference, options?: { head?: boolean }) {
    return settle(() => this.sync.getManifestByReference(repo, reference, options));
  }
  deleteManifest(...args: Parameters<MetadataStore['deleteManifest']>) {
    return settle(() => this.sync.deleteManifest(...args));
  }
  referrers(...args: Parameters<MetadataStore['referrers']>) {
    return settle(() => this.sync.referrers(...args));
  }
  putTag(...args: Parameters<MetadataStore['putTag']>) {
    return settle(() => this.sync.putTag(...args));
  }
  getTag(repo: string, tag: string) {
    return settle(() => this.sync.getTag(repo, tag));
  }
  deleteTag(...args: Parameters<MetadataStore['deleteTag']>) {
    return settle(() => this.sync.deleteTag(...args));
  }
  allTags(repo: string, page?: PageOptions) {
    return settle(() => this.sync.allTags(repo, page));
  }
  tagDescriptors(repo: string, page?: PageOptions) {
    return settle(() => this.sync.tagDescriptors(repo, page));
  }
  lookupTags(...args: Parameters<MetadataStore['lookupTags']>) {
    return settle(() => this.sync.lookupTags(...args));
  }
  tagHistory(repo: string, tag: string) {
    return settle(() => this.sync.tagHistory(repo, tag));
  }
  catalog(page?: CatalogOptions) {
    return settle(() => this.sync.catalog(page));
  }
  deleteRepository(repo: string, ctx?: Context) {
    return settle(() => this.sync.deleteRepository(repo, ctx));
  }
  linkBlob(repo: string, blob: { digest: string; size: number }, ctx?: Context, options: { place?: LockedAction } = {}) {
    const { place } = options;
    return settle(() => this.sync.linkBlob(repo, blob, ctx, place === undefined ? {} : { place: synchronous(place) }));
  }
  mountBlob(...args: Parameters<MetadataStore['mountBlob']>) {
    return settle(() => this.sync.mountBlob(...args));
  }
  statBlob(repo: string, digest: string) {
    return settle(() => this.sync.statBlob(repo, digest));
  }
  unlinkBlob(...args: Parameters<MetadataStore['unlinkBlob']>) {
    return settle(() => this.sync.unlinkBlob(...args));
  }
  deleteBlob(...args: Parameters<MetadataStore['deleteBlob']>) {
    return settle(() => this.sync.deleteBlob(...args));
  }
  whileBlobUnknown(digest: string, fn: LockedAction) {
    return settle(() => this.sync.whileBlobUnknown(digest, synchronous(fn)));
  }
  allBlobs(page?: PageOptions) {
    return settle(() => this.sync.allBlobs(page));
  }
  untaggedManifests(options?: { olderThan?: Date }) {
    return settle(() => this.sync.untaggedManifests(options));
  }
  unreferencedBlobs(options?: { olderThan?: Date }) {
    return settle(() => this.sync.unreferencedBlobs(options));
  }
  collectManifest(...args: Parameters<MetadataStore['collectManifest']>) {
    return settle(() => this.sync.collectManifest(...args));
  }
  collectBlob(digest: string, ctx?: Context, options: { olderThan?: Date; removeFile?: LockedAction } = {}) {
    const { removeFile, ...rest } = options;
    return settle(() => this.sync.collectBlob(digest, ctx, removeFile === undefined ? rest : { ...rest, removeFile: synchronous(removeFile) }));
  }
  createEvent(event: NewEvent) {
    return settle(() => this.sync.createEvent(event));
  }
  getEvents(query: EventQuery) {
    return settle(() => this.sync.getEvents(query));
  }
  subscribe(...args: Parameters<MetadataStore['subscribe']>) {
    return settle(() => this.sync.subscribe(...args));
  }
  check(options?: { onProgress?: (done: number, total: number) => void }) {
    return settle(() => this.sync.check(options));
  }
  stats(options?: { top?: number }) {
    return settle(() => this.sync.stats(options));
  }
  checkWritable() {
    return settle(() => this.sync.checkWritable());
  }
  close() {
    return settle(() => this.sync.close());
  }
}

/** MetadataStore.uploads behind the asynchronous contract: each call settled at once. */
function asyncUploads(store: MetadataStore): AsyncUploadSessions {
  const sessions = store.uploads;
  return {
    open: (repo, client, max) => settle(() => sessions.open(repo, client, max)),
    get: (repo, id) => settle(() => sessions.get(repo, id)),
    claim: (repo, id, owner, leaseMs) => settle(() => sessions.claim(repo, id, owner, leaseMs)),
    renew: (id, owner, leaseMs) => settle(() => sessions.renew(id, owner, leaseMs)),
    commit: (id, owner, size) => settle(() => sessions.commit(id, owner, size)),
    release: (id, owner) => settle(() => sessions.release(id, owner)),
    end: (repo, id) => settle(() => sessions.end(repo, id)),
    idle: (idleBefore, limit) => settle(() => sessions.idle(idleBefore, limit)),
    expire: (id, idleBefore) => settle(() => sessions.expire(id, idleBefore)),
    has: (id) => settle(() => sessions.has(id)),
    count: () => settle(() => sessions.count()),
  };
}

/** Runs `fn` now; its result or its exception as a settled promise (never a synchronous throw). */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (error) {
    return Promise.reject(error);
  }
}

/** A callback for SQLite's synchronous transaction: one that turns out asynchronous would run outside it. */
function synchronous(fn: LockedAction): () => void {
  return () => {
    const result = fn();
    if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
      // Unhandled otherwise; the transaction is rolled back by the throw below.
      (result as Promise<void>).catch(() => {});
      throw new StoreError('ARGUMENT_INVALID', 'a callback run inside a SQLite transaction must be synchronous');
    }
  };
}
