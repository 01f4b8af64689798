// The SQLite store behind the asynchronous contract (../contract.ts): a thin
// adapter over the synchronous MetadataStore, which embedders keep using as
// it is. SQLite through better-sqlite3 is fastest and simplest
// synchronously, and one transaction per call is easiest to keep when
// nothing can interleave.

import { StoreError } from '../errors.js';
import { checkEndpoint } from './notifications.js';
import type { Reference } from '../grammar.js';
import type { StoreLimits } from '../limits.js';
import type { MetadataStore } from './store.js';
import type { LockedAction, NotificationCursors, Store, UploadSessions } from '../contract.js';
import type { Context, EventQuery, ManifestInfo, NewEvent, PageOptions, CatalogOptions, StoredManifest } from '../types.js';

/**
 * The SQLite store behind the asynchronous contract. Each call runs the
 * synchronous method at once and returns its settled promise, so the adapter
 * adds one promise per call and nothing else. Callbacks run inside SQLite's
 * transaction must be synchronous there: one that returns a promise fails
 * the call with ARGUMENT_INVALID and its transaction rolls back.
 */
export function asyncStore(store: MetadataStore): Store {
  return new SqliteAsyncStore(store);
}

class SqliteAsyncStore implements Store {
  readonly backend = 'sqlite';
  readonly sync: MetadataStore;
  readonly notifications: NotificationCursors;
  readonly uploads: UploadSessions;
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
  backup(...args: Parameters<MetadataStore['backup']>) {
    return this.sync.backup(...args);
  }
  checkWritable() {
    return settle(() => this.sync.checkWritable());
  }
  close() {
    return settle(() => this.sync.close());
  }
}

/** MetadataStore.uploads behind the asynchronous contract: each call settled at once. */
function asyncUploads(store: MetadataStore): UploadSessions {
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
