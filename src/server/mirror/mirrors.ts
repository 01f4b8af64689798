// Mirrors in front of the registry's own handlers: which upstream a
// repository name belongs to (by its prefix, by containerd's ?ns=, or by the
// default mirror for names that are not here), the refusal of writes into a
// mirror's namespace, and the pull routes handed to the mirror's code.

import { NotFoundError } from '../../store/index.js';
import { HttpError } from '../errors.js';
import type { RequestContext } from '../http.js';
import type { Route } from '../routes.js';
import { closeDownloads, pullBlob } from './blobs.js';
import { pullManifest } from './manifests.js';
import type { BlobStore } from '../../blobstore/index.js';
import type { Store } from '../../store/index.js';
import type { ResolvedMirror } from './options.js';
import type { PullRecorder } from '../pulls.js';
import { listTags, referrers } from './tags.js';
import type { Mirror, MirrorCounters, MirrorParts, MirrorTarget, Next } from './types.js';
import { Upstream } from './upstream.js';

/** What createMirrors builds the mirrors from: the registry's options and parts. */
interface MirrorsSetup {
  mirrorDefault?: string;
  dataDir: string;
  store: Store;
  blobs: BlobStore;
  onError: (error: unknown) => void;
  onWarning?: (message: string) => void;
  /** The metrics' counters, when the metrics are on. */
  counters?: MirrorCounters;
  /** The registry's recorder, which notes each pull of a cached repository (its owner closes it). */
  pulls: PullRecorder;
}

/** The mirrors of `mirrors` (checked by resolveMirrors), their pulls noted by the registry's recorder. */
export function createMirrors(mirrors: readonly ResolvedMirror[], setup: MirrorsSetup): Mirrors {
  const { pulls } = setup;
  const parts: MirrorParts = {
    store: setup.store,
    blobs: setup.blobs,
    dataDir: setup.dataDir,
    onWarning: setup.onWarning ?? ((message: string) => console.warn(message)),
    counters: setup.counters ?? { pull() {}, upstreamBytes() {}, upstreamError() {} },
    notePull: (repo) => pulls.note(repo),
  };
  return new Mirrors(mirrors, setup.mirrorDefault, parts);
}

/** The route kinds a mirror answers for pulls; every other route in its namespace is a write. */
const PULLS = new Set<Route['kind']>(['manifest', 'blob', 'tags', 'referrers']);

/** The registry's mirrors. */
export class Mirrors {
  readonly #mirrors: Mirror[];
  readonly #default: Mirror | undefined;
  readonly parts: MirrorParts;

  /** @param mirrors checked by resolveMirrors; `defaultPrefix` one of their prefixes. */
  constructor(mirrors: readonly ResolvedMirror[], defaultPrefix: string | undefined, parts: MirrorParts) {
    this.#mirrors = mirrors.map((options) => ({ options, upstream: new Upstream(options) }));
    this.#default = this.#mirrors.find((m) => m.options.prefix === defaultPrefix);
    this.parts = parts;
  }

  /** The mirror whose namespace holds `name`, or undefined. */
  find(name: string): MirrorTarget | undefined {
    for (const mirror of this.#mirrors) {
      const { prefix } = mirror.options;
      if (name.startsWith(prefix) && name.charCodeAt(prefix.length) === 0x2f) return { mirror, remote: name.slice(prefix.length + 1) };
    }
    return undefined;
  }

  /**
   * The route with its name in a mirror's namespace where containerd's
   * `?ns=<prefix>` names a mirror (`/v2/library/alpine/…?ns=docker.io`);
   * any other route as it is.
   */
  rewrite(route: Route, c: RequestContext): Route {
    // The raw target first: most requests carry no query, and parsing one costs.
    if (!('name' in route) || !c.req.url?.includes('ns=')) return route;
    const ns = c.url.searchParams.get('ns');
    const mirror = this.#mirrors.find((m) => m.options.prefix === ns);
    if (mirror === undefined || this.find(route.name) !== undefined) return route;
    return { ...route, name: `${mirror.options.prefix}/${route.name}` };
  }

  /**
   * Answers a request: a route in a mirror's namespace by the mirror (a
   * write refused), a pull of a name this registry does not have by the
   * default mirror when there is one (after `authorize` allows the
   * mirror's name), anything else by `next`.
   * @throws HttpError UNSUPPORTED (a write into a mirror's namespace); what
   * `next`, `authorize` and the mirror's handlers throw.
   */
  async serve(c: RequestContext, method: string, route: Route, next: Next, authorize: (route: Route) => void): Promise<void> {
    // Tag details show what this registry holds of a repository, cached or not: no upstream is asked.
    if (!('name' in route) || route.kind === 'tagDetails') return next(route);
    const target = this.find(route.name);
    if (target !== undefined) return this.#pull(c, method, route, target, next);
    if (this.#default === undefined || !PULLS.has(route.kind) || (method !== 'GET' && method !== 'HEAD')) return next(route);
    try {
      return await next(route);
    } catch (error) {
      if (!(error instanceof NotFoundError && error.code === 'NAME_UNKNOWN') || c.res.headersSent) throw error;
    }
    const mirrored = { ...route, name: `${this.#default.options.prefix}/${route.name}` } as Route & { name: string };
    authorize(mirrored);
    return this.#pull(c, method, mirrored, { mirror: this.#default, remote: route.name }, next);
  }

  #pull(c: RequestContext, method: string, route: Route & { name: string }, target: MirrorTarget, next: Next): void | Promise<void> {
    if (!PULLS.has(route.kind) || (method !== 'GET' && method !== 'HEAD')) {
      const { prefix, url } = target.mirror.options;
      throw new HttpError('UNSUPPORTED', `${prefix}/ is a mirror of ${url}, which is read-only: push to a repository outside it`);
    }
    switch (route.kind) {
      case 'manifest':
        return pullManifest(this.parts, c, target, route, next);
      case 'blob':
        return pullBlob(this.parts, c, target, route, next);
      case 'tags':
        return listTags(this.parts, c, target, route, next);
      case 'referrers':
        return referrers(this.parts, c, target, route, next);
    }
  }

  /** Stops the downloads running and closes the upstreams' connections (never rejects). */
  async close(): Promise<void> {
    const downloads = closeDownloads(this.parts);
    for (const mirror of this.#mirrors) mirror.upstream.close();
    await downloads;
  }
}
