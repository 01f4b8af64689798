// The scripts that take an existing store from one schema version to the
// next. A new database runs schema.sql whole (it is always the newest
// version); these run only on older files, each in the migration's one
// IMMEDIATE transaction. A step's tables must read exactly as schema.sql
// writes them (test/store/connection.test.ts compares the two).

/** Version 1 → 2: the webhook cursors (see notification_cursor in schema.sql for each column's reason). */
const TO_2 = `
CREATE TABLE notification_cursor (
  endpoint        TEXT    PRIMARY KEY CHECK (length(endpoint) BETWEEN 1 AND 2048),
  seq             INTEGER NOT NULL CHECK (seq >= 0),
  published_at    INTEGER,
  event_id        TEXT,
  created_at      INTEGER NOT NULL,
  delivered_at    INTEGER,
  failures        INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
  last_error      TEXT,
  last_failure_at INTEGER
) WITHOUT ROWID;
PRAGMA user_version = 2;
`;

/** Version 2 → 3: upload sessions (see upload_session in schema.sql for each column's reason). */
const TO_3 = `
CREATE TABLE upload_session (
  id          TEXT    PRIMARY KEY CHECK (length(id) = 36),
  repository  TEXT    NOT NULL CHECK (length(repository) BETWEEN 1 AND 255),
  client      TEXT    NOT NULL CHECK (length(client) <= 255),
  size        INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0),
  started_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  owner       TEXT,
  lease_until INTEGER,
  CHECK ((owner IS NULL) = (lease_until IS NULL))
) WITHOUT ROWID;
CREATE INDEX upload_session_by_client ON upload_session (client);
CREATE INDEX upload_session_by_time ON upload_session (updated_at);
PRAGMA user_version = 3;
`;

/** Version 3 → 4: the holder of an upload claim (see upload_session.holder in schema.sql). */
const TO_4 = `
ALTER TABLE upload_session ADD COLUMN holder TEXT;
PRAGMA user_version = 4;
`;

/** Version 4 → 5: the digest locks held across an action's awaits (see blob_lock in schema.sql). */
const TO_5 = `
CREATE TABLE blob_lock (
  digest      TEXT    PRIMARY KEY,
  owner       TEXT    NOT NULL CHECK (length(owner) = 36),
  holder      TEXT,
  lease_until INTEGER NOT NULL
) WITHOUT ROWID;
PRAGMA user_version = 5;
`;

/** Version 5 → 6: a cached repository's last pull (see repository.pulled_at in schema.sql). */
const TO_6 = `
ALTER TABLE repository ADD COLUMN pulled_at INTEGER;
PRAGMA user_version = 6;
`;

/**
 * Version 6 → 7: pull statistics of manifests and tags, and the event log's
 * PULL events with their count and every event's reason (see manifest,
 * tag and event in schema.sql). SQLite cannot widen a CHECK in place, so the
 * event table is copied into its new shape; its AUTOINCREMENT counter is
 * carried over, so no seq is ever handed out twice. Then the indexes of
 * tagDetails' sorts by time (see manifest_by_push and tag_by_pull).
 */
const TO_7 = `
ALTER TABLE manifest ADD COLUMN pulled_at INTEGER;
ALTER TABLE manifest ADD COLUMN pull_count INTEGER NOT NULL DEFAULT 0 CHECK (pull_count >= 0);
ALTER TABLE tag ADD COLUMN pulled_at INTEGER;
ALTER TABLE tag ADD COLUMN pull_count INTEGER NOT NULL DEFAULT 0 CHECK (pull_count >= 0);
CREATE TABLE event_v7 (
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,
  id              TEXT    NOT NULL UNIQUE,
  published_at    INTEGER NOT NULL,
  actor           TEXT    NOT NULL,
  type            TEXT    NOT NULL CHECK (type IN ('CREATE', 'UPDATE', 'DELETE', 'PULL')),
  object_type     TEXT    NOT NULL CHECK (object_type IN ('REPOSITORY', 'TAG', 'MANIFEST', 'BLOB')),
  object_id       TEXT    NOT NULL,
  repository      TEXT,
  tag             TEXT,
  digest          TEXT,
  previous_digest TEXT,
  count           INTEGER CHECK (count > 0),
  reason          TEXT
);
INSERT INTO event_v7 (seq, id, published_at, actor, type, object_type, object_id, repository, tag, digest, previous_digest)
  SELECT seq, id, published_at, actor, type, object_type, object_id, repository, tag, digest, previous_digest FROM event ORDER BY seq;
DELETE FROM sqlite_sequence WHERE name = 'event_v7';
INSERT INTO sqlite_sequence (name, seq) SELECT 'event_v7', seq FROM sqlite_sequence WHERE name = 'event';
DROP TABLE event;
ALTER TABLE event_v7 RENAME TO event;
CREATE INDEX event_by_time ON event (published_at);
CREATE INDEX event_by_actor ON event (actor, published_at);
CREATE INDEX event_by_repository ON event (repository, published_at) WHERE repository IS NOT NULL;
CREATE INDEX manifest_by_push ON manifest (repository_id, pushed_at);
CREATE INDEX tag_by_pull ON tag (repository_id, coalesce(pulled_at, 0), name);
PRAGMA user_version = 7;
`;

/** The step from version `n` to `n + 1`, at index `n`; index 0 is unused (a new file runs schema.sql). */
export const MIGRATION_STEPS: readonly (string | undefined)[] = [undefined, TO_2, TO_3, TO_4, TO_5, TO_6, TO_7];
