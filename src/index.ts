// The public surface of regmeta: open a store, use it, catch its errors.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { StoreError } from './store/errors.js';
import { MetadataStore } from './store/store.js';
import type { StoreOptions } from './store/types.js';

/**
 * Opens (creating and migrating when needed) the store in `file`, and the
 * directory it goes in; ':memory:' gives a private in-memory store.
 * @throws StoreError DATABASE_INVALID (not a database, or another program's),
 * DATABASE_TOO_NEW, DATABASE_READONLY, DATABASE_ERROR (also when the
 * directory cannot be created).
 */
export function openStore(file: string, options?: StoreOptions): MetadataStore {
  if (file !== ':memory:' && file !== '') {
    try {
      mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'an error';
      throw new StoreError('DATABASE_ERROR', `cannot create the directory of ${file} (${code})`);
    }
  }
  return new MetadataStore(file, options);
}

export { MetadataStore };
export { registerStore, registeredStore } from './store/registry.js';
export { StoreError, NotFoundError, type StoreErrorCode } from './store/errors.js';
export { MediaType } from './store/manifest.js';
export { checkDigest, digestOf, isDigest, isRepository, parseReference, type DigestAlgorithm, type Reference } from './store/grammar.js';
export type * from './store/types.js';
