// The public surface of regmeta: open a store, use it, catch its errors.
import { MetadataStore } from './store/store.js';
import type { StoreOptions } from './store/types.js';

/**
 * Opens (creating and migrating when needed) the store in `file`; ':memory:'
 * gives a private in-memory store.
 * @throws StoreError DATABASE_INVALID (not a database, or another program's),
 * DATABASE_TOO_NEW, DATABASE_READONLY, DATABASE_ERROR.
 */
export function openStore(file: string, options?: StoreOptions): MetadataStore {
  return new MetadataStore(file, options);
}

export { MetadataStore };
export { registerStore, registeredStore } from './store/registry.js';
export { StoreError, NotFoundError, type StoreErrorCode } from './store/errors.js';
export { MediaType } from './store/payload.js';
export type * from './store/types.js';
