-- regmeta schema for PostgreSQL, version 5: the same tables, constraints and
-- indexes as schema.sql (the SQLite store's), for the PostgreSQL backend
-- (regmeta/postgres) that several registry replicas share.
--
-- A new database runs this file whole, in one transaction under a
-- transaction-level advisory lock (src/store/postgres/migrate.ts), so that of
-- several replicas starting at once exactly one creates the schema and the
-- others see all of it or wait. The version lives in regmeta_schema, which the
-- code reads on every open and refuses when it is newer than it knows.
--
-- Conventions, as in schema.sql: times are bigint milliseconds since the Unix
-- epoch (what JavaScript's Date holds); names, tags and digests are text with
-- the "C" collation, byte order, which is the order distribution's tag and
-- catalog listings use (Go's sort.Strings) whatever the database's locale.

-- The schema version this database is at; one row. Its presence also marks the
-- database as regmeta's, so that another program's tables are never altered.
CREATE TABLE regmeta_schema (
  -- The one row's key: a second row cannot be inserted.
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  version   integer NOT NULL CHECK (version >= 1)
);

-- A repository exists from its first manifest or blob link; its integer id
-- keeps the tables that hang off it narrow.
CREATE TABLE repository (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- UNIQUE is also the index that resolves a name to its id on every call,
  -- and the conflict target that lets concurrent first pushes create it once.
  name       text COLLATE "C" NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 255),
  created_at bigint NOT NULL,
  -- The last pull of a mirror's cached repository (NULL: never pulled since
  -- it was cached), written in batches by the replicas (recordPulls): what
  -- regmeta gc's eviction by idleness and by size budget orders by. No
  -- index: gc reads one namespace through the name's index and orders its
  -- few rows itself. Added by version 4.
  pulled_at  bigint
);

-- Manifests belong to one repository: the same digest pushed to two
-- repositories is two rows, so that one repository can never read, list or
-- delete another's.
CREATE TABLE manifest (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- Deleting a repository takes its manifests with it.
  repository_id bigint NOT NULL REFERENCES repository (id) ON DELETE CASCADE,
  digest        text COLLATE "C" NOT NULL,
  media_type    text NOT NULL,
  -- What a referrers response reports: artifactType, else the config's media type.
  artifact_type text,
  -- The manifest's annotations as JSON text (not jsonb: copied out verbatim).
  annotations   text,
  -- The digest of the OCI 1.1 subject; text because the subject may be pushed
  -- after its referrers.
  subject       text COLLATE "C",
  -- The length of the payload, so that HEAD and tag reads never touch the bytes.
  size          bigint NOT NULL CHECK (size >= 0),
  created_at    bigint NOT NULL,
  -- The last push of these bytes: the garbage collector's grace period counts from it.
  pushed_at     bigint NOT NULL,
  -- One row per digest per repository: the index of every by-digest read, and
  -- the conflict target of a push that races another of the same manifest.
  UNIQUE (repository_id, digest),
  -- The last pull and the number of pulls (GETs) of these bytes here,
  -- written in batches by the server (recordPulls), never per pull: what
  -- tag details show and retention's pulledWithin reads. Added by version 5.
  pulled_at     bigint,
  pull_count    bigint NOT NULL DEFAULT 0 CHECK (pull_count >= 0)
);

-- The exact bytes as pushed, apart from the manifest row, so that the rows
-- every tag read and HEAD visit stay small (PostgreSQL TOASTs large values).
CREATE TABLE manifest_payload (
  manifest_id bigint PRIMARY KEY REFERENCES manifest (id) ON DELETE CASCADE,
  payload     bytea NOT NULL
);

-- Referrers of a digest within a repository, without a scan of manifests.
CREATE INDEX manifest_by_subject ON manifest (repository_id, subject) WHERE subject IS NOT NULL;

-- A tag names one manifest of its repository. Deleted tags are deleted rows.
CREATE TABLE tag (
  repository_id bigint NOT NULL REFERENCES repository (id) ON DELETE CASCADE,
  name          text COLLATE "C" NOT NULL,
  -- No ON DELETE: deleteManifest removes the tags itself, writing an event for
  -- each; the foreign key makes forgetting to do so an error, and makes a tag
  -- write lock the manifest row against a concurrent delete.
  manifest_id   bigint NOT NULL REFERENCES manifest (id),
  created_at    bigint NOT NULL,
  updated_at    bigint NOT NULL,
  -- The (repository, name) index that getTag and the paginated list walk in
  -- byte order; also the row a tag move locks.
  PRIMARY KEY (repository_id, name),
  -- The last pull by this tag (a GET or HEAD by tag) and the GETs by it,
  -- written in batches as the manifest's are. Added by version 5.
  pulled_at     bigint,
  pull_count    bigint NOT NULL DEFAULT 0 CHECK (pull_count >= 0)
);

-- lookupTags and deleteManifest find the tags of a manifest through this
-- index, already sorted by name, never by a scan of all tags.
CREATE INDEX tag_by_manifest ON tag (manifest_id, name);

-- Every target a tag has had. Digests are text: the manifests may be long gone.
CREATE TABLE tag_history (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  repository_id bigint NOT NULL REFERENCES repository (id) ON DELETE CASCADE,
  tag           text COLLATE "C" NOT NULL,
  digest        text COLLATE "C" NOT NULL,
  tagged_at     bigint NOT NULL
);

-- The history of one tag, newest first.
CREATE INDEX tag_history_by_tag ON tag_history (repository_id, tag, id);

-- Blobs the registry holds, once each, whatever repositories link them. The
-- row is also the lock that every replica honours around a blob's file.
CREATE TABLE blob (
  digest     text COLLATE "C" PRIMARY KEY,
  size       bigint NOT NULL CHECK (size >= 0),
  created_at bigint NOT NULL
);

-- A blob is readable from a repository only when linked there: a digest alone
-- is no key to another repository's content.
CREATE TABLE blob_link (
  repository_id bigint NOT NULL REFERENCES repository (id) ON DELETE CASCADE,
  -- Deleting a blob (garbage collection) takes its links with it.
  digest        text COLLATE "C" NOT NULL REFERENCES blob (digest) ON DELETE CASCADE,
  -- The garbage collector's grace period counts from the newest link.
  linked_at     bigint NOT NULL,
  PRIMARY KEY (repository_id, digest)
);

-- Unlinking a blob everywhere (gc) finds its links without a scan.
CREATE INDEX blob_link_by_digest ON blob_link (digest);

-- The config and layers a manifest references. No foreign key to blob: the
-- store records references whether or not their targets are present.
CREATE TABLE manifest_blob (
  manifest_id bigint NOT NULL REFERENCES manifest (id) ON DELETE CASCADE,
  digest      text COLLATE "C" NOT NULL,
  PRIMARY KEY (manifest_id, digest)
);

-- "Is this blob still referenced?" for the garbage collector, without a scan.
CREATE INDEX manifest_blob_by_digest ON manifest_blob (digest);

-- The child manifests an index references, by digest, in the parent's
-- repository. A present child is protected from deletion while a parent names it.
CREATE TABLE manifest_child (
  -- Copied from the parent so that the protection check is one index probe.
  repository_id bigint NOT NULL,
  parent_id     bigint NOT NULL REFERENCES manifest (id) ON DELETE CASCADE,
  digest        text COLLATE "C" NOT NULL,
  PRIMARY KEY (parent_id, digest)
);

-- "Does any index in this repository list this digest?" (deleteManifest, gc).
CREATE INDEX manifest_child_by_digest ON manifest_child (repository_id, digest);

-- The event log. Rows are written in the same transaction as the change they
-- describe, so the log and the state never disagree.
CREATE TABLE event (
  -- Commit order: taken from event_head under its row lock, which the
  -- transaction holds until it commits, so a higher seq never becomes visible
  -- before a lower one (see event_head). Never reused.
  seq             bigint PRIMARY KEY,
  -- A UUIDv7: time-ordered, so its unique index grows at the end.
  id              text COLLATE "C" NOT NULL UNIQUE,
  -- Never decreases with seq (clamped to event_head's), so "newest first" by
  -- time is also reverse commit order.
  published_at    bigint NOT NULL,
  actor           text NOT NULL,
  -- PULL: a batch of pulls of one manifest (by one tag), written only when
  -- pull events are on, one per flush, so a pull storm is a few rows.
  type            text NOT NULL CONSTRAINT event_type_check CHECK (type IN ('CREATE', 'UPDATE', 'DELETE', 'PULL')),
  object_type     text NOT NULL CHECK (object_type IN ('REPOSITORY', 'TAG', 'MANIFEST', 'BLOB')),
  object_id       text NOT NULL,
  repository      text COLLATE "C",
  tag             text COLLATE "C",
  digest          text COLLATE "C",
  previous_digest text COLLATE "C",
  -- A PULL event's number of pulls.
  count           bigint CHECK (count > 0),
  -- Why, when the change was not simply asked for: the retention rule that
  -- removed it, an admin's override of an immutable tag.
  reason          text
);

-- getEvents pages newest first by (published_at, seq), with the
-- publishedBefore/After range; seq is spelled out (SQLite's rowid is implicit).
CREATE INDEX event_by_time ON event (published_at, seq);
-- A user's own events (the default query of a non-admin) in time order.
CREATE INDEX event_by_actor ON event (actor, published_at, seq);
-- The events of one repository in time order.
CREATE INDEX event_by_repository ON event (repository, published_at, seq) WHERE repository IS NOT NULL;

-- The head of the event log, one row: the last seq handed out and the newest
-- published_at. A transaction that writes events updates this row last, just
-- before it commits, and holds its lock until then: event-writing commits are
-- serialized at their tail, so seq order is commit order and a subscriber
-- reading `seq > last` can never skip an event that commits late (the trap of
-- a plain sequence, whose numbers are taken before commit in any order).
CREATE TABLE event_head (
  singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  seq          bigint NOT NULL CHECK (seq >= 0),
  published_at bigint NOT NULL
);
INSERT INTO event_head (seq, published_at) VALUES (0, 0);

-- Webhook delivery: where each endpoint has got to in the event log, so that
-- delivery resumes after a restart or a crash of any replica.
CREATE TABLE notification_cursor (
  -- The endpoint's URL, as configured: one cursor per receiver.
  endpoint        text COLLATE "C" PRIMARY KEY CHECK (length(endpoint) BETWEEN 1 AND 2048),
  -- The seq of the last event delivered. No foreign key: the event may be pruned.
  seq             bigint NOT NULL CHECK (seq >= 0),
  -- That event's time and id, for status output.
  published_at    bigint,
  event_id        text,
  -- When the endpoint was first configured: it starts at the log's newest event then.
  created_at      bigint NOT NULL,
  -- The last 2xx from the endpoint.
  delivered_at    bigint,
  -- Failed attempts since the last success: what the backoff grows with.
  failures        integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
  -- The last failure's message and time, kept after a success for the operator.
  last_error      text,
  last_failure_at bigint
);

-- Blob upload sessions, shared by every replica: a chunked upload whose
-- requests land on different replicas completes, and a replica that restarts
-- loses none. The bytes are in the shared blob directory, uploads/<id>.
-- Added by version 2; src/store/postgres/migrate.ts holds the same table for
-- version-1 databases.
CREATE TABLE upload_session (
  -- The server's UUID: the file's name under uploads/ and the id in the
  -- upload URL. Never a client's text.
  id          text COLLATE "C" PRIMARY KEY CHECK (length(id) = 36),
  -- The repository's name, not a reference to its row: a session may be
  -- opened for a repository that does not exist yet (POST to a new name),
  -- and deleting a repository must not wait for its uploads.
  repository  text COLLATE "C" NOT NULL CHECK (length(repository) BETWEEN 1 AND 255),
  -- The client address that opened it, for the per-address cap.
  client      text NOT NULL CHECK (length(client) <= 255),
  -- Bytes committed: the truth. The file may hold more after a crash
  -- mid-chunk; the next writer cuts it back to this.
  size        bigint NOT NULL DEFAULT 0 CHECK (size >= 0),
  started_at  bigint NOT NULL,
  -- The last claim or commit: a session idle past the TTL since then expires.
  updated_at  bigint NOT NULL,
  -- The exclusive claim of the one writer appending now, on whichever
  -- replica (a token of its request), and when it runs out: a replica that
  -- dies leaves a claim that expires. Both set or both NULL.
  owner       text,
  lease_until bigint,
  -- The backend pid of the claiming replica's holder connection, which
  -- holds a session advisory lock on its own pid while it lives: a claim
  -- whose holder's lock is gone (the replica died, its connection with it)
  -- is anyone's at once, without waiting out the lease. Added by version 3.
  holder      integer,
  CHECK ((owner IS NULL) = (lease_until IS NULL))
);

-- The per-address cap counts a client's sessions without a scan.
CREATE INDEX upload_session_by_client ON upload_session (client);
-- The sweeper finds the sessions idle past the TTL without a scan.
CREATE INDEX upload_session_by_time ON upload_session (updated_at);

-- tagDetails' sorts by time (version 5): a page by push time walks a
-- repository's manifests in push order (then their tags, by name), a page by
-- pull time its tags in pull order, name breaking ties; a tag never pulled
-- sorts as pulled at 0. Each page is a seek and a short walk, never a sort
-- of the whole repository.
CREATE INDEX manifest_by_push ON manifest (repository_id, pushed_at);
CREATE INDEX tag_by_pull ON tag (repository_id, (coalesce(pulled_at, 0)), name);

INSERT INTO regmeta_schema (version) VALUES (5);
