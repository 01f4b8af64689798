// The Store methods of keeping a registry in shape (tag details, pull statistics, sizes, retention, event pruning, job leases): part of the one contract, apart so that contract.ts stays readable.

import type { PruneOptions, PruneResult } from './maintenance.js';
import type { Context, TagDetailsPage, TagQuery } from './types.js';
import type { ManifestToRetire, NamespaceRepository, Pull, RecordPullsOptions, RepositoryLinks, TagToRetire, Usage, UsageOptions } from './types-governance.js';

/**
 * The methods of Store (contract.ts) that keep a registry in shape. Each is
 * one transaction and fails with the StoreError family, as every Store
 * method does.
 */
export interface GovernanceMethods {
  // --- tag details -------------------------------------------------------------
  /**
   * A page of the tags of `repo` with what each points at: digest, media
   * type, size (the manifest, its present children and every blob they
   * reference, each blob once), an index's platforms, when the tag was set
   * and moved, its manifest's last push, its last pull and pull count. Sorted
   * by `query.sort` (name in byte order, default; push or pull time, ties
   * broken by name) in `query.order`; only the tags that start with
   * `query.prefix` (sought in the index) and match `query.pattern` (kept in
   * code: a page is still full). Keyset pages of `query.n` (default 100, at
   * most MAX_PAGE_SIZE): `next` is the opaque cursor that `query.last` takes
   * for the page after, absent on the last page. One snapshot, a few
   * statements a page, whatever the repository holds.
   * @throws NotFoundError NAME_UNKNOWN; StoreError NAME_INVALID, ARGUMENT_INVALID
   * (an unknown field, sort or order; a pattern that is not one), TAG_INVALID
   * (a prefix that is not tag characters), PAGINATION_NUMBER_INVALID (`n`,
   * or a `last` that is no cursor of this sort and order).
   */
  tagDetails(repo: string, query?: TagQuery): Promise<TagDetailsPage>;

  // --- pull statistics and sizes -------------------------------------------------
  /**
   * Records pulls noted and added up by the caller (the server writes its
   * pulls in batches: no write per pull), all in one transaction. Each
   * entry adds its `count` (default 1) to its manifest's pull count (by
   * digest) and to its tag's (by tag), whatever was recorded before, so
   * that replicas sharing a database each add their own; each last-pull
   * time becomes the latest of the one recorded and the entry's, the
   * repository's too (a mirror's cache is evicted by it). An entry with
   * neither digest nor tag marks the repository's use alone. A repository,
   * manifest or tag that does not exist (deleted since the pull) is
   * skipped; one deleted and created again starts unpulled. With
   * `options.events`, a PULL event (actor '': many clients' pulls in one)
   * is written for each entry of a count above 0 whose manifest or tag is there, with the
   * manifest as its object (`repo@digest`, the tag's manifest for a tag
   * alone), its tag when by tag, and its count; without, no events: a pull
   * changes no content.
   * @returns how many repositories had a pull recorded.
   * @throws StoreError ARGUMENT_INVALID (`pulls` not an array of { repo,
   * digest?, tag?, at: a valid Date, count?: an integer ≥ 0 }, or `options`
   * not { events?: boolean }); NAME_INVALID, DIGEST_INVALID, TAG_INVALID.
   */
  recordPulls(pulls: readonly Pull[], options?: RecordPullsOptions): Promise<number>;
  /**
   * The repositories of the namespace `prefix` (those named `prefix/…`), in
   * byte order, each with when it was created and last pulled and the blobs
   * linked into it, read in one statement: what an eviction from a mirror's
   * cache weighs (the namespace's size counts each blob once).
   * @throws StoreError NAME_INVALID (a `prefix` that is not a repository name).
   */
  namespaceUsage(prefix: string): Promise<NamespaceRepository[]>;
  /**
   * The storage in use, as the store keeps it on every link, unlink and
   * delete (no scan): the registry's total (each blob once), each namespace
   * (each blob once across its repositories) with its repositories and its
   * quota; with `options.namespace`, that namespace only (listed even when it
   * has nothing), and with `options.repositories` too, each of its
   * repositories (each blob once). Blobs only: a manifest's own bytes are not
   * counted. Read in one snapshot.
   * @throws StoreError NAME_INVALID (a `namespace` that is not one: a name of
   * one path component); ARGUMENT_INVALID (`repositories` not a boolean);
   * DATABASE_INVALID (SQLite, read-only: a file older than the kept sizes).
   */
  usage(options?: UsageOptions): Promise<Usage>;
  /**
   * Refuses, as linkBlob would, `blob.size` more bytes in `repo`'s namespace
   * that its quota (StorePolicy.quotas) cannot take; a blob `blob.digest`
   * the namespace already has (in any of its repositories) costs nothing.
   * What a registry asks before an upload's bytes, where their size is
   * known; linkBlob checks again, exactly, in its transaction. Reads
   * nothing when no quota applies to the namespace.
   * @throws StoreError NAME_INVALID, DIGEST_INVALID, SIZE_INVALID (not a
   * non-negative integer); DENIED (over the quota, `detail`: { namespace,
   * usage, limit, size }); DATABASE_INVALID (SQLite, read-only: a file older than the kept sizes).
   */
  checkQuota(repo: string, blob: { size: number; digest?: string }): Promise<void>;

  // --- retention ----------------------------------------------------------------
  /**
   * Every tag of `repo` with its target and when it was set, and every
   * manifest with its last push, its subject and the children it lists,
   * read in one snapshot: what a retention plan weighs, to know what an
   * index, a subject or a tag keeps alive. A repository that is not there
   * has none: { tags: [], manifests: [] }.
   * @throws StoreError NAME_INVALID.
   */
  repositoryLinks(repo: string): Promise<RepositoryLinks>;
  /**
   * Retention's delete of tags of `repo` (not their manifests), all in one
   * transaction: each goes only while it still points at `digest`, has not
   * been set since `updatedAt` and its manifest has not been pushed since
   * `pushedAt`, so that a tag moved or pushed again since the plan stays. A
   * DELETE TAG event each, with the entry's reason. A tag (or repository)
   * that is gone is skipped.
   * @returns the tags deleted, in the order given.
   * @throws StoreError ARGUMENT_INVALID (not an array of { tag, digest,
   * updatedAt, pushedAt } with valid Dates, or more than
   * MAX_RETIRE_BATCH entries), TAG_INVALID, DIGEST_INVALID, NAME_INVALID.
   */
  retireTags(repo: string, tags: readonly TagToRetire[], ctx?: Context): Promise<string[]>;
  /**
   * Retention's delete of manifests of `repo`, all in one transaction, each
   * by collectManifest's rule checked in it: untagged, last pushed before
   * `options.olderThan`, listed by no index of `repo` and with no present
   * subject. Deleting one may free another of the list (the children of an
   * index, the referrers of a subject), which then goes too, in any order
   * given; the rest stay, without error. A DELETE MANIFEST event each, with
   * the entry's reason.
   * @returns the digests deleted, in the order deleted.
   * @throws StoreError ARGUMENT_INVALID (not an array of { digest }, more
   * than MAX_RETIRE_BATCH entries, or no valid `olderThan`), DIGEST_INVALID, NAME_INVALID.
   */
  retireManifests(repo: string, manifests: readonly ManifestToRetire[], ctx: Context | undefined, options: { olderThan: Date }): Promise<string[]>;

  // --- keeping the store in shape ---------------------------------------------
  /**
   * Deletes the events published before `options.before`, the oldest first,
   * at most `options.limit` (default: all) in this one transaction: a large
   * prune is many short calls. Seqs stay monotonic, so cursors, subscribers
   * and webhooks go on; the horizon (the highest seq pruned) is kept: a
   * webhook cursor below it has missed events (NotificationStatus.missed).
   * `options.dryRun` counts and writes nothing (`{ before: new Date(0), dryRun: true }` reads the horizon).
   * @returns how many events went (would go) and the horizon.
   * @throws StoreError ARGUMENT_INVALID (not { before: a valid Date, limit?: a
   * positive integer, dryRun?: boolean }); DATABASE_*, STORE_CLOSED.
   */
  pruneEvents(options: PruneOptions): Promise<PruneResult>;
  /**
   * Takes or renews the lease on the scheduled job `name` for `holder`, for
   * `ttlMs` from now (PostgreSQL: by the database's clock): granted when no
   * one holds it, `holder` does, or it ran out. One replica at a time runs a job.
   * @returns whether `holder` holds the lease now.
   * @throws StoreError ARGUMENT_INVALID (a name of 1 to 100 characters, a
   * holder of 1 to 255, `ttlMs` a positive integer); DATABASE_*, STORE_CLOSED.
   */
  leaseJob(name: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Ends `holder`'s lease on job `name`, if held, for another to take at once. @returns whether it was held. @throws StoreError as leaseJob. */
  releaseJob(name: string, holder: string): Promise<boolean>;
}
