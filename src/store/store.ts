// The metadata store: DTR's ManifestStore + TagStore + EventManager on one
// SQLite connection. Each public method is one transaction (IMMEDIATE for
// writes; collectBlob's file removal is a deliberate second one, after the
// row's delete has committed); the private helpers assume they run inside it.

import type Database from 'better-sqlite3';
import { openDatabase, retryBusy } from './connection.js';
import { NotFoundError, StoreError, translateError } from './errors.js';
import { EventQueries, eventFilter, eventId, eventParams, matchesFilter, toEvent, type EventFilter, type EventRow } from './events.js';
import { checkDigest, checkRepository, checkTag, verifyDigest } from './grammar.js';
import { parseManifest, type ParsedManifest } from './manifest.js';
import { prepareStatements, type Statements } from './statements.js';
import type {
  BlobInfo,
  Context,
  Descriptor,
  Event,
  EventObjectType,
  EventPage,
  EventQuery,
  EventType,
  Manifest,
  ManifestInfo,
  NewEvent,
  PageOptions,
  StoreOptions,
  StoredManifest,
  TagHistoryEntry,
  UntaggedManifest,
} from './types.js';

interface ManifestRow {
  digest: string;
  media_type: string;
  size: number;
  created_at: number;
  payload?: Buffer;
}

interface ReferrerRow {
  media_type: string;
  digest: string;
  size: number;
  artifact_type: string | null;
  annotations: string | null;
}

interface Subscriber {
  fn: (event: Event) => void;
  onError?: (error: unknown) => void;
  filter?: EventFilter;
  /** Events up to this seq were committed before subscribe() and are not this subscriber's. */
  after: number;
}

/** The one mapping from a manifest row to a domain object. */
function toManifest(repo: string, row: ManifestRow): ManifestInfo {
  const info: ManifestInfo = {
    repo,
    digest: row.digest,
    mediaType: row.media_type,
    size: row.size,
    createdAt: new Date(row.created_at),
  };
  if (row.payload) (info as StoredManifest).payload = row.payload;
  return info;
}

function toReferrer(row: ReferrerRow): Descriptor {
  const descriptor: Descriptor = { mediaType: row.media_type, digest: row.digest, size: row.size };
  if (row.artifact_type !== null) descriptor.artifactType = row.artifact_type;
  if (row.annotations !== null) descriptor.annotations = JSON.parse(row.annotations) as Record<string, string>;
  return descriptor;
}

interface BlobRow {
  digest: string;
  size: number;
  created_at: number;
}

function toBlob(row: BlobRow): BlobInfo {
  return { digest: row.digest, size: row.size, createdAt: new Date(row.created_at) };
}

/** Carries an exception of a caller's callback through #write untranslated. */
class CallbackFailure {
  constructor(readonly error: unknown) {}
}

/** Runs a caller's callback inside a transaction: what it throws aborts the transaction and reaches the caller as is. */
function callback(fn: () => void): void {
  try {
    fn();
  } catch (error) {
    throw new CallbackFailure(error);
  }
}

function actorOf(ctx: Context | undefined): string {
  const actor = ctx?.actor ?? '';
  if (typeof actor !== 'string' || actor.length > 1024 || actor.includes('\0')) {
    throw new StoreError('EVENT_INVALID', 'the actor must be a string of at most 1024 characters');
  }
  return actor;
}

/** @throws StoreError PAGINATION_NUMBER_INVALID or TAG_INVALID/NAME_INVALID (through `checkLast`). */
function pageParams(options: PageOptions | undefined, checkLast: (last: unknown) => string) {
  const n = options?.n;
  if (n !== undefined && (!Number.isSafeInteger(n) || n < 0)) {
    throw new StoreError('PAGINATION_NUMBER_INVALID', 'n must be a non-negative integer');
  }
  return { limit: n ?? -1, last: options?.last === undefined ? '' : checkLast(options.last) };
}

const MIB = 1024 * 1024;

/**
 * The metadata of a registry in one SQLite file. Safe to share the file
 * between processes; one instance is one connection, for one thread.
 */
export class MetadataStore {
  /** The database file, or ':memory:'. */
  readonly file: string;
  readonly #db: Database.Database;
  readonly #sql: Statements;
  readonly #events: EventQueries;
  readonly #tx: Database.Transaction<(fn: () => unknown) => unknown>;
  readonly #busyTimeout: number;
  readonly #maxManifestSize: number;
  readonly #pollInterval: number;
  readonly #subscribers = new Set<Subscriber>();
  #delivered = 0;
  #dataVersion = 0;
  #pumping = false;
  #timer: NodeJS.Timeout | undefined;

  /** @throws StoreError: see openStore. */
  constructor(file: string, options: StoreOptions = {}) {
    this.file = file;
    this.#busyTimeout = options.busyTimeout ?? 5000;
    this.#maxManifestSize = options.maxManifestSize ?? 4 * MIB;
    this.#pollInterval = options.pollInterval ?? 100;
    this.#db = openDatabase(file, options);
    try {
      this.#sql = prepareStatements(this.#db);
    } catch (error) {
      this.#db.close();
      throw translateError(error, file);
    }
    this.#events = new EventQueries(this.#db);
    this.#tx = this.#db.transaction((fn: () => unknown) => fn());
  }

  // --- manifests (ManifestStore) --------------------------------------------

  /**
   * Stores a manifest's exact bytes in `repo`, creating the repository on first
   * use, and records the blobs, child manifests and subject it references.
   * Putting the same manifest again changes nothing but the time the
   * garbage collector's grace period counts from. With `options.tag`, the
   * tag is pointed at it in the same transaction (a push by tag). With
   * `options.requireReferences`, every blob it references must be linked in
   * `repo` and every child manifest present there (its subject may be
   * missing), checked in the same transaction, so that no concurrent delete
   * slips between the check and the write.
   * @throws StoreError NAME_INVALID, TAG_INVALID, DIGEST_INVALID (malformed, or
   * not the hash of the payload), MANIFEST_INVALID, SIZE_INVALID (above the
   * size limit), MANIFEST_BLOB_UNKNOWN (a missing reference, with `detail.digest`).
   */
  putManifest(
    repo: string,
    digest: string,
    manifest: Manifest,
    ctx?: Context,
    options: { tag?: string; requireReferences?: boolean } = {},
  ): void {
    checkRepository(repo);
    const tag = options.tag === undefined ? undefined : checkTag(options.tag);
    const actor = actorOf(ctx);
    if (typeof manifest !== 'object' || manifest === null || !(manifest.payload instanceof Uint8Array)) {
      throw new StoreError('MANIFEST_INVALID', 'a manifest needs a payload of bytes');
    }
    if (typeof manifest.mediaType !== 'string') throw new StoreError('MANIFEST_INVALID', 'a manifest needs a mediaType');
    const { mediaType, payload } = manifest;
    if (payload.byteLength > this.#maxManifestSize) {
      throw new StoreError('SIZE_INVALID', `manifest of ${payload.byteLength} bytes is above the limit of ${this.#maxManifestSize}`);
    }
    verifyDigest(digest, payload);
    // Parsing and hashing happen before the write lock is taken.
    const parsed = parseManifest(mediaType, payload);
    const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    this.#write(() => {
      const now = Date.now();
      const repositoryId = this.#ensureRepository(repo, actor, now);
      let manifestId = this.#sql.manifestId.get({ repositoryId, digest }) as number | undefined;
      if (manifestId === undefined) {
        if (options.requireReferences) this.#checkReferences(repo, repositoryId, parsed);
        manifestId = this.#insertManifest(repo, repositoryId, digest, mediaType, bytes, parsed, actor, now);
      } else {
        // No event and no new row; only the garbage collector's clock restarts.
        this.#sql.touchManifest.run({ manifestId, now });
      }
      if (tag !== undefined) this.#setTag(repo, repositoryId, tag, manifestId, digest, actor, now);
    });
  }

  /**
   * The manifest `digest` of `repo`, with its exact bytes.
   * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN; StoreError NAME_INVALID, DIGEST_INVALID.
   */
  getManifest(repo: string, digest: string): StoredManifest {
    return this.#readManifest(repo, digest, this.#sql.manifestWithPayload) as StoredManifest;
  }

  /**
   * The manifest `digest` of `repo` without its bytes: what HEAD needs.
   * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN; StoreError NAME_INVALID, DIGEST_INVALID.
   */
  statManifest(repo: string, digest: string): ManifestInfo {
    return this.#readManifest(repo, digest, this.#sql.manifestInfo);
  }

  /**
   * Removes a manifest from `repo` and, in the same transaction, every tag of
   * it (a DELETE TAG event each).
   * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN; StoreError
   * MANIFEST_REFERENCED while an index in `repo` lists it; NAME_INVALID, DIGEST_INVALID.
   */
  deleteManifest(repo: string, digest: string, ctx?: Context): void {
    checkRepository(repo);
    checkDigest(digest);
    const actor = actorOf(ctx);
    this.#write(() => {
      const { repositoryId, manifestId } = this.#resolve(repo, digest);
      this.#refuseIfChild(repo, repositoryId, digest);
      this.#removeManifest(repo, manifestId, digest, actor);
    });
  }

  /**
   * The manifests of `repo` whose `subject` is `digest`, as descriptors for
   * the referrers API, optionally only those of one artifactType. A repository
   * or subject that is not there has no referrers: [].
   * @throws StoreError NAME_INVALID, DIGEST_INVALID.
   */
  referrers(repo: string, digest: string, filter: { artifactType?: string } = {}): Descriptor[] {
    checkRepository(repo);
    checkDigest(digest);
    const artifactType = filter.artifactType;
    if (artifactType !== undefined && typeof artifactType !== 'string') {
      throw new StoreError('MANIFEST_INVALID', 'artifactType must be a string');
    }
    return this.#snapshot(() => {
      const repositoryId = this.#sql.repositoryId.get({ repository: repo });
      if (repositoryId === undefined) return [];
      const rows = this.#sql.referrers.all({ repositoryId, digest, artifactType: artifactType ?? null }) as ReferrerRow[];
      return rows.map(toReferrer);
    });
  }

  // --- tags (TagStore) ------------------------------------------------------

  /**
   * Points `tag` at the manifest `descriptor.digest`, which must be in `repo`.
   * A move keeps createdAt, records the previous digest in the tag's history
   * and event; re-putting the same target changes nothing.
   * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN; StoreError
   * NAME_INVALID, TAG_INVALID, DIGEST_INVALID, SIZE_INVALID.
   */
  putTag(repo: string, tag: string, descriptor: Pick<Descriptor, 'digest'> & Partial<Descriptor>, ctx?: Context): void {
    checkRepository(repo);
    checkTag(tag);
    if (typeof descriptor !== 'object' || descriptor === null) throw new StoreError('DIGEST_INVALID', 'a tag needs a descriptor');
    const digest = checkDigest(descriptor.digest);
    if (descriptor.size !== undefined && (!Number.isSafeInteger(descriptor.size) || descriptor.size < 0)) {
      throw new StoreError('SIZE_INVALID', 'descriptor size must be a non-negative integer');
    }
    const actor = actorOf(ctx);
    this.#write(() => {
      const { repositoryId, manifestId } = this.#resolve(repo, digest);
      this.#setTag(repo, repositoryId, tag, manifestId, digest, actor, Date.now());
    });
  }

  /**
   * The descriptor of the manifest `tag` points at: its own mediaType, digest and size.
   * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN; StoreError NAME_INVALID, TAG_INVALID.
   */
  getTag(repo: string, tag: string): Descriptor {
    checkRepository(repo);
    checkTag(tag);
    return this.#read(() => {
      const row = this.#sql.getTag.get({ repository: repo, tag }) as { media_type: string; digest: string; size: number } | undefined;
      if (row === undefined) this.#notFound(repo, `tag ${repo}:${tag} is not known`);
      return { mediaType: row.media_type, digest: row.digest, size: row.size };
    });
  }

  /**
   * Removes `tag` (not its manifest).
   * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN; StoreError NAME_INVALID, TAG_INVALID.
   */
  deleteTag(repo: string, tag: string, ctx?: Context): void {
    checkRepository(repo);
    checkTag(tag);
    const actor = actorOf(ctx);
    this.#write(() => {
      const repositoryId = this.#repositoryId(repo);
      const current = this.#sql.currentTag.get({ repositoryId, tag }) as { digest: string } | undefined;
      if (current === undefined) throw new NotFoundError('MANIFEST_UNKNOWN', `tag ${repo}:${tag} is not known`);
      this.#sql.deleteTag.run({ repositoryId, tag });
      this.#event(actor, Date.now(), 'DELETE', 'TAG', `${repo}:${tag}`, { repository: repo, tag, digest: current.digest });
    });
  }

  /**
   * The tags of `repo` in byte order: all of them, or `n` after `last`.
   * @throws NotFoundError NAME_UNKNOWN; StoreError NAME_INVALID, TAG_INVALID, PAGINATION_NUMBER_INVALID.
   */
  allTags(repo: string, page?: PageOptions): string[] {
    checkRepository(repo);
    const { limit, last } = pageParams(page, checkTag);
    return this.#read(() => {
      const tags = this.#sql.allTags.all({ repository: repo, last, limit }) as string[];
      if (tags.length === 0) this.#repositoryId(repo);
      return tags;
    });
  }

  /**
   * Like allTags, with what each tag points at: one statement, so a tag
   * deleted meanwhile is simply not listed.
   * @throws NotFoundError NAME_UNKNOWN; StoreError NAME_INVALID, TAG_INVALID, PAGINATION_NUMBER_INVALID.
   */
  tagDescriptors(repo: string, page?: PageOptions): (Descriptor & { tag: string })[] {
    checkRepository(repo);
    const { limit, last } = pageParams(page, checkTag);
    return this.#read(() => {
      const rows = this.#sql.tagDescriptors.all({ repository: repo, last, limit }) as
        { tag: string; media_type: string; digest: string; size: number }[];
      if (rows.length === 0) this.#repositoryId(repo);
      return rows.map((row) => ({ tag: row.tag, mediaType: row.media_type, digest: row.digest, size: row.size }));
    });
  }

  /**
   * The tags of `repo` that point at a digest, in byte order, through an index.
   * @throws NotFoundError NAME_UNKNOWN; StoreError NAME_INVALID, DIGEST_INVALID.
   */
  lookupTags(repo: string, descriptorOrDigest: string | Pick<Descriptor, 'digest'>): string[] {
    checkRepository(repo);
    const digest = checkDigest(typeof descriptorOrDigest === 'string' ? descriptorOrDigest : descriptorOrDigest?.digest);
    return this.#read(() => {
      const tags = this.#sql.lookupTags.all({ repository: repo, digest }) as string[];
      if (tags.length === 0) this.#repositoryId(repo);
      return tags;
    });
  }

  /**
   * Every target `tag` has had, newest first ([] for a tag never set).
   * @throws NotFoundError NAME_UNKNOWN; StoreError NAME_INVALID, TAG_INVALID.
   */
  tagHistory(repo: string, tag: string): TagHistoryEntry[] {
    checkRepository(repo);
    checkTag(tag);
    return this.#snapshot(() => {
      const repositoryId = this.#repositoryId(repo);
      const rows = this.#sql.tagHistory.all({ repositoryId, tag }) as { digest: string; tagged_at: number }[];
      return rows.map((row) => ({ digest: row.digest, taggedAt: new Date(row.tagged_at) }));
    });
  }

  // --- repositories ---------------------------------------------------------

  /**
   * The repository names in byte order: all, or `n` after `last`.
   * @throws StoreError PAGINATION_NUMBER_INVALID, NAME_INVALID.
   */
  catalog(page?: PageOptions): string[] {
    const { limit, last } = pageParams(page, checkRepository);
    return this.#read(() => this.#sql.catalog.all({ last, limit }) as string[]);
  }

  /**
   * Deletes a repository with its tags, manifests and blob links, writing a
   * DELETE event for each tag and manifest and for the repository.
   * @throws NotFoundError NAME_UNKNOWN; StoreError NAME_INVALID.
   */
  deleteRepository(repo: string, ctx?: Context): void {
    checkRepository(repo);
    const actor = actorOf(ctx);
    this.#write(() => {
      const repositoryId = this.#repositoryId(repo);
      const now = Date.now();
      const tags = this.#sql.tagsOfRepository.all({ repositoryId }) as { name: string; digest: string }[];
      this.#sql.deleteTagsOfRepository.run({ repositoryId });
      for (const { name: tag, digest } of tags) {
        this.#event(actor, now, 'DELETE', 'TAG', `${repo}:${tag}`, { repository: repo, tag, digest });
      }
      for (const digest of this.#sql.repositoryManifests.all({ repositoryId }) as string[]) {
        this.#event(actor, now, 'DELETE', 'MANIFEST', `${repo}@${digest}`, { repository: repo, digest });
      }
      this.#sql.deleteRepository.run({ repositoryId });
      this.#event(actor, now, 'DELETE', 'REPOSITORY', repo, { repository: repo });
    });
  }

  // --- blobs ----------------------------------------------------------------

  /**
   * Records that blob `digest` of `size` bytes is present and readable from
   * `repo`, creating the repository on first use. Linking again refreshes the
   * link's time (the garbage collector's grace period counts from it).
   * `options.place`, when given, runs inside the transaction before the link
   * is written: a registry moves the blob's file into place there, so that
   * collectBlob's file removal (also under the write lock) can never undo it.
   * @throws StoreError NAME_INVALID, DIGEST_INVALID, SIZE_INVALID (invalid, or
   * not the size already recorded for that digest); whatever `place` throws.
   */
  linkBlob(repo: string, blob: { digest: string; size: number }, ctx?: Context, options: { place?: () => void } = {}): void {
    checkRepository(repo);
    if (typeof blob !== 'object' || blob === null) throw new StoreError('DIGEST_INVALID', 'linkBlob needs { digest, size }');
    const digest = checkDigest(blob.digest);
    const size = blob.size;
    if (!Number.isSafeInteger(size) || size < 0) throw new StoreError('SIZE_INVALID', 'blob size must be a non-negative integer');
    const actor = actorOf(ctx);
    this.#write(() => {
      const now = Date.now();
      const repositoryId = this.#ensureRepository(repo, actor, now);
      const known = this.#sql.blobSize.get({ digest });
      if (known === undefined) this.#sql.insertBlob.run({ digest, size, now });
      else if (known !== size) {
        throw new StoreError('SIZE_INVALID', `blob ${digest} has size ${known}, not ${size}`, { size: known });
      }
      if (options.place) callback(options.place);
      this.#sql.linkBlob.run({ repositoryId, digest, now });
    });
  }

  /**
   * Links into `repo` a blob that repository `from` has: the spec's
   * cross-repository mount, checked and written in one transaction.
   * @returns the mounted blob.
   * @throws NotFoundError BLOB_UNKNOWN when `from` does not have it (or does
   * not exist); StoreError NAME_INVALID, DIGEST_INVALID.
   */
  mountBlob(repo: string, digest: string, from: string, ctx?: Context): BlobInfo {
    checkRepository(repo);
    checkDigest(digest);
    checkRepository(from);
    const actor = actorOf(ctx);
    return this.#write(() => {
      const row = this.#sql.statBlob.get({ repository: from, digest }) as BlobRow | undefined;
      if (row === undefined) throw new NotFoundError('BLOB_UNKNOWN', `blob ${digest} is not known in ${from}`);
      const now = Date.now();
      const repositoryId = this.#ensureRepository(repo, actor, now);
      this.#sql.linkBlob.run({ repositoryId, digest, now });
      return toBlob(row);
    });
  }

  /**
   * The blob `digest` as linked in `repo`.
   * @throws NotFoundError NAME_UNKNOWN or BLOB_UNKNOWN (not linked there); StoreError NAME_INVALID, DIGEST_INVALID.
   */
  statBlob(repo: string, digest: string): BlobInfo {
    checkRepository(repo);
    checkDigest(digest);
    return this.#read(() => {
      const row = this.#sql.statBlob.get({ repository: repo, digest }) as BlobRow | undefined;
      if (row === undefined) {
        this.#repositoryId(repo);
        throw new NotFoundError('BLOB_UNKNOWN', `blob ${digest} is not known in ${repo}`);
      }
      return toBlob(row);
    });
  }

  /**
   * Removes the link of blob `digest` from `repo`, with a DELETE BLOB event
   * for `repo@digest`; the blob itself stays for the garbage collector.
   * @throws NotFoundError NAME_UNKNOWN or BLOB_UNKNOWN; StoreError
   * BLOB_REFERENCED while a manifest of `repo` references it, NAME_INVALID,
   * DIGEST_INVALID.
   */
  unlinkBlob(repo: string, digest: string, ctx?: Context): void {
    checkRepository(repo);
    checkDigest(digest);
    const actor = actorOf(ctx);
    this.#write(() => {
      const repositoryId = this.#repositoryId(repo);
      if (this.#sql.unlinkBlob.run({ repositoryId, digest }).changes === 0) {
        throw new NotFoundError('BLOB_UNKNOWN', `blob ${digest} is not known in ${repo}`);
      }
      // After the not-found check, so that a blob not linked here is BLOB_UNKNOWN
      // whatever references it; throwing rolls the unlink back.
      if (this.#sql.blobReferencedIn.get({ repositoryId, digest }) !== undefined) {
        throw new StoreError('BLOB_REFERENCED', `blob ${digest} is referenced by a manifest of ${repo}`);
      }
      this.#event(actor, Date.now(), 'DELETE', 'BLOB', `${repo}@${digest}`, { repository: repo, digest });
    });
  }

  /**
   * Forgets blob `digest` everywhere, with a DELETE BLOB event for the digest.
   * @throws NotFoundError BLOB_UNKNOWN; StoreError BLOB_REFERENCED while a
   * manifest references it; DIGEST_INVALID.
   */
  deleteBlob(digest: string, ctx?: Context): void {
    checkDigest(digest);
    const actor = actorOf(ctx);
    this.#write(() => this.#removeBlob(digest, actor));
  }

  /**
   * Runs `fn` inside a write transaction, only if the store knows no blob
   * `digest`: how a file that no row names (left by a crash) is removed
   * without racing a push, which places its file under the same lock.
   * @returns whether `fn` ran.
   * @throws StoreError DIGEST_INVALID; whatever `fn` throws.
   */
  whileBlobUnknown(digest: string, fn: () => void): boolean {
    checkDigest(digest);
    // Most files have their row: a read says so without taking the write lock.
    if (this.#read(() => this.#sql.blobSize.get({ digest })) !== undefined) return false;
    return this.#write(() => {
      if (this.#sql.blobSize.get({ digest }) !== undefined) return false;
      callback(fn);
      return true;
    });
  }

  // --- garbage collection -----------------------------------------------------

  /**
   * Manifests last pushed before `olderThan` (default now) that no tag, no
   * index in their repository and no present subject keeps alive.
   * @throws StoreError ARGUMENT_INVALID.
   */
  untaggedManifests(options: { olderThan?: Date } = {}): UntaggedManifest[] {
    const before = timeOption(options.olderThan);
    return this.#read(() =>
      (this.#sql.untaggedManifests.all({ before }) as { repository: string; digest: string; created_at: number }[]).map(
        (row) => ({ repository: row.repository, digest: row.digest, createdAt: new Date(row.created_at) }),
      ),
    );
  }

  /**
   * Blobs no manifest references, neither created nor linked since `olderThan` (default now).
   * @throws StoreError ARGUMENT_INVALID.
   */
  unreferencedBlobs(options: { olderThan?: Date } = {}): BlobInfo[] {
    const before = timeOption(options.olderThan);
    return this.#read(() =>
      (this.#sql.unreferencedBlobs.all({ before }) as BlobRow[]).map(toBlob),
    );
  }

  /**
   * The garbage collector's delete of a manifest that untaggedManifests({
   * olderThan }) listed: the same rule is checked again in the delete's
   * transaction, so one tagged, listed by an index, given a present subject
   * or pushed again since the listing is refused and stays.
   * @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN; StoreError
   * MANIFEST_REFERENCED while anything keeps it alive; NAME_INVALID,
   * DIGEST_INVALID, ARGUMENT_INVALID.
   */
  collectManifest(repo: string, digest: string, ctx?: Context, options: { olderThan?: Date } = {}): void {
    checkRepository(repo);
    checkDigest(digest);
    const actor = actorOf(ctx);
    const before = timeOption(options.olderThan);
    this.#write(() => {
      const { repositoryId, manifestId } = this.#resolve(repo, digest);
      this.#refuseIfChild(repo, repositoryId, digest);
      const tags = this.#sql.tagsOfManifest.all({ manifestId }) as string[];
      if (tags.length > 0) throw new StoreError('MANIFEST_REFERENCED', `${repo}@${digest} is tagged ${tags.join(', ')}`, { tags });
      if (this.#sql.manifestCollectable.get({ manifestId, before }) === undefined) {
        throw new StoreError('MANIFEST_REFERENCED', `${repo}@${digest} is kept alive by its subject, or is too recent`);
      }
      this.#removeManifest(repo, manifestId, digest, actor);
    });
  }

  /**
   * The garbage collector's delete of a blob that unreferencedBlobs({
   * olderThan }) listed, by the same rule checked again in the delete's
   * transaction. `options.removeFile` runs after that commit, in a second
   * write transaction, and only if no one has linked the digest again
   * meanwhile: the file goes only after its row, and never from under a
   * fresh push (linkBlob's `place` runs under the same lock).
   * @throws NotFoundError BLOB_UNKNOWN; StoreError BLOB_REFERENCED while a
   * manifest references it or when it was uploaded or linked since
   * `olderThan`; DIGEST_INVALID, ARGUMENT_INVALID; whatever `removeFile` throws.
   */
  collectBlob(digest: string, ctx?: Context, options: { olderThan?: Date; removeFile?: () => void } = {}): void {
    checkDigest(digest);
    const actor = actorOf(ctx);
    const before = timeOption(options.olderThan);
    this.#write(() => this.#removeBlob(digest, actor, before));
    if (options.removeFile) this.whileBlobUnknown(digest, options.removeFile);
  }

  // --- events (EventManager) ----------------------------------------------------

  /**
   * Appends an event, such as DELETE BLOB by GARBAGE_COLLECTOR.
   * @returns the stored event, with id and publishedAt filled in.
   * @throws StoreError EVENT_INVALID, NAME_INVALID.
   */
  createEvent(event: NewEvent): Event {
    const params = eventParams(event);
    return this.#write(() => toEvent(this.#sql.insertEvent.get({ ...params, id: eventId(), now: Date.now() }) as EventRow));
  }

  /**
   * A page of events, newest first. A non-admin sees only their own events.
   * @throws StoreError DENIED (a non-admin asking for another's events),
   * EVENT_INVALID, NAME_INVALID, PAGINATION_NUMBER_INVALID (bad perPage or page token).
   */
  getEvents(query: EventQuery): EventPage {
    return this.#read(() => this.#events.page(query));
  }

  /**
   * Calls `fn` with every event committed after this call, in commit order,
   * once each: this connection's at once, other processes' within the poll
   * interval. With `options.query`, only the events getEvents would return
   * for it (the same filters and DTR rule; page and perPage are ignored). An
   * exception from `fn` goes to `options.onError` (default: console.error)
   * and stops nothing.
   * @returns the function that unsubscribes.
   * @throws StoreError DENIED, EVENT_INVALID, NAME_INVALID (a bad query); STORE_CLOSED.
   */
  subscribe(fn: (event: Event) => void, options: { query?: EventQuery; onError?: (error: unknown) => void } = {}): () => void {
    const filter = options.query === undefined ? undefined : eventFilter(options.query);
    const after = this.#read(() => {
      if (this.#subscribers.size === 0) {
        this.#dataVersion = this.#sql.dataVersion.get() as number;
        this.#delivered = this.#sql.lastEventSeq.get() as number;
        return this.#delivered;
      }
      return this.#sql.lastEventSeq.get() as number;
    });
    const subscriber: Subscriber = { fn, onError: options.onError, filter, after };
    this.#subscribers.add(subscriber);
    this.#timer ??= setInterval(() => this.#poll(), this.#pollInterval).unref();
    return () => {
      this.#subscribers.delete(subscriber);
      if (this.#subscribers.size === 0) this.#stopPolling();
    };
  }

  /** Closes the connection; later calls throw STORE_CLOSED. Closing twice is harmless. */
  close(): void {
    this.#stopPolling();
    this.#subscribers.clear();
    if (this.#db.open) this.#db.close();
  }

  // --- inside a transaction ---------------------------------------------------

  #repositoryId(repo: string): number {
    const id = this.#sql.repositoryId.get({ repository: repo }) as number | undefined;
    if (id === undefined) throw new NotFoundError('NAME_UNKNOWN', `repository ${repo} is not known`);
    return id;
  }

  #ensureRepository(repo: string, actor: string, now: number): number {
    const id = this.#sql.repositoryId.get({ repository: repo }) as number | undefined;
    if (id !== undefined) return id;
    const created = this.#sql.insertRepository.get({ repository: repo, now }) as number;
    this.#event(actor, now, 'CREATE', 'REPOSITORY', repo, { repository: repo });
    return created;
  }

  /** Inserts a manifest with the rows of what it references and its CREATE event. */
  #insertManifest(
    repo: string,
    repositoryId: number,
    digest: string,
    mediaType: string,
    bytes: Buffer,
    parsed: ParsedManifest,
    actor: string,
    now: number,
  ): number {
    const manifestId = this.#sql.insertManifest.get({
      repositoryId,
      digest,
      mediaType,
      artifactType: parsed.artifactType,
      annotations: parsed.annotations,
      subject: parsed.subject,
      size: bytes.byteLength,
      now,
    }) as number;
    this.#sql.insertPayload.run({ manifestId, payload: bytes });
    for (const blob of parsed.blobs) this.#sql.insertManifestBlob.run({ manifestId, digest: blob });
    for (const child of parsed.children) this.#sql.insertManifestChild.run({ repositoryId, manifestId, digest: child });
    this.#event(actor, now, 'CREATE', 'MANIFEST', `${repo}@${digest}`, { repository: repo, digest });
    return manifestId;
  }

  /** @throws StoreError MANIFEST_BLOB_UNKNOWN for the first blob not linked or child not present in `repo`. */
  #checkReferences(repo: string, repositoryId: number, parsed: ParsedManifest): void {
    const missing = (what: string, digest: string) =>
      new StoreError('MANIFEST_BLOB_UNKNOWN', `${what} ${digest} is not in ${repo}`, { digest });
    for (const digest of parsed.blobs) {
      if (this.#sql.blobLinked.get({ repositoryId, digest }) === undefined) throw missing('blob', digest);
    }
    for (const digest of parsed.children) {
      if (this.#sql.manifestId.get({ repositoryId, digest }) === undefined) throw missing('manifest', digest);
    }
  }

  /** The ids of `repo` and of its manifest `digest`. @throws NotFoundError. */
  #resolve(repo: string, digest: string): { repositoryId: number; manifestId: number } {
    const row = this.#sql.resolve.get({ repository: repo, digest }) as
      | { repositoryId: number; manifestId: number | null }
      | undefined;
    if (row === undefined) throw new NotFoundError('NAME_UNKNOWN', `repository ${repo} is not known`);
    if (row.manifestId === null) throw new NotFoundError('MANIFEST_UNKNOWN', `manifest ${repo}@${digest} is not known`);
    return row as { repositoryId: number; manifestId: number };
  }

  /** @throws StoreError MANIFEST_REFERENCED while an index in `repo` lists the manifest. */
  #refuseIfChild(repo: string, repositoryId: number, digest: string): void {
    const parent = this.#sql.parentOf.get({ repositoryId, digest }) as string | undefined;
    if (parent !== undefined) {
      throw new StoreError('MANIFEST_REFERENCED', `${repo}@${digest} is a child of ${parent}`, { parent });
    }
  }

  /** Deletes a manifest and every tag of it, with their events. */
  #removeManifest(repo: string, manifestId: number, digest: string, actor: string): void {
    const now = Date.now();
    const tags = this.#sql.tagsOfManifest.all({ manifestId }) as string[];
    this.#sql.deleteTagsOfManifest.run({ manifestId });
    for (const tag of tags) this.#event(actor, now, 'DELETE', 'TAG', `${repo}:${tag}`, { repository: repo, tag, digest });
    this.#sql.deleteManifest.run({ manifestId });
    this.#event(actor, now, 'DELETE', 'MANIFEST', `${repo}@${digest}`, { repository: repo, digest });
  }

  /**
   * Deletes a blob that no manifest references, with its event; with
   * `before`, only one that unreferencedBlobs would list for it.
   * @throws NotFoundError BLOB_UNKNOWN; StoreError BLOB_REFERENCED.
   */
  #removeBlob(digest: string, actor: string, before?: number): void {
    if (this.#sql.blobReferenced.get({ digest }) !== undefined) {
      throw new StoreError('BLOB_REFERENCED', `blob ${digest} is referenced by a manifest`);
    }
    if (before !== undefined && this.#sql.blobSize.get({ digest }) !== undefined) {
      if (this.#sql.blobCollectable.get({ digest, before }) === undefined) {
        throw new StoreError('BLOB_REFERENCED', `blob ${digest} was uploaded or linked within the grace period`);
      }
    }
    if (this.#sql.deleteBlob.run({ digest }).changes === 0) throw new NotFoundError('BLOB_UNKNOWN', `blob ${digest} is not known`);
    this.#event(actor, Date.now(), 'DELETE', 'BLOB', digest, { digest });
  }

  /** Points `tag` at a manifest: one upsert, a history row and an event, or nothing when it points there already. */
  #setTag(repo: string, repositoryId: number, tag: string, manifestId: number, digest: string, actor: string, now: number): void {
    const current = this.#sql.currentTag.get({ repositoryId, tag }) as { manifest_id: number; digest: string } | undefined;
    if (current?.manifest_id === manifestId) return;
    this.#sql.upsertTag.run({ repositoryId, tag, manifestId, now });
    this.#sql.insertTagHistory.run({ repositoryId, tag, digest, now });
    this.#event(actor, now, current ? 'UPDATE' : 'CREATE', 'TAG', `${repo}:${tag}`, {
      repository: repo,
      tag,
      digest,
      previousDigest: current?.digest,
    });
  }

  /** NAME_UNKNOWN when the repository is missing, else MANIFEST_UNKNOWN with `message`. */
  #notFound(repo: string, message: string): never {
    this.#repositoryId(repo);
    throw new NotFoundError('MANIFEST_UNKNOWN', message);
  }

  #readManifest(repo: string, digest: string, statement: Database.Statement): ManifestInfo {
    checkRepository(repo);
    checkDigest(digest);
    return this.#read(() => {
      const row = statement.get({ repository: repo, digest }) as ManifestRow | undefined;
      if (row === undefined) this.#notFound(repo, `manifest ${repo}@${digest} is not known`);
      return toManifest(repo, row);
    });
  }

  #event(
    actor: string,
    now: number,
    type: EventType,
    objectType: EventObjectType,
    objectId: string,
    fields: { repository?: string; tag?: string; digest?: string; previousDigest?: string },
  ): void {
    this.#sql.insertEvent.run({
      id: eventId(now),
      now,
      actor,
      type,
      objectType,
      objectId,
      repository: fields.repository ?? null,
      tag: fields.tag ?? null,
      digest: fields.digest ?? null,
      previousDigest: fields.previousDigest ?? null,
    });
  }

  // --- transactions and delivery ------------------------------------------------

  /** Runs `fn` in one IMMEDIATE transaction, then delivers its events to subscribers. */
  #write<T>(fn: () => T): T {
    this.#checkOpen();
    let result: T;
    try {
      // busy_timeout makes BEGIN IMMEDIATE wait for the lock; the retry covers
      // the few cases where SQLite answers BUSY without waiting.
      result = retryBusy(this.#busyTimeout, () => this.#tx.immediate(fn) as T);
    } catch (error) {
      if (error instanceof CallbackFailure) throw error.error;
      throw translateError(error, this.file);
    }
    if (this.#subscribers.size > 0) this.#pump();
    return result;
  }

  /**
   * Runs a read. Reads are one statement, consistent without a transaction
   * (a second statement runs only on a miss, to tell NAME_UNKNOWN from the
   * other not-found codes); those that need two use #snapshot. A WAL reader
   * can meet SQLITE_BUSY without waiting (while another connection recovers
   * the log after a crash), hence the retry.
   */
  #read<T>(fn: () => T): T {
    this.#checkOpen();
    try {
      return retryBusy(this.#busyTimeout, fn);
    } catch (error) {
      throw translateError(error, this.file);
    }
  }

  /** Runs a read of several statements in one (deferred) transaction: one snapshot. */
  #snapshot<T>(fn: () => T): T {
    return this.#read(() => this.#tx.deferred(fn) as T);
  }

  #checkOpen(): void {
    if (!this.#db.open) throw new StoreError('STORE_CLOSED', `the store on ${this.file} is closed`);
  }

  #poll(): void {
    if (!this.#db.open) return this.#stopPolling();
    try {
      const version = this.#sql.dataVersion.get() as number;
      if (version === this.#dataVersion) return;
      this.#dataVersion = version;
    } catch {
      return; // A busy or failing read now is retried at the next tick.
    }
    this.#pump();
  }

  /** Delivers committed events past #delivered, in seq order; re-entrant calls fold into the running one. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      for (;;) {
        const rows = this.#sql.eventsAfter.all({ seq: this.#delivered }) as EventRow[];
        if (rows.length === 0) break;
        for (const row of rows) {
          this.#delivered = row.seq;
          const event = toEvent(row);
          for (const subscriber of this.#subscribers) {
            if (row.seq <= subscriber.after || (subscriber.filter && !matchesFilter(row, subscriber.filter))) continue;
            try {
              subscriber.fn(event);
            } catch (error) {
              try {
                (subscriber.onError ?? console.error)(error);
              } catch {
                // An error handler that throws must not stop delivery to the others.
              }
            }
          }
        }
      }
    } catch {
      // The database went away (closed) mid-delivery: nothing left to deliver to.
    } finally {
      this.#pumping = false;
    }
  }

  #stopPolling(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

function timeOption(value: Date | undefined): number {
  if (value === undefined) return Date.now();
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new StoreError('ARGUMENT_INVALID', 'olderThan must be a valid Date');
  }
  return value.getTime();
}
