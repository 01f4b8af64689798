// The PostgreSQL schema's version and its migration: a new database gets
// schema.postgres.sql whole; an older one the steps from its version up; a
// newer one is refused. Several replicas starting at once migrate once: the
// work runs in one transaction under a transaction-level advisory lock, and
// the version is read again once the lock is held.

import { readFileSync } from 'node:fs';
import { StoreError } from '../errors.js';
import type { Sql, TxSql } from './context.js';

/** The schema version this code writes; schema.postgres.sql ends by recording it. */
const PG_SCHEMA_VERSION = 5;

/** The advisory lock key of migrations ('rgmt' as an integer, as SQLite's application_id). */
const MIGRATION_LOCK = 0x72676d74;

/** The step from version `n` to `n + 1`, at index `n`; index 0 is unused (a new database runs the schema file). */
const MIGRATION_STEPS: readonly (string | undefined)[] = [
  undefined,
  // Version 1 → 2: upload sessions (see upload_session in schema.postgres.sql for each column's reason).
  `
CREATE TABLE upload_session (
  id          text COLLATE "C" PRIMARY KEY CHECK (length(id) = 36),
  repository  text COLLATE "C" NOT NULL CHECK (length(repository) BETWEEN 1 AND 255),
  client      text NOT NULL CHECK (length(client) <= 255),
  size        bigint NOT NULL DEFAULT 0 CHECK (size >= 0),
  started_at  bigint NOT NULL,
  updated_at  bigint NOT NULL,
  owner       text,
  lease_until bigint,
  CHECK ((owner IS NULL) = (lease_until IS NULL))
);
CREATE INDEX upload_session_by_client ON upload_session (client);
CREATE INDEX upload_session_by_time ON upload_session (updated_at);
`,
  // Version 2 → 3: the holder of a claim (see upload_session.holder in schema.postgres.sql).
  `
ALTER TABLE upload_session ADD COLUMN holder integer;
`,
  // Version 3 → 4: a cached repository's last pull (see repository.pulled_at in schema.postgres.sql).
  `
ALTER TABLE repository ADD COLUMN pulled_at bigint;
`,
  // Version 4 → 5: pull statistics of manifests and tags, PULL events with
  // their count, and every event's reason (see manifest, tag and event in schema.postgres.sql);
  // the indexes of tagDetails' sorts by time (manifest_by_push, tag_by_pull).
  `
ALTER TABLE manifest ADD COLUMN pulled_at bigint, ADD COLUMN pull_count bigint NOT NULL DEFAULT 0 CHECK (pull_count >= 0);
ALTER TABLE tag ADD COLUMN pulled_at bigint, ADD COLUMN pull_count bigint NOT NULL DEFAULT 0 CHECK (pull_count >= 0);
ALTER TABLE event
  DROP CONSTRAINT event_type_check,
  ADD CONSTRAINT event_type_check CHECK (type IN ('CREATE', 'UPDATE', 'DELETE', 'PULL')),
  ADD COLUMN count bigint CHECK (count > 0),
  ADD COLUMN reason text;
CREATE INDEX manifest_by_push ON manifest (repository_id, pushed_at);
CREATE INDEX tag_by_pull ON tag (repository_id, (coalesce(pulled_at, 0)), name);
`,
];

const schemaSql = () => readFileSync(new URL('../../../schema.postgres.sql', import.meta.url), 'utf8');

/** The schema version of the database, 0 when it has none, and how many tables it has besides. */
async function readVersion(sql: Sql | TxSql): Promise<{ version: number; tables: number }> {
  const [found] = await sql<{ marked: boolean; tables: number }[]>`
    SELECT
      to_regclass('regmeta_schema') IS NOT NULL AS marked,
      (SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()) AS tables`;
  if (!found.marked) return { version: 0, tables: found.tables };
  const [row] = await sql<{ version: number }[]>`SELECT version FROM regmeta_schema`;
  return { version: row?.version ?? 0, tables: found.tables };
}

/** @throws StoreError DATABASE_TOO_NEW, DATABASE_INVALID. */
function refuse(location: string, found: { version: number; tables: number }): void {
  if (found.version > PG_SCHEMA_VERSION) {
    throw new StoreError(
      'DATABASE_TOO_NEW',
      `${location} has regmeta schema version ${found.version}, newer than this regmeta's ${PG_SCHEMA_VERSION}: upgrade regmeta`,
      { version: found.version, supported: PG_SCHEMA_VERSION },
    );
  }
  if (found.version === 0 && found.tables > 0) {
    throw new StoreError('DATABASE_INVALID', `${location} has tables and is not a regmeta store: give regmeta an empty database`);
  }
}

/**
 * Brings the database's schema up to date, once however many replicas do it at the same moment.
 * @throws StoreError DATABASE_TOO_NEW, DATABASE_INVALID; what the database throws (untranslated).
 */
export async function migrate(sql: Sql, location: string): Promise<void> {
  // Fast path without the lock: an up-to-date database needs nothing.
  const seen = await readVersion(sql);
  refuse(location, seen);
  if (seen.version === PG_SCHEMA_VERSION) return;
  await sql.begin(async (tx) => {
    const t = tx as unknown as TxSql;
    await t`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    // Read again under the lock: another replica may have migrated meanwhile
    // (READ COMMITTED: this statement sees what it committed).
    const found = await readVersion(t);
    refuse(location, found);
    if (found.version === 0) await t.unsafe(schemaSql());
    else {
      for (let version = found.version; version < PG_SCHEMA_VERSION; version++) await t.unsafe(MIGRATION_STEPS[version]!);
      await t`UPDATE regmeta_schema SET version = ${PG_SCHEMA_VERSION}`;
    }
  });
}

/**
 * What a read-only open checks instead of migrating: a regmeta schema this
 * code can read. An older one is readable (migrations only add), but an
 * empty database has nothing to read and a read-only open sets nothing up.
 * @throws StoreError DATABASE_TOO_NEW, DATABASE_INVALID; what the database throws (untranslated).
 */
export async function checkReadable(sql: Sql, location: string): Promise<void> {
  const found = await readVersion(sql);
  refuse(location, found);
  if (found.version === 0) {
    throw new StoreError('DATABASE_INVALID', `${location} has no regmeta schema, and a read-only open does not set one up`);
  }
}
