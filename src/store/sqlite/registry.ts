// DTR's RegisterStore: one store per process that the rest of a registry
// reaches without passing it around.

import { StoreError } from '../errors.js';
import type { MetadataStore } from './store.js';

let registered: MetadataStore | undefined;

/**
 * Makes `store` the process's store.
 * @throws StoreError STORE_ALREADY_REGISTERED when one is registered already.
 */
export function registerStore(store: MetadataStore): void {
  if (registered !== undefined) {
    throw new StoreError('STORE_ALREADY_REGISTERED', `a store is already registered (${registered.file})`);
  }
  registered = store;
}

/** The process's store, or undefined before registerStore. */
export function registeredStore(): MetadataStore | undefined {
  return registered;
}
