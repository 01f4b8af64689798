// The domain types, in the vocabulary of the OCI image and distribution specs
// (those of keeping a registry in shape are in types-governance.ts, re-exported here).

import type { MissedEvents } from './maintenance.js';
import type { StorePolicy } from './types-governance.js';

export type { MissedEvents, PruneOptions, PruneResult } from './maintenance.js';
export type * from './types-governance.js';

/** Who is acting. An absent actor is anonymous, recorded as ''. */
export interface Context {
  actor?: string;
  /**
   * The actor is an administrator: the store lets an admin move or delete a
   * tag that a rule of StorePolicy.immutable protects (the event says so in
   * its reason). What makes a user an admin is the caller's rule (the registry
   * server's access rules).
   */
  admin?: boolean;
}

/** A manifest as pushed: its media type and its exact bytes. */
export interface Manifest {
  mediaType: string;
  payload: Uint8Array;
}

/** The platform of an index entry (image-spec image-index.md). */
export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  features?: string[];
}

/** An OCI content descriptor (image-spec descriptor.md). */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

/** What putManifest stored: what a registry answers a push with. */
export interface PutManifestResult {
  /** The digest given, or the sha256 of the payload when none was. */
  digest: string;
  /** The digest of the manifest's subject (OCI 1.1), when it has one. */
  subject?: string;
}

/** A manifest as stored in one repository, without its bytes. */
export interface ManifestInfo {
  repo: string;
  digest: string;
  mediaType: string;
  size: number;
  createdAt: Date;
}

/** A manifest as stored in one repository, with its exact bytes. */
export interface StoredManifest extends ManifestInfo {
  payload: Buffer;
}

/** A blob as linked into a repository. */
export interface BlobInfo {
  digest: string;
  size: number;
  /** When the blob was first known to the store. */
  createdAt: Date;
}

/** One past target of a tag: the digest it was set to, and when. */
export interface TagHistoryEntry {
  digest: string;
  taggedAt: Date;
}

/** A page request: at most `n` names, those after `last` in byte order. */
export interface PageOptions {
  n?: number;
  last?: string;
}

/** A catalog page request: a page, of the names that start with `prefix` when given. */
export interface CatalogOptions extends PageOptions {
  /**
   * Only names that start with this (any string of the characters names are
   * made of, up to a name's length): the store seeks to them in its index,
   * so names outside cost nothing.
   */
  prefix?: string;
}

/**
 * A tagDetails request: how to sort, what to keep, and which page. Every
 * field optional.
 */
export interface TagQuery {
  /**
   * 'name' (default): byte order. 'pushed': by the time the tag's manifest
   * was last pushed. 'pulled': by the tag's last pull (a tag never pulled
   * sorts as pulled at the epoch). Ties in time are broken by name.
   */
  sort?: 'name' | 'pushed' | 'pulled';
  /** 'asc' (default) or 'desc': 'desc' is the exact reverse of 'asc', ties included. */
  order?: 'asc' | 'desc';
  /** Only tags that start with this (tag characters): sought in the index. */
  prefix?: string;
  /** Only tags that match this tag pattern (`*` any run of tag characters, `?` one). */
  pattern?: string;
  /** At most this many tags: 1 to MAX_PAGE_SIZE, default 100. */
  n?: number;
  /** The `next` of the previous page (of the same sort and order): the page starts after it. */
  last?: string;
}

/** A tag with what it points at: one row of tagDetails. */
export interface TagDetail {
  tag: string;
  digest: string;
  mediaType: string;
  /**
   * The manifest's bytes plus those of every blob it references and, for an
   * index, of its children present in the repository and their blobs: each
   * blob counted once. Blobs the registry does not hold count nothing.
   */
  size: number;
  /** The platforms an index lists, in its order (absent for an image manifest). */
  platforms?: Platform[];
  /** When the tag was first set. */
  createdAt: Date;
  /** When the tag was last set to a new target. */
  updatedAt: Date;
  /** The last push of the tag's manifest. */
  pushedAt: Date;
  /** The last pull through this tag; absent when it was never pulled. */
  pulledAt?: Date;
  /** How many pulls went through this tag. */
  pullCount: number;
}

/** One page of tagDetails; `next` (an opaque cursor) is absent on the last page. */
export interface TagDetailsPage {
  tags: TagDetail[];
  next?: string;
}

/** What happened to an event's object (EVENT_TYPES holds them all). */
export type EventType = 'CREATE' | 'UPDATE' | 'DELETE' | 'PULL';
/** What an event happened to (OBJECT_TYPES holds them all). */
export type EventObjectType = 'REPOSITORY' | 'TAG' | 'MANIFEST' | 'BLOB';

/**
 * An entry of the event log. object.id is `repo` for a repository, `repo:tag`
 * for a tag, `repo@digest` for a manifest and the digest for a blob.
 */
export interface Event {
  id: string;
  publishedAt: Date;
  actor: string;
  type: EventType;
  object: { type: EventObjectType; id: string };
  repository?: string;
  tag?: string;
  digest?: string;
  previousDigest?: string;
  /** A PULL event's number of pulls: pulls are written in batches, one event per manifest (and tag) per batch. */
  count?: number;
  /** Why, when the change was not simply asked for: the retention rule that removed it, an admin's override of an immutable tag. */
  reason?: string;
}

/**
 * An event as a webhook delivers it: with the media type and size of its
 * manifest or blob when the store still holds it (not after a delete).
 */
export interface NotificationEvent extends Event {
  /** Its place in the log (commit order): what the cursor keeps, and advance takes back. */
  seq: number;
  mediaType?: string;
  size?: number;
}

/** Where one webhook endpoint's delivery stands (notificationStatus). */
export interface NotificationStatus {
  endpoint: string;
  /** The last event the endpoint acknowledged; absent while none was. */
  eventId?: string;
  publishedAt?: Date;
  /** When the endpoint was first configured; it started at the log's newest event then. */
  createdAt: Date;
  /** Events committed after the cursor: not yet acknowledged. */
  backlog: number;
  /** Failed attempts since the last success. */
  failures: number;
  lastError?: string;
  lastFailureAt?: Date;
  lastSuccessAt?: Date;
  /** Events pruned before the endpoint got them, when any were. */
  missed?: MissedEvents;
}

/** What createEvent takes; id and publishedAt are the store's to fill in. */
export type NewEvent = Omit<Event, 'id' | 'publishedAt'>;

/**
 * The filters of getEvents (after DTR's GetEvents) and subscribe; every one
 * optional, and an event must pass all that are given. They select, they do
 * not authorize: who may read which events is the caller's rule (the
 * registry server's access rules).
 */
export interface EventQuery {
  /** The user the event is attributed to ('' for anonymous). */
  actor?: string;
  type?: EventType;
  objectType?: EventObjectType;
  repository?: string;
  /** Exclusive. */
  publishedBefore?: Date;
  /** Inclusive. */
  publishedAfter?: Date;
  /** Default 100, at most 1000. */
  perPage?: number;
  /** The `next` of the previous page. */
  page?: string;
}

/** One page of events, newest first; `next` is absent on the last page. */
export interface EventPage {
  events: Event[];
  next?: string;
}

/** A manifest that nothing keeps alive, for the garbage collector. */
export interface UntaggedManifest {
  repository: string;
  digest: string;
  createdAt: Date;
}

/** Options of openStore. */
export interface StoreOptions {
  /** Immutable tags and quotas, enforced in every write's transaction. Default: none. */
  policy?: StorePolicy;
  /**
   * 'full' (default): every acknowledged write survives power loss.
   * 'normal': a power loss may take the last writes back, never corrupt the file.
   */
  durability?: 'full' | 'normal';
  /** How long a write waits for another process's lock, in ms. Default 5000. */
  busyTimeout?: number;
  /** How often subscribe() looks for other processes' commits, in ms. Default 100. */
  pollInterval?: number;
  /** The largest manifest accepted, in bytes. Default 4 MiB, the spec's suggested limit. */
  maxManifestSize?: number;
  /**
   * Open an existing store for reading only: nothing is created, migrated or
   * written (writes fail with DATABASE_READONLY), as an inspection needs.
   */
  readOnly?: boolean;
}

/** Options of openPostgresStore. */
export interface PostgresStoreOptions {
  /** Immutable tags and quotas, enforced in every write's transaction. Default: none. */
  policy?: StorePolicy;
  /** How long a write waits for another transaction's row lock, in ms (PostgreSQL's lock_timeout). Default 5000. */
  busyTimeout?: number;
  /** The largest manifest accepted, in bytes. Default 4 MiB, the spec's suggested limit. */
  maxManifestSize?: number;
  /** The most connections the store's pool opens (one more listens while anyone subscribes). Default 10. */
  maxConnections?: number;
  /** How long to wait for a new connection to the server, in seconds. Default DEFAULT_POSTGRES_TIMEOUTS.connectTimeout (2). */
  connectTimeout?: number;
  /**
   * How long a call waits for a free connection of the pool, in seconds,
   * before DATABASE_UNAVAILABLE. Default DEFAULT_POSTGRES_TIMEOUTS.queueTimeout (5).
   */
  queueTimeout?: number;
  /**
   * Reads only: the schema is neither created nor migrated, and every
   * transaction is read-only (PostgreSQL refuses a write). Default false.
   */
  readOnly?: boolean;
}

/** One thing check() found wrong. `kind` is stable (integrity, foreign-key, manifest-payload, manifest-digest, manifest-size, tag, blob-link, child, size). */
export interface CheckProblem {
  kind: string;
  subject: string;
  detail: string;
}

/** What check() found. */
export interface DatabaseCheck {
  /** What was checked, and how many of each. */
  checked: { integrity: boolean; foreignKeys: boolean; manifests: number; tags: number; blobReferences: number };
  problems: CheckProblem[];
  /** False when damage stopped the database reading part-way (the last problem says so): what follows was not checked. */
  complete: boolean;
}

/** How Store.backup copies. */
export interface BackupOptions {
  /** Hears how far the copy is, in the database's pages: after each step, and once at the end. */
  onProgress?: (done: number, total: number) => void;
  /** Pages copied between progress reports (default 1024); a write by another connection restarts the copy, which then finishes in one step. */
  pagesPerStep?: number;
  /** Write over a file at `target` (removed once the copy begins) rather than refuse it. */
  replace?: boolean;
}

/** What Store.backup wrote. */
export interface BackupResult {
  /** The copy, as it was named. */
  target: string;
  pages: number;
  bytes: number;
}

/** What stats() counts. */
export interface StoreStats {
  counts: {
    repositories: number;
    manifests: number;
    manifestBytes: number;
    tags: number;
    blobs: number;
    blobBytes: number;
    blobLinks: number;
    events: number;
  };
  /**
   * The file and its write-ahead log in bytes (0 when absent), and SQLite's
   * pages. On a database server, `server` names it ('PostgreSQL'), `file` is
   * its masked URL and `fileBytes` the size it reports; there is no log or
   * free page to count (0), and `pages` is that size in its pages.
   */
  database: { file: string; fileBytes: number; walBytes: number; pageSize: number; pages: number; freePages: number; server?: string };
  /** The largest repositories by the bytes of the blobs linked in them, then by manifests. */
  largestRepositories: { repository: string; manifests: number; tags: number; blobs: number; blobBytes: number }[];
}

/** A blob upload session as the store keeps it (MetadataStore.uploads). */
export interface UploadSession {
  /** The server's UUID for it: the name of its file in the blob storage. */
  id: string;
  /** The repository it was opened for: no other may touch it. */
  repo: string;
  /** The client address that opened it, for the per-address cap. */
  client: string;
  /** Bytes committed: what the session's file holds for sure (it may hold more after a crash mid-chunk). */
  size: number;
  startedAt: Date;
  /** The last claim or commit: a session idle past the TTL since then expires. */
  updatedAt: Date;
}

/** What claiming a session gives: its committed size, or 'busy' while another writer's lease is live. */
export type UploadClaim = { size: number } | 'busy';
