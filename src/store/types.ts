// The domain types, in the vocabulary of the OCI image and distribution specs.

import type { MissedEvents } from './maintenance.js';

export type { MissedEvents, PruneOptions, PruneResult } from './maintenance.js';

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

/**
 * Pulls of one thing in a repository, added up by the caller (Store.recordPulls):
 * of manifest `digest` (by `tag` when given: the tag's too), of `tag` alone
 * (a HEAD that resolves it), or, with neither, the repository's use alone
 * (a mirror's cache notes it for gc's eviction).
 */
export interface Pull {
  repo: string;
  digest?: string;
  tag?: string;
  /** The latest of these pulls. */
  at: Date;
  /** How many pulls the entry stands for (default 1; 0 marks the time alone); a repository's use alone counts none. */
  count?: number;
}

/** What Store.recordPulls may do beside counting. */
export interface RecordPullsOptions {
  /** Write a PULL event per entry that pulled a manifest or a tag still there (default false). */
  events?: boolean;
}

/** A repository of a namespace with the blobs linked into it: what an eviction from a mirror's cache weighs (Store.namespaceUsage). */
export interface NamespaceRepository {
  name: string;
  createdAt: Date;
  /** The latest pull recorded; undefined when none was since the repository was created. */
  pulledAt?: Date;
  /** In digest order; a blob linked into several repositories is listed in each. */
  blobs: { digest: string; size: number }[];
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

/** A tag as retention weighs it (Store.repositoryLinks). */
export interface TagLink {
  tag: string;
  /** The manifest it points at. */
  digest: string;
  /** When the tag was last set. */
  updatedAt: Date;
  /** Its last pull, by tag or of its manifest by digest; absent: never pulled. */
  pulledAt?: Date;
}

/** A repository's tags and manifests read in one snapshot (Store.repositoryLinks): what a retention plan weighs. */
export interface RepositoryLinks {
  tags: TagLink[];
  manifests: ManifestLinks[];
}

/** A manifest of a repository with what keeps it or others alive (Store.repositoryLinks). */
export interface ManifestLinks {
  digest: string;
  /** Its last push: the grace period of an untagged manifest counts from it. */
  pushedAt: Date;
  /** The digest of its subject, present or not. */
  subject?: string;
  /** The child manifests it lists (an index), present or not. */
  children: string[];
}

/** A tag as a retention plan saw it (Store.retireTags): it goes only while it still is so. */
export interface TagToRetire {
  tag: string;
  /** The manifest it pointed at. */
  digest: string;
  /** When the tag was last set (TagLink.updatedAt). */
  updatedAt: Date;
  /** When that manifest was last pushed (ManifestLinks.pushedAt). */
  pushedAt: Date;
  /** Why it goes: its DELETE event's reason. */
  reason?: string;
}

/** A manifest a retention plan found collectable (Store.retireManifests). */
export interface ManifestToRetire {
  digest: string;
  /** Why it goes: its DELETE event's reason. */
  reason?: string;
}

/** Tags that, once they exist, no one but an admin may move or delete (StorePolicy.immutable). */
export interface ImmutableRule {
  /** A repository pattern: `*` within a path segment, `**` whole segments (`rel/*`). */
  repositories: string;
  /** Tag patterns: `*` any run of characters, `?` one (`v*`, `latest`). */
  tags: string[];
}

/** How many bytes a namespace may hold, each blob counted once (StorePolicy.quotas). */
export interface Quota {
  /** A repository name's first component: `acme` holds acme/app and acme/team/app. */
  namespace: string;
  /** Bytes of blobs linked in the namespace's repositories, each blob once. */
  maxSize: number;
}

/**
 * What a store enforces inside its transactions, beyond the spec: given at
 * open, checked there (ARGUMENT_INVALID names a malformed rule), and
 * reported by Store.policy.
 */
export interface StorePolicy {
  immutable?: ImmutableRule[];
  quotas?: Quota[];
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

/** What Store.usage reads. */
export interface UsageOptions {
  /** One namespace only (a name of one path component). */
  namespace?: string;
  /** With `namespace`: its repositories too, each with its bytes. */
  repositories?: boolean;
}

/**
 * Storage in use, as the store keeps it current on every link and delete
 * (Store.usage): blobs' bytes only (manifests are not blobs).
 */
export interface Usage {
  /** Every blob the registry holds, each once. */
  total: { blobs: number; bytes: number };
  /**
   * Each namespace that has a repository or a quota, by name; with
   * `namespace` asked, that one only (with `bytes` 0 when it has nothing).
   */
  namespaces: NamespaceUsage[];
  /** With `namespace` and `repositories` asked: its repositories, by name. */
  repositories?: RepositoryUsage[];
}

/** A namespace's usage: its blobs' bytes, each once; its repositories; its quota when one is set. */
export interface NamespaceUsage {
  namespace: string;
  bytes: number;
  repositories: number;
  /** The quota's maxSize, in bytes. */
  quota?: number;
}

/** A repository's usage: the bytes of the blobs linked in it, each once. */
export interface RepositoryUsage {
  repository: string;
  bytes: number;
}
