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
  // the kept storage sizes (see registry_usage, namespace, namespace_blob,
  // repository_usage and their triggers), filled from the links already there
  // before the triggers keep them current; the indexes of tagDetails' sorts by
  // time (manifest_by_push, tag_by_pull); the event log's pruned horizon, what
  // a webhook endpoint missed to pruning, and the leases of scheduled jobs
  // (see event_horizon, notification_cursor.missed and job_lease there).
  // The tables the sizes are filled from are locked first, against the
  // writes of replicas still on version 4 (a link committed between the
  // fill and its trigger would never be counted): SHARE ROW EXCLUSIVE, the
  // mode CREATE TRIGGER and the foreign key of repository_usage take later,
  // so no lock is upgraded; taken before the ALTERs' (manifest, tag, event),
  // in the order a write takes them (repository, blob, blob_link, then the
  // rest), so that the step waits for a write rather than deadlocks with it.
  `
LOCK TABLE repository, blob, blob_link IN SHARE ROW EXCLUSIVE MODE;
ALTER TABLE manifest ADD COLUMN pulled_at bigint, ADD COLUMN pull_count bigint NOT NULL DEFAULT 0 CHECK (pull_count >= 0);
ALTER TABLE tag ADD COLUMN pulled_at bigint, ADD COLUMN pull_count bigint NOT NULL DEFAULT 0 CHECK (pull_count >= 0);
ALTER TABLE event
  DROP CONSTRAINT event_type_check,
  ADD CONSTRAINT event_type_check CHECK (type IN ('CREATE', 'UPDATE', 'DELETE', 'PULL')),
  ADD COLUMN count bigint CHECK (count > 0),
  ADD COLUMN reason text;
CREATE TABLE registry_usage (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  blobs     bigint NOT NULL CHECK (blobs >= 0),
  size      bigint NOT NULL CHECK (size >= 0)
);
CREATE TABLE namespace (
  name         text COLLATE "C" PRIMARY KEY,
  repositories bigint NOT NULL DEFAULT 0 CHECK (repositories >= 0),
  size         bigint NOT NULL DEFAULT 0 CHECK (size >= 0)
);
CREATE TABLE namespace_blob (
  namespace text COLLATE "C" NOT NULL,
  digest    text COLLATE "C" NOT NULL,
  size      bigint NOT NULL CHECK (size >= 0),
  links     bigint NOT NULL CHECK (links >= 0),
  PRIMARY KEY (namespace, digest)
);
CREATE TABLE repository_usage (
  repository_id bigint PRIMARY KEY REFERENCES repository (id) ON DELETE CASCADE,
  size          bigint NOT NULL CHECK (size >= 0)
);
INSERT INTO registry_usage (blobs, size) SELECT count(*), coalesce(sum(size), 0) FROM blob;
INSERT INTO namespace (name, repositories) SELECT split_part(name, '/', 1), count(*) FROM repository GROUP BY 1;
INSERT INTO namespace_blob (namespace, digest, size, links)
SELECT split_part(r.name, '/', 1), b.digest, b.size, count(*)
FROM blob_link l JOIN repository r ON r.id = l.repository_id JOIN blob b ON b.digest = l.digest
GROUP BY 1, 2, 3;
UPDATE namespace SET size = s.size
FROM (SELECT namespace, sum(size) AS size FROM namespace_blob GROUP BY 1) s WHERE s.namespace = namespace.name;
INSERT INTO repository_usage (repository_id, size)
SELECT l.repository_id, sum(b.size) FROM blob_link l JOIN blob b ON b.digest = l.digest GROUP BY 1;
CREATE FUNCTION regmeta_blob_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE registry_usage SET blobs = blobs + 1, size = size + NEW.size;
  ELSE
    UPDATE registry_usage SET blobs = greatest(blobs - 1, 0), size = greatest(size - OLD.size, 0);
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER blob_counted AFTER INSERT OR DELETE ON blob
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION regmeta_blob_counted();
CREATE FUNCTION regmeta_repository_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO namespace (name, repositories) VALUES (split_part(NEW.name, '/', 1), 1)
  ON CONFLICT (name) DO UPDATE SET repositories = namespace.repositories + 1;
  RETURN NULL;
END $$;
CREATE TRIGGER repository_counted AFTER INSERT ON repository
  FOR EACH ROW EXECUTE FUNCTION regmeta_repository_counted();
CREATE FUNCTION regmeta_repository_uncounted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM blob_link WHERE repository_id = OLD.id;
  UPDATE namespace SET repositories = greatest(repositories - 1, 0) WHERE name = split_part(OLD.name, '/', 1);
  RETURN OLD;
END $$;
CREATE TRIGGER repository_uncounted BEFORE DELETE ON repository
  FOR EACH ROW EXECUTE FUNCTION regmeta_repository_uncounted();
CREATE FUNCTION regmeta_blob_link_counted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ns    text;
  bytes bigint;
  n     bigint;
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT split_part(name, '/', 1) INTO ns FROM repository WHERE id = NEW.repository_id;
    PERFORM FROM namespace WHERE name = ns FOR UPDATE;
    SELECT size INTO bytes FROM blob WHERE digest = NEW.digest;
    INSERT INTO namespace_blob (namespace, digest, size, links) VALUES (ns, NEW.digest, bytes, 1)
    ON CONFLICT (namespace, digest) DO UPDATE SET links = namespace_blob.links + 1
    RETURNING links INTO n;
    IF n = 1 THEN
      UPDATE namespace SET size = size + bytes WHERE name = ns;
    END IF;
    INSERT INTO repository_usage (repository_id, size) VALUES (NEW.repository_id, bytes)
    ON CONFLICT (repository_id) DO UPDATE SET size = repository_usage.size + excluded.size;
  ELSE
    SELECT split_part(name, '/', 1) INTO ns FROM repository WHERE id = OLD.repository_id;
    PERFORM FROM namespace WHERE name = ns FOR UPDATE;
    UPDATE namespace_blob SET links = links - 1 WHERE namespace = ns AND digest = OLD.digest
    RETURNING links, size INTO n, bytes;
    IF n = 0 THEN
      DELETE FROM namespace_blob WHERE namespace = ns AND digest = OLD.digest;
      UPDATE namespace SET size = greatest(size - bytes, 0) WHERE name = ns;
    END IF;
    UPDATE repository_usage SET size = greatest(size - coalesce(bytes, 0), 0) WHERE repository_id = OLD.repository_id;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER blob_link_counted AFTER INSERT OR DELETE ON blob_link
  FOR EACH ROW EXECUTE FUNCTION regmeta_blob_link_counted();
CREATE INDEX manifest_by_push ON manifest (repository_id, pushed_at);
CREATE INDEX tag_by_pull ON tag (repository_id, (coalesce(pulled_at, 0)), name);
ALTER TABLE notification_cursor ADD COLUMN missed bigint NOT NULL DEFAULT 0 CHECK (missed >= 0);
ALTER TABLE notification_cursor ADD COLUMN missed_from bigint;
ALTER TABLE notification_cursor ADD COLUMN missed_to bigint;
ALTER TABLE notification_cursor ADD COLUMN missed_at bigint;
CREATE TABLE event_horizon (
  singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  seq          bigint NOT NULL CHECK (seq >= 0),
  published_at bigint,
  pruned_at    bigint
);
INSERT INTO event_horizon (seq) VALUES (0);
CREATE TABLE job_lease (
  name        text COLLATE "C" PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 100),
  holder      text NOT NULL CHECK (length(holder) BETWEEN 1 AND 255),
  lease_until bigint NOT NULL,
  taken_at    bigint NOT NULL
);
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
