-- regmeta schema, version 7: the metadata of a container image registry.
--
-- This file is the one canonical schema. A new database runs it whole, in the
-- same IMMEDIATE transaction that sets PRAGMA user_version, so a crash or a
-- second process opening the same new file sees either no schema or all of it.
--
-- Conventions: times are integer milliseconds since the Unix epoch (what
-- JavaScript's Date holds, no time-zone parsing); digests and names are TEXT
-- compared with the default BINARY collation, which is the byte order that
-- distribution's tag and catalog listings use (Go's sort.Strings).

-- Marks the file as ours, so that another program's SQLite file is refused
-- instead of having tables added to it ('rgmt').
PRAGMA application_id = 1919380852;

-- A repository exists from its first manifest or blob link; its integer id
-- keeps the tables that hang off it narrow.
CREATE TABLE repository (
  id         INTEGER PRIMARY KEY,
  -- UNIQUE is also the index that resolves a name to its id on every call.
  name       TEXT    NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 255),
  created_at INTEGER NOT NULL,
  -- The last pull of a mirror's cached repository (NULL: never pulled since
  -- it was cached), written in batches by the server (recordPulls): what
  -- regmeta gc's eviction by idleness and by size budget orders by. No
  -- index: gc reads one namespace through the name's index and orders its
  -- rows itself. Added by version 6 (ALTER TABLE puts it last).
  pulled_at  INTEGER
);

-- Manifests belong to one repository: the same digest pushed to two
-- repositories is two rows, so that one repository can never read, list or
-- delete another's (DTR keyed them by "<repo>@<digest>" for the same reason).
CREATE TABLE manifest (
  id            INTEGER PRIMARY KEY,
  -- Deleting a repository takes its manifests with it.
  repository_id INTEGER NOT NULL REFERENCES repository (id) ON DELETE CASCADE,
  digest        TEXT    NOT NULL,
  media_type    TEXT    NOT NULL,
  -- What a referrers response reports: artifactType, else the config's media type.
  artifact_type TEXT,
  -- The manifest's annotations as JSON, copied into referrers responses.
  annotations   TEXT,
  -- The digest of the OCI 1.1 subject; kept as text because the subject may
  -- be pushed after its referrers.
  subject       TEXT,
  -- The length of the payload, so that HEAD and tag reads never touch the bytes.
  size          INTEGER NOT NULL CHECK (size >= 0),
  created_at    INTEGER NOT NULL,
  -- The last push of these bytes: the garbage collector's grace period counts
  -- from it, so a manifest pushed again just before being tagged is not swept.
  pushed_at     INTEGER NOT NULL,
  -- The last pull and the number of pulls (GETs) of these bytes here,
  -- written in batches by the server (recordPulls), never per pull: what
  -- tag details show and retention's pulledWithin reads. Added by version 7
  -- (ALTER TABLE puts new columns before the constraints).
  pulled_at     INTEGER,
  pull_count    INTEGER NOT NULL DEFAULT 0 CHECK (pull_count >= 0),
  -- One row per digest per repository; also the index for every by-digest read.
  UNIQUE (repository_id, digest)
);

-- The exact bytes as pushed (their digest is the manifest's identity), apart
-- from the manifest row: kilobytes of JSON inline would spread the rows that
-- every tag read and HEAD visits over many more pages.
CREATE TABLE manifest_payload (
  manifest_id INTEGER PRIMARY KEY REFERENCES manifest (id) ON DELETE CASCADE,
  payload     BLOB    NOT NULL
);

-- Referrers of a digest within a repository, without a scan of manifests.
CREATE INDEX manifest_by_subject ON manifest (repository_id, subject) WHERE subject IS NOT NULL;

-- A tag names one manifest of its repository. Deleted tags are deleted rows:
-- no tombstones for a re-tag to revive by accident.
CREATE TABLE tag (
  repository_id INTEGER NOT NULL REFERENCES repository (id) ON DELETE CASCADE,
  name          TEXT    NOT NULL,
  -- No ON DELETE: deleteManifest removes the tags itself, writing an event for
  -- each; the foreign key makes forgetting to do so an error, not a dangling tag.
  manifest_id   INTEGER NOT NULL REFERENCES manifest (id),
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  -- The last pull by this tag and the pulls by it (GETs and HEADs by tag),
  -- written in batches as the manifest's are. Added by version 7.
  pulled_at     INTEGER,
  pull_count    INTEGER NOT NULL DEFAULT 0 CHECK (pull_count >= 0),
  -- The primary key is the (repository, name) index that getTag and the
  -- paginated tag list walk in byte order; WITHOUT ROWID stores the rows in it.
  PRIMARY KEY (repository_id, name)
) WITHOUT ROWID;

-- lookupTags and deleteManifest find the tags of a manifest through this
-- index, already sorted by name, never by a scan of all tags.
CREATE INDEX tag_by_manifest ON tag (manifest_id, name);

-- Every target a tag has had, like distribution's _manifests/tags/<tag>/index.
-- Digests are text because the manifests may be long gone.
CREATE TABLE tag_history (
  id            INTEGER PRIMARY KEY,
  repository_id INTEGER NOT NULL REFERENCES repository (id) ON DELETE CASCADE,
  tag           TEXT    NOT NULL,
  digest        TEXT    NOT NULL,
  tagged_at     INTEGER NOT NULL
);

-- The history of one tag, newest first.
CREATE INDEX tag_history_by_tag ON tag_history (repository_id, tag, id);

-- Blobs the registry holds, once each, whatever repositories link them.
CREATE TABLE blob (
  digest     TEXT    PRIMARY KEY,
  size       INTEGER NOT NULL CHECK (size >= 0),
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- A blob is readable from a repository only when linked there, like
-- distribution's _layers links: a digest alone is no key to another's content.
CREATE TABLE blob_link (
  repository_id INTEGER NOT NULL REFERENCES repository (id) ON DELETE CASCADE,
  -- Deleting a blob (garbage collection) takes its links with it.
  digest        TEXT    NOT NULL REFERENCES blob (digest) ON DELETE CASCADE,
  -- The garbage collector's grace period counts from the newest link.
  linked_at     INTEGER NOT NULL,
  PRIMARY KEY (repository_id, digest)
) WITHOUT ROWID;

-- Unlinking a blob everywhere (gc) finds its links without a scan.
CREATE INDEX blob_link_by_digest ON blob_link (digest);

-- The config and layers a manifest references. No foreign key to blob: the
-- store records references whether or not their targets are present.
CREATE TABLE manifest_blob (
  manifest_id INTEGER NOT NULL REFERENCES manifest (id) ON DELETE CASCADE,
  digest      TEXT    NOT NULL,
  PRIMARY KEY (manifest_id, digest)
) WITHOUT ROWID;

-- "Is this blob still referenced?" for the garbage collector, without a scan.
CREATE INDEX manifest_blob_by_digest ON manifest_blob (digest);

-- The child manifests an index or manifest list references, by digest, in the
-- parent's repository. A present child is protected from deletion while a
-- parent names it.
CREATE TABLE manifest_child (
  -- Copied from the parent so that the protection check is one index probe.
  repository_id INTEGER NOT NULL,
  parent_id     INTEGER NOT NULL REFERENCES manifest (id) ON DELETE CASCADE,
  digest        TEXT    NOT NULL,
  PRIMARY KEY (parent_id, digest)
) WITHOUT ROWID;

-- "Does any index in this repository list this digest?" (deleteManifest, gc).
CREATE INDEX manifest_child_by_digest ON manifest_child (repository_id, digest);

-- The event log. Rows are written in the same transaction as the change they
-- describe, so the log and the state never disagree.
CREATE TABLE event (
  -- AUTOINCREMENT: a sequence number is never reused, even after pruning, so
  -- subscribers and page cursors can rely on it as commit order.
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,
  -- A UUIDv7: time-ordered, so its unique index grows at the end instead of
  -- splitting random pages as the log grows.
  id              TEXT    NOT NULL UNIQUE,
  -- Never decreases with seq (the store clamps it to the newest before it),
  -- so "newest first" by time is also reverse commit order.
  published_at    INTEGER NOT NULL,
  actor           TEXT    NOT NULL,
  -- PULL: a batch of pulls of one manifest (by one tag), written only when
  -- pull events are on, one per flush, so a pull storm is a few rows.
  type            TEXT    NOT NULL CHECK (type IN ('CREATE', 'UPDATE', 'DELETE', 'PULL')),
  object_type     TEXT    NOT NULL CHECK (object_type IN ('REPOSITORY', 'TAG', 'MANIFEST', 'BLOB')),
  object_id       TEXT    NOT NULL,
  repository      TEXT,
  tag             TEXT,
  digest          TEXT,
  previous_digest TEXT,
  -- A PULL event's number of pulls.
  count           INTEGER CHECK (count > 0),
  -- Why, when the change was not simply asked for: the retention rule that
  -- removed it, an admin's override of an immutable tag.
  reason          TEXT
);

-- getEvents pages newest first by (published_at, seq); an index on
-- published_at ends in the rowid, which is seq, so it serves both the order
-- and the publishedBefore/After range.
CREATE INDEX event_by_time ON event (published_at);
-- A user's own events (the default query of a non-admin) in time order.
CREATE INDEX event_by_actor ON event (actor, published_at);
-- The events of one repository in time order.
CREATE INDEX event_by_repository ON event (repository, published_at) WHERE repository IS NOT NULL;

-- Webhook delivery (regmeta serve --notify): where each endpoint has got to in
-- the event log, so that delivery resumes after a restart or a crash instead
-- of losing what was in flight (distribution keeps its queue in memory).
-- Added by version 2; src/store/migrations.ts holds the same table for
-- version-1 files.
CREATE TABLE notification_cursor (
  -- The endpoint's URL, as configured: one cursor per receiver.
  endpoint        TEXT    PRIMARY KEY CHECK (length(endpoint) BETWEEN 1 AND 2048),
  -- The seq of the last event delivered (acknowledged with a 2xx); events
  -- after it are the backlog. No foreign key: the event it names may be pruned.
  seq             INTEGER NOT NULL CHECK (seq >= 0),
  -- That event's time and id, for status output (NULL while nothing was delivered
  -- and the log was empty when the endpoint was first configured).
  published_at    INTEGER,
  event_id        TEXT,
  -- When the endpoint was first configured: it starts at the log's newest event then.
  created_at      INTEGER NOT NULL,
  -- The last 2xx from the endpoint.
  delivered_at    INTEGER,
  -- Failed attempts since the last success: what the backoff grows with.
  failures        INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
  -- The last failure's message and time, kept after a success for the operator.
  last_error      TEXT,
  last_failure_at INTEGER,
  -- Events pruned before the endpoint acknowledged them (its receiver was
  -- down longer than the log keeps events), over every gap: reported, never
  -- silently skipped. Added by version 7.
  missed          INTEGER NOT NULL DEFAULT 0 CHECK (missed >= 0),
  -- The seqs of the latest such gap, inclusive, and when delivery stepped over it.
  missed_from     INTEGER,
  missed_to       INTEGER,
  missed_at       INTEGER
) WITHOUT ROWID;

-- Blob upload sessions, so that a chunked upload survives a restart and its
-- requests may land on any process sharing this file (distribution keeps them
-- as files with their hash state; regmeta keeps the bookkeeping here and the
-- bytes in <data>/uploads/<id>). Added by version 3; src/store/migrations.ts
-- holds the same table for older files.
CREATE TABLE upload_session (
  -- The server's UUID: the file's name under uploads/ and the id in the
  -- upload URL. Never a client's text.
  id          TEXT    PRIMARY KEY CHECK (length(id) = 36),
  -- The repository's name, not a reference to its row: a session may be
  -- opened for a repository that has no manifest or blob yet (POST to a new
  -- name), and deleting a repository must not wait for its uploads.
  repository  TEXT    NOT NULL CHECK (length(repository) BETWEEN 1 AND 255),
  -- The client address that opened it, for the per-address cap.
  client      TEXT    NOT NULL CHECK (length(client) <= 255),
  -- Bytes committed: the truth. The file may hold more after a crash
  -- mid-chunk; the next writer cuts it back to this.
  size        INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0),
  started_at  INTEGER NOT NULL,
  -- The last claim or commit: a session idle past the TTL since then expires.
  updated_at  INTEGER NOT NULL,
  -- The exclusive claim of the one writer appending now (a token of its
  -- request) and when it runs out: a writer that dies leaves a claim that
  -- expires. Both set or both NULL. Then the claiming process (boot id, pid
  -- namespace, pid, start time; NULL where /proc does not tell, added by
  -- version 4): a process on the same machine that finds it exited takes
  -- the claim at once, without waiting out the lease.
  owner       TEXT,
  lease_until INTEGER, holder TEXT,
  CHECK ((owner IS NULL) = (lease_until IS NULL))
) WITHOUT ROWID;

-- The per-address cap counts a client's sessions without a scan.
CREATE INDEX upload_session_by_client ON upload_session (client);
-- The sweeper finds the sessions idle past the TTL without a scan.
CREATE INDEX upload_session_by_time ON upload_session (updated_at);

-- The lock on a digest that a blob's file is placed and removed under
-- (linkBlob's place, whileBlobUnknown's fn, collectBlob's removeFile) when
-- the action awaits (an object store's request) and so runs outside any
-- transaction: held across the awaits, by any process on the file. An action
-- that finishes at once runs inside the write transaction, whose lock is
-- enough, and writes no row. A row lives only while its action runs
-- (version 5). WITHOUT ROWID: it is only ever found by its digest.
CREATE TABLE blob_lock (
  -- One row per digest: the key is what makes the lock exclusive.
  digest      TEXT    PRIMARY KEY,
  -- A random token per acquisition: only it renews, finishes or releases the
  -- lock, so an action whose lease was taken over cannot commit.
  owner       TEXT    NOT NULL CHECK (length(owner) = 36),
  -- The holding process, as upload_session.holder (NULL where /proc does not
  -- tell): one found exited on this machine loses the lock at once.
  holder      TEXT,
  -- The lease, renewed while the action runs: a holder that died where this
  -- machine cannot see blocks the digest at most this long.
  lease_until INTEGER NOT NULL
) WITHOUT ROWID;

-- Storage sizes, kept current by the triggers below on every path that links
-- or unlinks a blob, or deletes a blob or a repository (foreign-key cascades
-- included), so that usage, quotas and metrics read a few rows instead of
-- scanning the links. A blob counts once per repository that links it, once
-- per namespace (a name's first path component) whatever the number of its
-- repositories that link it, and once in the registry. Manifests' own bytes
-- are not counted: they are not blobs. Added by version 7.

-- The registry's total: the blobs it holds, each once. One row.
CREATE TABLE registry_usage (
  -- The one row's key: a second row cannot be inserted.
  id    INTEGER PRIMARY KEY CHECK (id = 1),
  blobs INTEGER NOT NULL CHECK (blobs >= 0),
  size  INTEGER NOT NULL CHECK (size >= 0)
);

-- A namespace: what a quota applies to. A row exists from its first
-- repository on and is kept when the last goes (a namespace is a handful of
-- rows, and a quota check finds it to lock).
CREATE TABLE namespace (
  name         TEXT    PRIMARY KEY,
  -- How many repositories it has: usage lists it without a scan of the names.
  repositories INTEGER NOT NULL DEFAULT 0 CHECK (repositories >= 0),
  -- The bytes of the blobs linked in any of its repositories, each once.
  size         INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0)
) WITHOUT ROWID;

-- The blobs a namespace holds, with how many of its repositories link each:
-- a link counts the blob's bytes only when it is the namespace's first, an
-- unlink takes them away only at its last, and a quota check knows a blob
-- the namespace already has (which costs nothing) in one probe.
CREATE TABLE namespace_blob (
  namespace TEXT    NOT NULL,
  digest    TEXT    NOT NULL,
  -- The blob's size, copied: an unlink by a blob's own deletion (gc's
  -- cascade) no longer finds the blob's row.
  size      INTEGER NOT NULL CHECK (size >= 0),
  -- A row whose count reaches 0 is deleted in the same trigger.
  links     INTEGER NOT NULL CHECK (links >= 0),
  -- Also the index of "does the namespace have this blob?".
  PRIMARY KEY (namespace, digest)
) WITHOUT ROWID;

-- A repository's bytes, each blob linked in it once. Apart from the
-- repository row, which every call reads: a counter updated on each link
-- would otherwise contend with the rows' readers and with deleteRepository.
CREATE TABLE repository_usage (
  -- Deleting a repository takes its row with it.
  repository_id INTEGER PRIMARY KEY REFERENCES repository (id) ON DELETE CASCADE,
  size          INTEGER NOT NULL CHECK (size >= 0)
);

-- The registry's total starts at nothing.
INSERT INTO registry_usage (id, blobs, size) VALUES (1, 0, 0);

-- A blob's row counts in the total once; it is never updated, only inserted and deleted.
CREATE TRIGGER blob_counted AFTER INSERT ON blob BEGIN
  UPDATE registry_usage SET blobs = blobs + 1, size = size + NEW.size WHERE id = 1;
END;
CREATE TRIGGER blob_uncounted AFTER DELETE ON blob BEGIN
  UPDATE registry_usage SET blobs = max(blobs - 1, 0), size = max(size - OLD.size, 0) WHERE id = 1;
END;

-- A repository counts in its namespace (the name's first path component),
-- created by its first repository.
CREATE TRIGGER repository_counted AFTER INSERT ON repository BEGIN
  INSERT INTO namespace (name, repositories)
  VALUES (CASE instr(NEW.name, '/') WHEN 0 THEN NEW.name ELSE substr(NEW.name, 1, instr(NEW.name, '/') - 1) END, 1)
  ON CONFLICT (name) DO UPDATE SET repositories = repositories + 1;
END;

-- Before its row goes, a repository's links are deleted (their trigger
-- uncounts each while the repository's name still tells its namespace; the
-- cascade then finds none), and it stops counting in its namespace.
CREATE TRIGGER repository_uncounted BEFORE DELETE ON repository BEGIN
  DELETE FROM blob_link WHERE repository_id = OLD.id;
  UPDATE namespace SET repositories = max(repositories - 1, 0)
  WHERE name = CASE instr(OLD.name, '/') WHEN 0 THEN OLD.name ELSE substr(OLD.name, 1, instr(OLD.name, '/') - 1) END;
END;

-- A new link (not a refresh of one: an upsert's update is no insert) counts
-- the blob in its repository, and in its namespace when it is the first there.
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

-- A link deleted (unlinkBlob, a blob's deletion, a repository's) uncounts
-- the blob from its repository, and from its namespace at its last link
-- there. The size is the namespace_blob row's: a blob being deleted has no row.
-- Kept sizes that drifted (a row missing) never fail a delete: an uncount
-- takes nothing for a missing row and stops at 0; check() reports the drift.
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
-- tagDetails' sorts by time (version 7): a page by push time walks a
-- repository's manifests in push order (then their tags, by name), a page by
-- pull time its tags in pull order, name breaking ties; a tag never pulled
-- sorts as pulled at 0. Each page is a seek and a short walk, never a sort
-- of the whole repository.
CREATE INDEX manifest_by_push ON manifest (repository_id, pushed_at);
CREATE INDEX tag_by_pull ON tag (repository_id, coalesce(pulled_at, 0), name);
-- The event log's pruned horizon (regmeta events prune, serve's events.keep),
-- one row: the log holds only events after it, and a webhook cursor below it
-- has missed events. Seqs stay above it: AUTOINCREMENT never reuses one.
-- Added by version 7.
CREATE TABLE event_horizon (
  -- One row, which the check keeps so.
  id           INTEGER PRIMARY KEY CHECK (id = 1),
  -- The highest seq pruned; 0 while none was.
  seq          INTEGER NOT NULL CHECK (seq >= 0),
  -- That event's published_at: the log is complete after this time.
  published_at INTEGER,
  -- When a prune last deleted events.
  pruned_at    INTEGER
);
INSERT INTO event_horizon (id, seq) VALUES (1, 0);

-- The leases of scheduled jobs (serve's maintenance), so that of several
-- processes or replicas on the store one at a time runs a job: the holder
-- renews its lease while it runs; one that dies loses it when it runs out.
-- Added by version 7. WITHOUT ROWID: only ever found by its name.
CREATE TABLE job_lease (
  -- The job: one lease each.
  name        TEXT    PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 100),
  -- Who holds it: an id the holder chose (a server's instance).
  holder      TEXT    NOT NULL CHECK (length(holder) BETWEEN 1 AND 255),
  -- Until when (ms since the epoch); after it, anyone may take it.
  lease_until INTEGER NOT NULL,
  -- When this holder took it (kept across renewals): how long it has held it.
  taken_at    INTEGER NOT NULL
) WITHOUT ROWID;

PRAGMA user_version = 7;
