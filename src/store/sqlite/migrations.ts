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
 * carried over, so no seq is ever handed out twice. Then the kept storage
 * sizes (see registry_usage, namespace, namespace_blob, repository_usage and
 * their triggers in schema.sql), filled from the links already there before
 * the triggers keep them current; the indexes of tagDetails' sorts by time
 * (see manifest_by_push and tag_by_pull); the event log's pruned horizon,
 * what a webhook endpoint missed to pruning, and the leases of scheduled
 * jobs (see event_horizon, notification_cursor.missed and job_lease in schema.sql).
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
CREATE TABLE registry_usage (
  id    INTEGER PRIMARY KEY CHECK (id = 1),
  blobs INTEGER NOT NULL CHECK (blobs >= 0),
  size  INTEGER NOT NULL CHECK (size >= 0)
);
CREATE TABLE namespace (
  name         TEXT    PRIMARY KEY,
  repositories INTEGER NOT NULL DEFAULT 0 CHECK (repositories >= 0),
  size         INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0)
) WITHOUT ROWID;
CREATE TABLE namespace_blob (
  namespace TEXT    NOT NULL,
  digest    TEXT    NOT NULL,
  size      INTEGER NOT NULL CHECK (size >= 0),
  links     INTEGER NOT NULL CHECK (links >= 0),
  PRIMARY KEY (namespace, digest)
) WITHOUT ROWID;
CREATE TABLE repository_usage (
  repository_id INTEGER PRIMARY KEY REFERENCES repository (id) ON DELETE CASCADE,
  size          INTEGER NOT NULL CHECK (size >= 0)
);
INSERT INTO registry_usage (id, blobs, size) SELECT 1, count(*), coalesce(sum(size), 0) FROM blob;
INSERT INTO namespace (name, repositories)
SELECT CASE instr(name, '/') WHEN 0 THEN name ELSE substr(name, 1, instr(name, '/') - 1) END, count(*) FROM repository GROUP BY 1;
INSERT INTO namespace_blob (namespace, digest, size, links)
SELECT CASE instr(r.name, '/') WHEN 0 THEN r.name ELSE substr(r.name, 1, instr(r.name, '/') - 1) END, b.digest, b.size, count(*)
FROM blob_link l JOIN repository r ON r.id = l.repository_id JOIN blob b ON b.digest = l.digest
GROUP BY 1, 2;
UPDATE namespace SET size = coalesce((SELECT sum(size) FROM namespace_blob WHERE namespace = namespace.name), 0);
INSERT INTO repository_usage (repository_id, size)
SELECT l.repository_id, sum(b.size) FROM blob_link l JOIN blob b ON b.digest = l.digest GROUP BY 1;
CREATE TRIGGER blob_counted AFTER INSERT ON blob BEGIN
  UPDATE registry_usage SET blobs = blobs + 1, size = size + NEW.size WHERE id = 1;
END;
CREATE TRIGGER blob_uncounted AFTER DELETE ON blob BEGIN
  UPDATE registry_usage SET blobs = max(blobs - 1, 0), size = max(size - OLD.size, 0) WHERE id = 1;
END;
CREATE TRIGGER repository_counted AFTER INSERT ON repository BEGIN
  INSERT INTO namespace (name, repositories)
  VALUES (CASE instr(NEW.name, '/') WHEN 0 THEN NEW.name ELSE substr(NEW.name, 1, instr(NEW.name, '/') - 1) END, 1)
  ON CONFLICT (name) DO UPDATE SET repositories = repositories + 1;
END;
CREATE TRIGGER repository_uncounted BEFORE DELETE ON repository BEGIN
  DELETE FROM blob_link WHERE repository_id = OLD.id;
  UPDATE namespace SET repositories = max(repositories - 1, 0)
  WHERE name = CASE instr(OLD.name, '/') WHEN 0 THEN OLD.name ELSE substr(OLD.name, 1, instr(OLD.name, '/') - 1) END;
END;
CREATE TRIGGER blob_link_counted AFTER INSERT ON blob_link BEGIN
  INSERT INTO repository_usage (repository_id, size)
  SELECT NEW.repository_id, size FROM blob WHERE digest = NEW.digest
  ON CONFLICT (repository_id) DO UPDATE SET size = size + excluded.size;
  INSERT INTO namespace_blob (namespace, digest, size, links)
  SELECT (SELECT CASE instr(name, '/') WHEN 0 THEN name ELSE substr(name, 1, instr(name, '/') - 1) END FROM repository WHERE id = NEW.repository_id), digest, size, 1 FROM blob WHERE digest = NEW.digest
  ON CONFLICT (namespace, digest) DO UPDATE SET links = links + 1;
  UPDATE namespace
  SET size = size + coalesce((SELECT size FROM namespace_blob WHERE namespace = namespace.name AND digest = NEW.digest AND links = 1), 0)
  WHERE name = (SELECT CASE instr(name, '/') WHEN 0 THEN name ELSE substr(name, 1, instr(name, '/') - 1) END FROM repository WHERE id = NEW.repository_id);
END;
CREATE TRIGGER blob_link_uncounted AFTER DELETE ON blob_link BEGIN
  UPDATE namespace_blob SET links = links - 1 WHERE namespace = (SELECT CASE instr(name, '/') WHEN 0 THEN name ELSE substr(name, 1, instr(name, '/') - 1) END FROM repository WHERE id = OLD.repository_id) AND digest = OLD.digest;
  UPDATE repository_usage
  SET size = max(size - coalesce((SELECT size FROM namespace_blob WHERE namespace = (SELECT CASE instr(name, '/') WHEN 0 THEN name ELSE substr(name, 1, instr(name, '/') - 1) END FROM repository WHERE id = OLD.repository_id) AND digest = OLD.digest), 0), 0)
  WHERE repository_id = OLD.repository_id;
  UPDATE namespace
  SET size = max(size - coalesce((SELECT size FROM namespace_blob WHERE namespace = namespace.name AND digest = OLD.digest AND links = 0), 0), 0)
  WHERE name = (SELECT CASE instr(name, '/') WHEN 0 THEN name ELSE substr(name, 1, instr(name, '/') - 1) END FROM repository WHERE id = OLD.repository_id);
  DELETE FROM namespace_blob WHERE namespace = (SELECT CASE instr(name, '/') WHEN 0 THEN name ELSE substr(name, 1, instr(name, '/') - 1) END FROM repository WHERE id = OLD.repository_id) AND digest = OLD.digest AND links = 0;
END;
CREATE INDEX manifest_by_push ON manifest (repository_id, pushed_at);
CREATE INDEX tag_by_pull ON tag (repository_id, coalesce(pulled_at, 0), name);
ALTER TABLE notification_cursor ADD COLUMN missed INTEGER NOT NULL DEFAULT 0 CHECK (missed >= 0);
ALTER TABLE notification_cursor ADD COLUMN missed_from INTEGER;
ALTER TABLE notification_cursor ADD COLUMN missed_to INTEGER;
ALTER TABLE notification_cursor ADD COLUMN missed_at INTEGER;
CREATE TABLE event_horizon (
  id           INTEGER PRIMARY KEY CHECK (id = 1),
  seq          INTEGER NOT NULL CHECK (seq >= 0),
  published_at INTEGER,
  pruned_at    INTEGER
);
INSERT INTO event_horizon (id, seq) VALUES (1, 0);
CREATE TABLE job_lease (
  name        TEXT    PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 100),
  holder      TEXT    NOT NULL CHECK (length(holder) BETWEEN 1 AND 255),
  lease_until INTEGER NOT NULL,
  taken_at    INTEGER NOT NULL
) WITHOUT ROWID;
PRAGMA user_version = 7;
`;

/** The step from version `n` to `n + 1`, at index `n`; index 0 is unused (a new file runs schema.sql). */
export const MIGRATION_STEPS: readonly (string | undefined)[] = [undefined, TO_2, TO_3, TO_4, TO_5, TO_6, TO_7];
