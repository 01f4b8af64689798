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
  -- The last pull by this tag and the pulls by it (GETs and HEADs by tag),
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
  last_failure_at bigint,
  -- Events pruned before the endpoint acknowledged them (its receiver was
  -- down longer than the log keeps events), over every gap: reported, never
  -- silently skipped. Added by version 5.
  missed          bigint NOT NULL DEFAULT 0 CHECK (missed >= 0),
  -- The seqs of the latest such gap, inclusive, and when delivery stepped over it.
  missed_from     bigint,
  missed_to       bigint,
  missed_at       bigint
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

-- Storage sizes, kept current by the triggers below on every path that links
-- or unlinks a blob, or deletes a blob or a repository (foreign-key cascades
-- included), so that usage, quotas and metrics read a few rows instead of
-- scanning the links. A blob counts once per repository that links it, once
-- per namespace (a name's first path component) whatever the number of its
-- repositories that link it, and once in the registry. Manifests' own bytes
-- are not counted: they are not blobs. Added by version 5.
--
-- Lock order, so that two writers never wait for each other in a cycle: a
-- repository's row first (a link's foreign key locks it KEY SHARE, a quota
-- check before it locks the namespace, deleteRepository FOR UPDATE before
-- its trigger reaches the namespace), then its namespace's row, before the
-- namespace_blob rows and the repository_usage rows (every trigger locks it
-- first), event_head next (the events, last before the commit),
-- registry_usage last (its trigger is deferred to the commit). The hot rows
-- are held only from the statement that changes them to the commit: linkBlob
-- places a blob's file before it locks any of them.

-- The registry's total: the blobs it holds, each once. One row.
CREATE TABLE registry_usage (
  -- The one row's key: a second row cannot be inserted.
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  blobs     bigint NOT NULL CHECK (blobs >= 0),
  size      bigint NOT NULL CHECK (size >= 0)
);

-- A namespace: what a quota applies to, and the row that serializes the
-- changes of its sizes. A row exists from its first repository on and is
-- kept when the last goes (a namespace is a handful of rows, and a quota
-- check finds it to lock).
CREATE TABLE namespace (
  name         text COLLATE "C" PRIMARY KEY,
  -- How many repositories it has: usage lists it without a scan of the names.
  repositories bigint NOT NULL DEFAULT 0 CHECK (repositories >= 0),
  -- The bytes of the blobs linked in any of its repositories, each once.
  size         bigint NOT NULL DEFAULT 0 CHECK (size >= 0)
);

-- The blobs a namespace holds, with how many of its repositories link each:
-- a link counts the blob's bytes only when it is the namespace's first, an
-- unlink takes them away only at its last, and a quota check knows a blob
-- the namespace already has (which costs nothing) in one probe.
CREATE TABLE namespace_blob (
  namespace text COLLATE "C" NOT NULL,
  digest    text COLLATE "C" NOT NULL,
  -- The blob's size, copied: an unlink by a blob's own deletion (gc's
  -- cascade) no longer finds the blob's row.
  size      bigint NOT NULL CHECK (size >= 0),
  -- A row whose count reaches 0 is deleted in the same trigger.
  links     bigint NOT NULL CHECK (links >= 0),
  -- Also the index of "does the namespace have this blob?".
  PRIMARY KEY (namespace, digest)
);

-- A repository's bytes, each blob linked in it once. Apart from the
-- repository row, which every call reads and deleteRepository locks: a
-- counter updated on each link would contend with both.
CREATE TABLE repository_usage (
  -- Deleting a repository takes its row with it.
  repository_id bigint PRIMARY KEY REFERENCES repository (id) ON DELETE CASCADE,
  size          bigint NOT NULL CHECK (size >= 0)
);

-- The registry's total starts at nothing.
INSERT INTO registry_usage (blobs, size) VALUES (0, 0);

-- A blob's row counts in the total once (it is never updated). Deferred to
-- the commit, so that the one hot row of the registry is locked last and
-- only for the commit itself.
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

-- A repository counts in its namespace (the name's first path component),
-- created by its first repository.
CREATE FUNCTION regmeta_repository_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO namespace (name, repositories) VALUES (split_part(NEW.name, '/', 1), 1)
  ON CONFLICT (name) DO UPDATE SET repositories = namespace.repositories + 1;
  RETURN NULL;
END $$;
CREATE TRIGGER repository_counted AFTER INSERT ON repository
  FOR EACH ROW EXECUTE FUNCTION regmeta_repository_counted();

-- Before its row goes, a repository's links are deleted (their trigger
-- uncounts each while the repository's name still tells its namespace; the
-- cascade then finds none), and it stops counting in its namespace.
CREATE FUNCTION regmeta_repository_uncounted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM blob_link WHERE repository_id = OLD.id;
  UPDATE namespace SET repositories = greatest(repositories - 1, 0) WHERE name = split_part(OLD.name, '/', 1);
  RETURN OLD;
END $$;
CREATE TRIGGER repository_uncounted BEFORE DELETE ON repository
  FOR EACH ROW EXECUTE FUNCTION regmeta_repository_uncounted();

-- A new link (not a refresh of one: an upsert's update is no insert) counts
-- the blob in its repository, and in its namespace when it is the first
-- there; a deleted one (unlinkBlob, a blob's deletion, a repository's)
-- uncounts it, from its namespace at its last link there. The namespace's
-- row is locked first (see the lock order above). Kept sizes that drifted
-- (a row missing) never fail a delete: an uncount takes nothing for a
-- missing row and stops at 0 (here and in the two triggers above); check()
-- reports the drift.
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
-- tagDetails' sorts by time (version 5): a page by push time walks a
-- repository's manifests in push order (then their tags, by name), a page by
-- pull time its tags in pull order, name breaking ties; a tag never pulled
-- sorts as pulled at 0. Each page is a seek and a short walk, never a sort
-- of the whole repository.
CREATE INDEX manifest_by_push ON manifest (repository_id, pushed_at);
CREATE INDEX tag_by_pull ON tag (repository_id, (coalesce(pulled_at, 0)), name);
-- The event log's pruned horizon (regmeta events prune, serve's events.keep),
-- one row: the log holds only events after it, and a webhook cursor below it
-- has missed events. Seqs stay above it: event_head never goes back.
-- Added by version 5.
CREATE TABLE event_horizon (
  -- One row, which the key and the check keep so.
  singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  -- The highest seq pruned; 0 while none was.
  seq          bigint NOT NULL CHECK (seq >= 0),
  -- That event's published_at: the log is complete after this time.
  published_at bigint,
  -- When a prune last deleted events.
  pruned_at    bigint
);
INSERT INTO event_horizon (seq) VALUES (0);

-- The leases of scheduled jobs (serve's maintenance), so that of several
-- replicas one at a time runs a job: the holder renews its lease while it
-- runs; one that dies loses it when it runs out (by the database's clock,
-- which the replicas share). Added by version 5.
CREATE TABLE job_lease (
  -- The job: one lease each.
  name        text COLLATE "C" PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 100),
  -- Who holds it: an id the holder chose (a server's instance).
  holder      text NOT NULL CHECK (length(holder) BETWEEN 1 AND 255),
  -- Until when (ms since the epoch); after it, anyone may take it.
  lease_until bigint NOT NULL,
  -- When this holder took it (kept across renewals): how long it has held it.
  taken_at    bigint NOT NULL
);

INSERT INTO regmeta_schema (version) VALUES (5);
