// The PostgreSQL store: the Store contract (../contract.ts, where each
// method is documented) on a connection pool that any number of registry
// replicas share. A facade: each method delegates to the module of its
// concern, which runs it as one transaction (collectBlob's file removal is a
// deliberate second one); the checks of the arguments (../checks.ts) run in
// front of every method.
// Loaded only by openPostgresStore (a dynamic import), so that SQLite users
// never load the client.

import { STORE_CHECKS, applyChecks } from '../checks.js';
import type { Store, LockedAction } from '../contract.js';
import { StoreError } from '../errors.js';
import type { Reference } from '../grammar.js';
import { DEFAULT_POSTGRES_TIMEOUTS, limitsOf, type StoreLimits } from '../limits.js';
import type { BlobInfo, CatalogOptions, Context, Descriptor, Event, EventQuery, Manifest, ManifestInfo, NewEvent, PageOptions } from '../types.js';
import type { ManifestToRetire, NamespaceRepository, PostgresStoreOptions, PruneOptions, PruneResult, Pull, RecordPullsOptions, StoredManifest, StorePolicy, TagQuery, TagToRetire, Usage, UsageOptions } from '../types.js';
import { compilePolicy } from '../policy.js';
import * as sizes from './sizes.js';
import * as blobs from './blobs.js';
import { PgContext, type Sql } from './context.js';
import { translatePgError } from './errors.js';
import { connect } from './pool.js';
import * as events from './events.js';
import * as gc from './gc.js';
import * as inspection from './inspection.js';
import * as maintenance from './maintenance.js';
import * as manifests from './manifests.js';
import * as pulls from './pulls.js';
import { PgNotificationCursors } from './notifications.js';
import * as repositories from './repositories.js';
import * as retention from './retention.js';
import * as tagDetails from './tag-details.js';
import * as tags from './tags.js';
import { PgUploadSessions } from './uploads.js';

/**
 * Connects to the PostgreSQL database at `url` and brings its schema up to
 * date (with `readOnly`, only checks that it has one it can read).
 * @throws StoreError ARGUMENT_INVALID (not a postgres:// URL, an invalid `options.policy`), DATABASE_TOO_NEW,
 * DATABASE_INVALID (a database with another program's tables; read-only, one
 * without a regmeta schema), DATABASE_INCOMPLETE (the target of a
 * `regmeta migrate` that has not finished), DATABASE_UNAVAILABLE (unreachable, refused).
 */
export async function openPostgres(url: string, options: PostgresStoreOptions = {}): Promise<Store> {
  const limits = limitsOf({ busyTimeout: options.busyTimeout, maxManifestSize: options.maxManifestSize });
  const policy = compilePolicy(options.policy);
  const { sql, location } = await connect(url, {
    max: options.maxConnections ?? 10,
    connectTimeout: options.connectTimeout,
    queueTimeout: options.queueTimeout ?? DEFAULT_POSTGRES_TIMEOUTS.queueTimeout,
    lockTimeout: limits.busyTimeout,
    readOnly: options.readOnly,
  });
  try {
    await checkMigrationFinished(sql, location);
  } catch (error) {
    await sql.end({ timeout: 1 }).catch(() => {});
    throw translatePgError(error, location);
  }
  return new PostgresStore(new PgContext(sql, location, limits, policy));
}

/** The registry's metadata in a PostgreSQL database. */
class PostgresStore implements Store {
  readonly backend = 'postgres';
  readonly notifications: PgNotificationCursors;
  readonly uploads: PgUploadSessions;
  readonly #cx: PgContext;
  readonly #subscriptions: events.PgSubscriptions;

  constructor(cx: PgContext) {
    this.#cx = cx;
    this.notifications = new PgNotificationCursors(cx);
    this.uploads = new PgUploadSessions(cx);
    this.#subscriptions = new events.PgSubscriptions(cx);
  }
  get location(): string {
    return this.#cx.location;
  }
  get limits(): StoreLimits {
    return this.#cx.limits;
  }
  get policy(): StorePolicy {
    return this.#cx.policy.policy;
  }
  putManifest(repo: string, digest: string | undefined, manifest: Manifest, ctx?: Context, options?: { tag?: string; requireReferences?: boolean }) {
    return manifests.putManifest(this.#cx, repo, digest, manifest, ctx, options);
  }
  getManifest(repo: string, digest: string) {
    return manifests.getManifest(this.#cx, repo, digest);
  }
  statManifest(repo: string, digest: string) {
    return manifests.statManifest(this.#cx, repo, digest);
  }
  getManifestByReference(repo: string, reference: string | Reference, options: { head: true }): Promise<ManifestInfo>;
  getManifestByReference(repo: string, reference: string | Reference, options?: { head?: false }): Promise<StoredManifest>;
  getManifestByReference(repo: string, reference: string | Reference, options?: { head?: boolean }): Promise<ManifestInfo | StoredManifest>;
  getManifestByReference(repo: string, reference: string | Reference, options?: { head?: boolean }) {
    return manifests.getManifestByReference(this.#cx, repo, reference, options);
  }
  deleteManifest(repo: string, digest: string, ctx?: Context) {
    return manifests.deleteManifest(this.#cx, repo, digest, ctx);
  }
  referrers(repo: string, digest: string, filter?: { artifactType?: string }) {
    return manifests.referrers(this.#cx, repo, digest, filter);
  }
  putTag(repo: string, tag: string, descriptor: Pick<Descriptor, 'digest'> & Partial<Descriptor>, ctx?: Context) {
    return tags.putTag(this.#cx, repo, tag, descriptor, ctx);
  }
  getTag(repo: string, tag: string) {
    return tags.getTag(this.#cx, repo, tag);
  }
  deleteTag(repo: string, tag: string, ctx?: Context) {
    return tags.deleteTag(this.#cx, repo, tag, ctx);
  }
  allTags(repo: string, page?: PageOptions) {
    return tags.allTags(this.#cx, repo, page);
  }
  tagDescriptors(repo: string, page?: PageOptions) {
    return tags.tagDescriptors(this.#cx, repo, page);
  }
  lookupTags(repo: string, descriptorOrDigest: string | Pick<Descriptor, 'digest'>) {
    return tags.lookupTags(this.#cx, repo, descriptorOrDigest);
  }
  tagHistory(repo: string, tag: string) {
    return tags.tagHistory(this.#cx, repo, tag);
  }
  tagDetails(repo: string, query?: TagQuery) {
    return tagDetails.tagDetails(this.#cx, repo, query);
  }
  catalog(page?: CatalogOptions) {
    return repositories.catalog(this.#cx, page);
  }
  deleteRepository(repo: string, ctx?: Context) {
    return repositories.deleteRepository(this.#cx, repo, ctx);
  }
  recordPulls(batch: readonly Pull[], options?: RecordPullsOptions): Promise<number> {
    return pulls.recordPulls(this.#cx, batch, options);
  }
  namespaceUsage(prefix: string): Promise<NamespaceRepository[]> {
    return pulls.namespaceUsage(this.#cx, prefix);
  }
  usage(options?: UsageOptions): Promise<Usage> {
    return sizes.usage(this.#cx, options);
  }
  checkQuota(repo: string, blob: { size: number; digest?: string }): Promise<void> {
    return sizes.checkQuota(this.#cx, repo, blob);
  }
  linkBlob(repo: string, blob: { digest: string; size: number }, ctx?: Context, options?: { place?: LockedAction }) {
    return blobs.linkBlob(this.#cx, repo, blob, ctx, options);
  }
  mountBlob(repo: string, digest: string, from: string, ctx?: Context): Promise<BlobInfo> {
    return blobs.mountBlob(this.#cx, repo, digest, from, ctx);
  }
  statBlob(repo: string, digest: string) {
    return blobs.statBlob(this.#cx, repo, digest);
  }
  unlinkBlob(repo: string, digest: string, ctx?: Context) {
    return blobs.unlinkBlob(this.#cx, repo, digest, ctx);
  }
  deleteBlob(digest: string, ctx?: Context) {
    return blobs.deleteBlob(this.#cx, digest, ctx);
  }
  whileBlobUnknown(digest: string, fn: LockedAction) {
    return blobs.whileBlobUnknown(this.#cx, digest, fn);
  }
  allBlobs(page?: PageOptions) {
    return blobs.allBlobs(this.#cx, page);
  }
  untaggedManifests(options?: { olderThan?: Date }) {
    return gc.untaggedManifests(this.#cx, options);
  }
  unreferencedBlobs(options?: { olderThan?: Date }) {
    return gc.unreferencedBlobs(this.#cx, options);
  }
  collectManifest(repo: string, digest: string, ctx?: Context, options?: { olderThan?: Date }) {
    return gc.collectManifest(this.#cx, repo, digest, ctx, options);
  }
  collectBlob(digest: string, ctx?: Context, options?: { olderThan?: Date; removeFile?: LockedAction }) {
    return gc.collectBlob(this.#cx, digest, ctx, options);
  }
  repositoryLinks(repo: string) {
    return retention.repositoryLinks(this.#cx, repo);
  }
  retireTags(repo: string, tagsToRetire: readonly TagToRetire[], ctx?: Context) {
    return retention.retireTags(this.#cx, repo, tagsToRetire, ctx);
  }
  retireManifests(repo: string, manifestsToRetire: readonly ManifestToRetire[], ctx: Context | undefined, options: { olderThan: Date }) {
    return retention.retireManifests(this.#cx, repo, manifestsToRetire, ctx, options);
  }
  createEvent(event: NewEvent) {
    return events.createEvent(this.#cx, event);
  }
  getEvents(query: EventQuery) {
    return events.getEvents(this.#cx, query);
  }
  async subscribe(fn: (event: Event) => void, options?: { query?: EventQuery; onError?: (error: unknown) => void }) {
    if (!this.#cx.open) throw new StoreError('STORE_CLOSED', `the store on ${this.#cx.location} is closed`);
    return this.#subscriptions.subscribe(fn, options);
  }
  pruneEvents(options: PruneOptions): Promise<PruneResult> {
    return maintenance.pruneEvents(this.#cx, options);
  }
  leaseJob(name: string, holder: string, ttlMs: number): Promise<boolean> {
    return maintenance.leaseJob(this.#cx, name, holder, ttlMs);
  }
  releaseJob(name: string, holder: string): Promise<boolean> {
    return maintenance.releaseJob(this.#cx, name, holder);
  }
  check(options?: { onProgress?: (done: number, total: number) => void }) {
    return inspection.check(this.#cx, options);
  }
  stats(options?: { top?: number }) {
    return inspection.stats(this.#cx, options);
  }
  // PostgreSQL's own tools (pg_dump, a base backup) copy a database.
  async backup(): Promise<never> {
    throw new StoreError('UNSUPPORTED', `the PostgreSQL store at ${this.#cx.location} makes no copies of itself: back it up with pg_dump or a base backup`);
  }
  // Connected, not a standby in recovery, not read-only by default.
  async checkWritable(): Promise<void> {
    const [row] = await this.#cx.read((sql) => sql<{ recovery: boolean; readOnly: string }[]>`
      SELECT pg_is_in_recovery() AS recovery, current_setting('default_transaction_read_only') AS "readOnly"`);
    if (row.recovery || row.readOnly === 'on') {
      throw new StoreError('DATABASE_READONLY', `${this.#cx.location} does not take writes (${row.recovery ? 'a standby in recovery' : 'read-only by default'})`);
    }
  }
  async close(): Promise<void> {
    await this.#subscriptions.close();
    await this.notifications.close();
    await this.uploads.close();
    await this.#cx.close();
  }
}

applyChecks(PostgresStore.prototype, STORE_CHECKS, 'reject');

/**
 * Refuses a database that is the target of a migration that has not
 * finished: it holds part of a registry (tables copied in part, foreign keys
 * dropped, sequences not yet moved past the copied ids), and writes to it
 * would collide with the rows still to come. The mark is the row
 * regmeta_migration, written in the transaction that starts the copy, its
 * finished_at in the one that ends it.
 * @throws StoreError DATABASE_INCOMPLETE; what the database throws (untranslated).
 */
async function checkMigrationFinished(sql: Sql, location: string): Promise<void> {
  const [{ marked }] = await sql<{ marked: boolean }[]>`SELECT to_regclass('regmeta_migration') IS NOT NULL AS marked`;
  if (!marked) return;
  const [row] = await sql<{ source_file: string; started_at: number }[]>`
    SELECT source_file, started_at FROM regmeta_migration WHERE finished_at IS NULL`;
  if (row === undefined) return;
  throw new StoreError(
    'DATABASE_INCOMPLETE',
    `${location} holds a migration from ${row.source_file} (begun ${new Date(row.started_at).toISOString()}) that has not finished`,
    { source: row.source_file, startedAt: row.started_at },
  );
}
