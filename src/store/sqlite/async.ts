// The SQLite store behind the asynchronous contract (../contract.ts): an
// adapter over the synchronous MetadataStore, which embedders keep using as
// it is. SQLite through better-sqlite3 is fastest and simplest
// synchronously, and one transaction per call is easiest to keep when
// nothing can interleave. The adapter's methods are derived from the
// contract's lists of method names, each made once, when this module loads;
// the three whose callback may await (an object store's request) run
// MetadataStore.awaiting's, which hold the digest's lock across the awaits.

import { STORE_METHODS } from '../contract.js';
import { CURSOR_METHODS } from '../notifications.js';
import { UPLOAD_METHODS } from '../uploads.js';
import type { LockedAction, NotificationCursors, Store, UploadSessions } from '../contract.js';
import type { StoreLimits } from '../limits.js';
import type { Context, StorePolicy } from '../types.js';
import type { MetadataStore } from './store.js';

/**
 * The SQLite store behind the asynchronous contract. Each call runs the
 * synchronous method at once and returns its settled promise, so the adapter
 * adds one promise per call and nothing else. linkBlob's `place`,
 * whileBlobUnknown's `fn` and collectBlob's `removeFile` may return a
 * promise: it is awaited under the digest's lock, held across processes.
 */
export function asyncStore(store: MetadataStore): Store {
  // A Store: STORE_METHODS lists every method of Store (the compiler checks
  // the list), and MetadataStore implements each, synchronously.
  return new SqliteAsyncStore(store) as unknown as Store;
}

type Method = (this: { readonly sync: Record<string, SyncMethod> }, a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown) => unknown;
type SyncMethod = (a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown) => unknown;

/**
 * A method that calls the synchronous method `name` of `this.sync` with its
 * arguments (at most five, passed as such: nothing allocated), its result or
 * its exception as a settled promise, never a synchronous throw.
 */
function settled(name: string): Method {
  return function (a, b, c, d, e) {
    try {
      return Promise.resolve(this.sync[name](a, b, c, d, e));
    } catch (error) {
      return Promise.reject(error);
    }
  };
}

/** A class whose instances wrap a synchronous object, with a settled method for each of `names`. */
function settledClass<S>(names: readonly string[]): new (sync: S) => { readonly sync: S } {
  class Settled {
    constructor(readonly sync: S) {}
  }
  for (const name of names) Object.defineProperty(Settled.prototype, name, { value: settled(name), writable: true, configurable: true });
  return Settled;
}

const AsyncUploads = settledClass<MetadataStore['uploads']>(UPLOAD_METHODS);
const AsyncCursors = settledClass<MetadataStore['notifications']>(CURSOR_METHODS);

class SqliteAsyncStore extends settledClass<MetadataStore>(STORE_METHODS) {
  readonly backend = 'sqlite';
  readonly notifications: NotificationCursors;
  readonly uploads: UploadSessions;
  constructor(store: MetadataStore) {
    super(store);
    this.notifications = new AsyncCursors(store.notifications) as unknown as NotificationCursors;
    this.uploads = new AsyncUploads(store.uploads) as unknown as UploadSessions;
  }
  linkBlob(repo: string, blob: { digest: string; size: number }, ctx?: Context, options?: { place?: LockedAction }): Promise<void> {
    return this.sync.awaiting.linkBlob(repo, blob, ctx, options);
  }
  whileBlobUnknown(digest: string, fn: LockedAction): Promise<boolean> {
    return this.sync.awaiting.whileBlobUnknown(digest, fn);
  }
  collectBlob(digest: string, ctx?: Context, options?: { olderThan?: Date; removeFile?: LockedAction }): Promise<void> {
    return this.sync.awaiting.collectBlob(digest, ctx, options);
  }
  get location(): string {
    return this.sync.file;
  }
  get limits(): StoreLimits {
    return this.sync.limits;
  }
  get policy(): StorePolicy {
    return this.sync.policy;
  }
}
