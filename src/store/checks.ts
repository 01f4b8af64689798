// The checks of every contract method's arguments, in one table per
// interface, keyed by method name, and the one way a backend puts them in
// front of its methods. Each check throws the StoreError the contract names
// for its argument, before any transaction; what needs the database (is
// that repository there?) stays with the backend. A method whose rules also
// compute what the backend goes on with (putManifest's payload, an event,
// an event query) runs those rules itself, once: payload.ts, events.ts.

import { checkActor, checkBatchLimit, checkBlob, checkEndpoint, checkPage, checkPulls, checkTagTarget, checkTime, checkTop } from './arguments.js';
import { checkManifestsToRetire, checkTagsToRetire } from './arguments.js';
import type { NotificationCursors, Store, UploadSessions } from './contract.js';
import { StoreError } from './errors.js';
import { checkCatalogPrefix, checkDigest, checkReference, checkRepository, checkTag, isNamespace, parseReference } from './grammar.js';
import { tagDetailsParams } from './tag-details.js';
import { checkDelivered, checkLease, checkPrune, checkRelease } from './maintenance.js';
import { checkClaim, checkCount, checkIdleBefore, checkSessionId, checkUploadText, DEFAULT_IDLE_LIMIT } from './uploads.js';

type Check<F> = F extends (...args: infer A) => unknown ? (...args: A) => void : never;

/** The checks of the methods of `T`: each takes the method's arguments and throws what is wrong with them. */
type Checks<T> = { readonly [K in keyof T]?: Check<T[K]> };

function repositoryAndDigest(repo: string, digest: string): void {
  checkRepository(repo);
  checkDigest(digest);
}

function repositoryAndTag(repo: string, tag: string): void {
  checkRepository(repo);
  checkTag(tag);
}

function tagPage(repo: string, page?: { n?: number; last?: string }): void {
  checkRepository(repo);
  checkPage(page, checkTag);
}

function olderThan(options?: { olderThan?: Date }): void {
  checkTime(options?.olderThan);
}

/** The checks of Store's methods. */
export const STORE_CHECKS: Checks<Store> = {
  putManifest(repo, _digest, _manifest, ctx, options) {
    checkRepository(repo);
    if (options?.tag !== undefined) checkTag(options.tag);
    checkActor(ctx);
  },
  getManifest: repositoryAndDigest,
  statManifest: repositoryAndDigest,
  getManifestByReference(repo, reference) {
    checkRepository(repo);
    if (typeof reference === 'string') parseReference(reference);
    else checkReference(reference);
  },
  deleteManifest(repo, digest, ctx) {
    repositoryAndDigest(repo, digest);
    checkActor(ctx);
  },
  referrers(repo, digest, filter) {
    repositoryAndDigest(repo, digest);
    const artifactType = filter?.artifactType;
    if (artifactType !== undefined && typeof artifactType !== 'string') {
      throw new StoreError('MANIFEST_INVALID', 'artifactType must be a string');
    }
  },
  putTag(repo, tag, descriptor, ctx) {
    repositoryAndTag(repo, tag);
    checkTagTarget(descriptor);
    checkActor(ctx);
  },
  getTag: repositoryAndTag,
  deleteTag(repo, tag, ctx) {
    repositoryAndTag(repo, tag);
    checkActor(ctx);
  },
  allTags: tagPage,
  tagDescriptors: tagPage,
  lookupTags(repo, descriptorOrDigest) {
    checkRepository(repo);
    checkDigest(typeof descriptorOrDigest === 'string' ? descriptorOrDigest : descriptorOrDigest?.digest);
  },
  tagHistory: repositoryAndTag,
  tagDetails(repo, query) {
    checkRepository(repo);
    tagDetailsParams(query);
  },
  catalog(page) {
    checkPage(page, checkRepository);
    checkCatalogPrefix(page);
  },
  deleteRepository(repo, ctx) {
    checkRepository(repo);
    checkActor(ctx);
  },
  recordPulls: checkPulls,
  namespaceUsage(prefix) {
    checkRepository(prefix);
  },
  usage(options) {
    const namespace = options?.namespace;
    if (namespace !== undefined && !isNamespace(namespace)) {
      throw new StoreError('NAME_INVALID', `invalid namespace ${JSON.stringify(String(namespace)).slice(0, 90)}: a name of one path component`);
    }
    if (options?.repositories !== undefined && typeof options.repositories !== 'boolean') {
      throw new StoreError('ARGUMENT_INVALID', 'usage: repositories must be a boolean');
    }
  },
  linkBlob(repo, blob, ctx) {
    checkRepository(repo);
    checkBlob(blob);
    checkActor(ctx);
  },
  mountBlob(repo, digest, from, ctx) {
    repositoryAndDigest(repo, digest);
    checkRepository(from);
    checkActor(ctx);
  },
  statBlob: repositoryAndDigest,
  unlinkBlob(repo, digest, ctx) {
    repositoryAndDigest(repo, digest);
    checkActor(ctx);
  },
  deleteBlob(digest, ctx) {
    checkDigest(digest);
    checkActor(ctx);
  },
  whileBlobUnknown(digest) {
    checkDigest(digest);
  },
  allBlobs(page) {
    checkPage(page, checkDigest);
  },
  untaggedManifests: olderThan,
  unreferencedBlobs: olderThan,
  collectManifest(repo, digest, ctx, options) {
    repositoryAndDigest(repo, digest);
    checkActor(ctx);
    olderThan(options);
  },
  collectBlob(digest, ctx, options) {
    checkDigest(digest);
    checkActor(ctx);
    olderThan(options);
  },
  repositoryLinks(repo) {
    checkRepository(repo);
  },
  retireTags(repo, tags, ctx) {
    checkRepository(repo);
    checkTagsToRetire(tags);
    checkActor(ctx);
  },
  retireManifests(repo, manifests, ctx, options) {
    checkRepository(repo);
    checkManifestsToRetire(manifests, options);
    checkActor(ctx);
  },
  stats(options) {
    checkTop(options?.top);
  },
  pruneEvents: checkPrune,
  leaseJob: checkLease,
  releaseJob: checkRelease,
};

/** The checks of UploadSessions' methods. */
export const UPLOAD_CHECKS: Checks<UploadSessions> = {
  open(repo, client, max) {
    checkRepository(repo);
    checkUploadText(client, 'client');
    checkCount(max, 'max');
  },
  get(repo, id) {
    checkRepository(repo);
    checkSessionId(id);
  },
  claim(repo, id, owner, leaseMs) {
    checkRepository(repo);
    checkClaim(id, owner, leaseMs);
  },
  renew: checkClaim,
  commit(id, owner, size) {
    checkSessionId(id);
    checkUploadText(owner, 'owner');
    checkCount(size, 'size');
  },
  release(id, owner) {
    checkSessionId(id);
    checkUploadText(owner, 'owner');
  },
  // An id the store cannot have issued is a session that is not there: end and expire answer false.
  end(repo) {
    checkRepository(repo);
  },
  idle(idleBefore, limit) {
    checkIdleBefore(idleBefore);
    checkBatchLimit(limit ?? DEFAULT_IDLE_LIMIT);
  },
  expire(_id, idleBefore) {
    checkIdleBefore(idleBefore);
  },
};

/** The checks of NotificationCursors' methods (release never throws: it has none). */
export const CURSOR_CHECKS: Checks<NotificationCursors> = {
  open: checkEndpoint,
  eventsAfter(endpoint, limit) {
    checkEndpoint(endpoint);
    checkBatchLimit(limit);
  },
  skipPruned: checkEndpoint,
  advance(endpoint, delivered) {
    checkEndpoint(endpoint);
    checkDelivered(delivered);
  },
  recordFailure: checkEndpoint,
  remove: checkEndpoint,
  claim: checkEndpoint,
};

type Method = (this: unknown, a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown) => unknown;

/**
 * Puts each check of `checks` in front of the method of the same name on
 * `prototype`, once, when a backend's class is defined: a synchronous
 * backend's method throws what its check throws; an asynchronous one's
 * (`failure` 'reject') returns a rejected promise, never throwing. Methods
 * take at most five arguments: passed as such, a call allocates nothing.
 */
export function applyChecks<T>(prototype: T, checks: Checks<unknown>, failure: 'throw' | 'reject'): void;
export function applyChecks(prototype: Record<string, Method>, checks: Record<string, Method>, failure: 'throw' | 'reject'): void {
  for (const [name, check] of Object.entries(checks)) {
    const method = prototype[name];
    if (typeof method !== 'function') throw new TypeError(`no method ${name} to check`);
    const checked: Method =
      failure === 'throw'
        ? function (a, b, c, d, e) {
            check(a, b, c, d, e);
            return method.call(this, a, b, c, d, e);
          }
        : function (a, b, c, d, e) {
            try {
              check(a, b, c, d, e);
            } catch (error) {
              return Promise.reject(error);
            }
            return method.call(this, a, b, c, d, e);
          };
    Object.defineProperty(prototype, name, { value: checked, writable: true, configurable: true });
  }
}
