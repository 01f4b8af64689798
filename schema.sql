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
  -- The last pull by this tag (a GET or HEAD by tag) and the GETs by it,
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
  last_failure_at INTEGER
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

-- tagDetails' sorts by time (version 7): a page by push time walks a
-- repository's manifests in push order (then their tags, by name), a page by
-- pull time its tags in pull order, name breaking ties; a tag never pulled
-- sorts as pulled at 0. Each page is a seek and a short walk, never a sort
-- of the whole repository.
CREATE INDEX manifest_by_push ON manifest (repository_id, pushed_at);
CREATE INDEX tag_by_pull ON tag (repository_id, coalesce(pulled_at, 0), name);

PRAGMA user_version = 7;
