// Builders for the store's tests: manifests, indexes and digests as a registry
// would receive them, temporary store files, a raw dump of a database for
// "nothing changed" assertions, and their asynchronous counterparts for the
// contract suite (test/store/contract/), which reaches every backend through
// Store only.

import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'vitest';
import { openStore, MediaType, StoreError, type Descriptor, type MetadataStore, type StoreOptions } from 'regmeta';
import type { Store, Event, NewEvent } from 'regmeta';

export { MediaType };

/** The digest of `data` (a string is hashed as UTF-8). */
export function digestOf(data: Uint8Array | string, algorithm: 'sha256' | 'sha512' = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** A digest that names some made-up blob; `seed` keeps it deterministic. */
export function blobDigest(seed: string): string {
  return digestOf(`blob ${seed}`);
}

/** A descriptor as it appears inside a manifest. */
export type Desc = Descriptor;

/** A manifest ready to put: its bytes, media type, digest and size. */
export interface Built {
  mediaType: string;
  payload: Buffer;
  digest: string;
  size: number;
  /** The manifest as a descriptor, to list in an index or name as a subject. */
  descriptor: Desc;
}

/** Wraps exact bytes as a manifest; `algorithm` picks the digest. */
export function built(mediaType: string, payload: Buffer | string, algorithm: 'sha256' | 'sha512' = 'sha256'): Built {
  const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const digest = digestOf(bytes, algorithm);
  return { mediaType, payload: bytes, digest, size: bytes.byteLength, descriptor: { mediaType, digest, size: bytes.byteLength } };
}

/** A layer or config descriptor for blob `seed`. */
export function blobDesc(seed: string, mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip', size = 1000): Desc {
  return { mediaType, digest: blobDigest(seed), size };
}

export interface ImageOptions {
  /** Varies the config so that two calls give two manifests. */
  seed?: string;
  config?: Desc;
  layers?: Desc[];
  subject?: Desc;
  artifactType?: string;
  annotations?: Record<string, string>;
  /** Leave `mediaType` out of the payload (OCI allows it). */
  omitMediaType?: boolean;
  /** Write this `mediaType` into the payload instead of the right one. */
  payloadMediaType?: string;
}

function image(mediaType: string, configType: string, layerType: string, o: ImageOptions): Built {
  const seed = o.seed ?? 'image';
  const json: Record<string, unknown> = { schemaVersion: 2 };
  if (!o.omitMediaType) json.mediaType = o.payloadMediaType ?? mediaType;
  if (o.artifactType !== undefined) json.artifactType = o.artifactType;
  json.config = o.config ?? blobDesc(`${seed}/config`, configType, 500);
  json.layers = o.layers ?? [blobDesc(`${seed}/layer`, layerType)];
  if (o.subject !== undefined) json.subject = o.subject;
  if (o.annotations !== undefined) json.annotations = o.annotations;
  return built(mediaType, JSON.stringify(json));
}

/** An OCI image manifest (or, with a custom config type or artifactType, an artifact). */
export function ociManifest(o: ImageOptions = {}): Built {
  return image(MediaType.OciManifest, 'application/vnd.oci.image.config.v1+json', 'application/vnd.oci.image.layer.v1.tar+gzip', o);
}

/** A Docker schema 2 image manifest. */
export function dockerManifest(o: ImageOptions = {}): Built {
  return image(
    MediaType.DockerManifest,
    'application/vnd.docker.container.image.v1+json',
    'application/vnd.docker.image.rootfs.diff.tar.gzip',
    o,
  );
}

export interface IndexOptions {
  subject?: Desc;
  artifactType?: string;
  annotations?: Record<string, string>;
  omitMediaType?: boolean;
}

function index(mediaType: string, children: Desc[], o: IndexOptions): Built {
  const json: Record<string, unknown> = { schemaVersion: 2 };
  if (!o.omitMediaType) json.mediaType = mediaType;
  if (o.artifactType !== undefined) json.artifactType = o.artifactType;
  json.manifests = children.map((child, i) => ({ ...child, platform: child.platform ?? { architecture: `arch${i}`, os: 'linux' } }));
  if (o.subject !== undefined) json.subject = o.subject;
  if (o.annotations !== undefined) json.annotations = o.annotations;
  return built(mediaType, JSON.stringify(json));
}

/** An OCI image index listing `children`. */
export function ociIndex(children: Desc[], o: IndexOptions = {}): Built {
  return index(MediaType.OciIndex, children, o);
}

/** A Docker manifest list listing `children`. */
export function dockerList(children: Desc[], o: IndexOptions = {}): Built {
  return index(MediaType.DockerManifestList, children, o);
}

/** A descriptor of a manifest that is not in the store (for index children or subjects). */
export function absentManifest(seed: string): Desc {
  return { mediaType: MediaType.OciManifest, digest: digestOf(`absent manifest ${seed}`), size: 123 };
}

/** A temporary directory, removed by the returned function. */
export function tempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'regmeta-test-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A store on a new file in a temp dir; `cleanup` closes it and removes the dir. */
export function tempStore(options?: StoreOptions): { store: MetadataStore; file: string; dir: string; cleanup: () => void } {
  const { dir, remove } = tempDir();
  const file = join(dir, 'metadata.db');
  const store = openStore(file, options);
  return {
    store,
    file,
    dir,
    cleanup: () => {
      store.close();
      remove();
    },
  };
}

/**
 * Every row of every table of the file, read through a separate raw
 * connection: two dumps are equal when the database did not change.
 */
export function dump(file: string): Record<string, unknown[]> {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const tables = db
      .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
      .pluck()
      .all() as string[];
    const out: Record<string, unknown[]> = {};
    // Table names come from sqlite_schema itself, quoted as identifiers.
    for (const table of tables) out[table] = db.prepare(`SELECT * FROM "${table.replaceAll('"', '""')}"`).all();
    out['pragma:user_version'] = [db.pragma('user_version', { simple: true })];
    return out;
  } finally {
    db.close();
  }
}

/** The StoreError `fn` throws; fails the test when it throws nothing or something else. */
export function caught(fn: () => unknown): StoreError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(StoreError);
    return error as StoreError;
  }
  throw new Error('expected a StoreError, nothing was thrown');
}

/** Puts a built manifest into `repo` and returns it, for chaining in tests. */
export function putBuilt(store: MetadataStore, repo: string, m: Built): Built {
  store.putManifest(repo, m.digest, m);
  return m;
}

/** Puts a built manifest into `repo` of an Store and returns it, for chaining in tests. */
export async function putBuiltAsync(store: Store, repo: string, m: Built, actor?: string): Promise<Built> {
  await store.putManifest(repo, m.digest, m, actor === undefined ? undefined : { actor });
  return m;
}

/** The StoreError `pending` rejects with; fails the test when it fulfils or rejects with something else. */
export async function rejection(pending: Promise<unknown>): Promise<StoreError> {
  try {
    await pending;
  } catch (error) {
    expect(error).toBeInstanceOf(StoreError);
    return error as StoreError;
  }
  throw new Error('expected a StoreError, the promise fulfilled');
}

/** The code of the StoreError `pending` rejects with (as rejection). */
export async function codeOf(pending: Promise<unknown>): Promise<string> {
  return (await rejection(pending)).code;
}

/** Every event of an Store, oldest first, read through getEvents as an admin, page by page. */
export async function eventsOf(store: Store): Promise<Event[]> {
  const events: Event[] = [];
  let page: string | undefined;
  do {
    const result = await store.getEvents({ perPage: 1000, page });
    events.push(...result.events);
    page = result.next;
  } while (page !== undefined);
  return events.reverse();
}

/** A DELETE BLOB event as the garbage collector writes it, for blob `seed`. */
export function gcEvent(seed: string, actor = 'GARBAGE_COLLECTOR'): NewEvent {
  const digest = blobDigest(seed);
  return { actor, type: 'DELETE', object: { type: 'BLOB', id: digest }, digest };
}

/** Waits (spinning: a millisecond is all it takes) until Date.now() has moved past `t`. */
export function tickPast(t: number): void {
  while (Date.now() <= t) {
    // Spin until the clock moves.
  }
}

const FAR_FUTURE = new Date(8.64e15);

/**
 * Everything an Store reports through its public API: repositories with
 * their tags, tag histories and blob links, webhook cursors, every blob,
 * every event, the counts, and what the garbage collector would find. Two snapshots are equal
 * when no call changed the store, on any backend: the contract suite's
 * stand-in for a raw dump of the database.
 */
export async function snapshot(store: Store): Promise<Record<string, unknown>> {
  const blobs = await store.allBlobs();
  const repositories: Record<string, unknown> = {};
  for (const repo of await store.catalog()) {
    const tags = await store.tagDescriptors(repo);
    const history = await Promise.all(tags.map(({ tag }) => store.tagHistory(repo, tag)));
    const links = await Promise.all(blobs.map(({ digest }) => store.statBlob(repo, digest).catch((error: StoreError) => error.code)));
    repositories[repo] = { tags, history, links };
  }
  const { counts } = await store.stats();
  return {
    repositories,
    notifications: await store.notifications.status(),
    blobs,
    events: await eventsOf(store),
    counts,
    untagged: await store.untaggedManifests({ olderThan: FAR_FUTURE }),
    unreferenced: await store.unreferencedBlobs({ olderThan: FAR_FUTURE }),
  };
}

/**
 * What schema version 7 added, undone on a new file: with the steps of older
 * tests after it, a file as an older regmeta wrote it. Whoever adds to
 * version 7 undoes it here too.
 */
export const UNDO_7 = `
DROP INDEX manifest_by_push;
DROP INDEX tag_by_pull;
ALTER TABLE manifest DROP COLUMN pulled_at;
ALTER TABLE manifest DROP COLUMN pull_count;
ALTER TABLE tag DROP COLUMN pulled_at;
ALTER TABLE tag DROP COLUMN pull_count;
CREATE TABLE event_v6 (
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,
  id              TEXT    NOT NULL UNIQUE,
  published_at    INTEGER NOT NULL,
  actor           TEXT    NOT NULL,
  type            TEXT    NOT NULL CHECK (type IN ('CREATE', 'UPDATE', 'DELETE')),
  object_type     TEXT    NOT NULL CHECK (object_type IN ('REPOSITORY', 'TAG', 'MANIFEST', 'BLOB')),
  object_id       TEXT    NOT NULL,
  repository      TEXT,
  tag             TEXT,
  digest          TEXT,
  previous_digest TEXT
);
INSERT INTO event_v6 SELECT seq, id, published_at, actor, type, object_type, object_id, repository, tag, digest, previous_digest FROM event;
INSERT INTO sqlite_sequence (name, seq) SELECT 'event_v6', seq FROM sqlite_sequence WHERE name = 'event' AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'event_v6');
DROP TABLE event;
ALTER TABLE event_v6 RENAME TO event;
CREATE INDEX event_by_time ON event (published_at);
CREATE INDEX event_by_actor ON event (actor, published_at);
CREATE INDEX event_by_repository ON event (repository, published_at) WHERE repository IS NOT NULL;
PRAGMA user_version = 6;
`;

/** What PostgreSQL schema version 5 added, undone (as UNDO_7 for SQLite). */
export const PG_UNDO_5 = `
DROP INDEX manifest_by_push;
DROP INDEX tag_by_pull;
ALTER TABLE manifest DROP COLUMN pulled_at, DROP COLUMN pull_count;
ALTER TABLE tag DROP COLUMN pulled_at, DROP COLUMN pull_count;
ALTER TABLE event
  DROP COLUMN count,
  DROP COLUMN reason,
  DROP CONSTRAINT event_type_check,
  ADD CONSTRAINT event_type_check CHECK (type IN ('CREATE', 'UPDATE', 'DELETE'));
UPDATE regmeta_schema SET version = 4;
`;
