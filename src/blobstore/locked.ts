// Which form of a blob-file change a metadata store runs under its lock
// (see types.ts): SQLite's transaction is synchronous and refuses a callback
// that returns a promise; a lock held across awaits (PostgreSQL's) takes the
// asynchronous form, so that the event loop goes on while the file moves.

import type { Store } from '../store/index.js';

/**
 * Of a change's two forms, the one `store` runs under its lock: `sync` for
 * SQLite, `async` for a backend whose lock is held across awaits.
 */
export function lockedForm<T>(store: Pick<Store, 'backend'>, sync: () => T, async: () => Promise<T>): () => T | Promise<T> {
  return store.backend === 'sqlite' ? sync : async;
}
