// What the rest of regmeta (the package entries, the server, the CLI, the
// webhooks) uses of the store; nothing outside src/store imports the files
// behind it. The contract and what the backends share sit at src/store's
// root; the backends in sqlite/ and postgres/; migration between them in
// migrate/. Tests and benchmarks reach internals by their own paths.

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { StoreError } from './errors.js';
import { MetadataStore } from './sqlite/store.js';
import type { Store } from './contract.js';
import type { StoreSnapshot } from './migrate/snapshot.js';
import type { TransferTable } from './migrate/transfer.js';
import type { PostgresStoreOptions, StoreOptions } from './types.js';

/**
 * Opens (creating and migrating when needed) the store in `file`, and the
 * directory it goes in; ':memory:' gives a private in-memory store. With
 * `options.readOnly`, opens an existing store without creating, migrating
 * or writing anything.
 * @throws StoreError DATABASE_INVALID (not a database, or another program's;
 * read-only, also one not set up yet), DATABASE_TOO_NEW, DATABASE_READONLY,
 * DATABASE_ERROR (also when the directory cannot be created); ARGUMENT_INVALID
 * (an invalid `options.policy`).
 */
export function openStore(file: string, options?: StoreOptions): MetadataStore {
  if (file !== ':memory:' && file !== '' && !options?.readOnly) {
    try {
      mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'an error';
      throw new StoreError('DATABASE_ERROR', `cannot create the directory of ${file} (${code})`);
    }
  }
  return new MetadataStore(file, options);
}

/**
 * Connects to the PostgreSQL database at `url` (postgres://user:password@host/db),
 * creating or migrating its schema once however many replicas start at the
 * same moment, and returns the store behind the asynchronous contract. The
 * client library is loaded here, on first use, not by `import 'regmeta'`.
 * A database that a `regmeta migrate` into it has begun and not finished is
 * refused, for reading as for writing: it holds part of a registry.
 * @throws StoreError ARGUMENT_INVALID (not a postgres:// URL, an invalid
 * `options.policy`), DATABASE_TOO_NEW, DATABASE_INVALID (another program's tables), DATABASE_INCOMPLETE (a
 * migration into it unfinished), DATABASE_UNAVAILABLE (unreachable, refused).
 */
export async function openPostgresStore(url: string, options?: PostgresStoreOptions): Promise<Store> {
  const { openPostgres } = await import('./postgres/store.js');
  return openPostgres(url, options);
}

export { MetadataStore };
export { asyncStore } from './sqlite/async.js';
export type { Store, NotificationCursors, UploadSessions, LockedAction } from './contract.js';
export { registerStore, registeredStore } from './sqlite/registry.js';
export { StoreError, NotFoundError, type OciErrorCode, type StoreErrorCode } from './errors.js';
export { DEFAULT_BACKUP_PAGES_PER_STEP, DEFAULT_POSTGRES_TIMEOUTS, type StoreLimits } from './limits.js';
export type * from './types.js';

// The grammar of names, tags, digests and references, and of manifests.
export {
  checkDigest,
  checkRepository,
  checkTag,
  compilePattern,
  digestOf,
  isDigest,
  isNamespace,
  isRepository,
  parseReference,
  verifyDigest,
  type DigestAlgorithm,
  type Reference,
} from './grammar.js';
export { MediaType, pushedMediaType } from './payload.js';
export { formatBytes } from './quota.js';
export { EVENT_TYPES, OBJECT_TYPES } from './events.js';

// Retention rules: a plan of what they remove and why, and its apply (regmeta gc --retention, serve's schedule).
export { planRetention, type RetentionPlan, type RepositoryPlan, type PlannedTag, type PlannedManifest, type PlanOptions } from './retention-plan.js';
export { applyPlan, applyRetention, deletionsOf, type RetentionDeletion, type RetentionResult } from './retention.js';
export { compileRetentionRules, type RetentionRule, type RetentionKeep } from './retention-rules.js';

// The server tells an admin's override of an immutable tag by the store's own rules.
export { immutableRules } from './immutable.js';

// Who a process is, and whether it has gone: for files processes sharing a directory leave behind.
export { processGone, processIdentity } from './sqlite/process-identity.js';

// What a file is, before anything opens it for writing.
export { probeDatabase, type DatabaseKind } from './sqlite/connection.js';

// The CLI checks a --database URL by the store's own rule before connecting.
export { isPostgresUrl } from './location.js';

// For `regmeta migrate`: the raw rows of a SQLite store in one snapshot, and
// their loading into PostgreSQL, both loaded on first use (opening a store
// loads neither). Not the package's API.
export type { StoreSnapshot } from './migrate/snapshot.js';
export type { TransferTable } from './migrate/transfer.js';
export type { PgLoader } from './migrate/load.js';

/**
 * Opens the SQLite store in `file` as the source of a migration: its rows in
 * one read-only snapshot, and the tables to copy, in foreign-key order.
 * @throws StoreError as openDatabase (read-only), and DATABASE_INVALID for a table of unknown columns.
 */
export async function openMigrationSource(file: string): Promise<{ snapshot: StoreSnapshot; tables: readonly TransferTable[] }> {
  const [{ StoreSnapshot }, { TRANSFER_TABLES }] = await Promise.all([import('./migrate/snapshot.js'), import('./migrate/transfer.js')]);
  return { snapshot: new StoreSnapshot(file), tables: TRANSFER_TABLES };
}

/**
 * Connects to the PostgreSQL database at `url` as the target of a migration,
 * its schema created or migrated as openPostgresStore does (`readOnly`: checked only).
 * @throws StoreError as openPostgresStore, and DATABASE_INVALID when its tables' columns are not this regmeta's.
 */
export async function openPostgresLoader(url: string, options?: { readOnly?: boolean }): Promise<import('./migrate/load.js').PgLoader> {
  const { PgLoader } = await import('./migrate/load.js');
  return PgLoader.open(url, options);
}
