// What the mirror's handlers share: one upstream with its state, a
// repository in its namespace, and the registry's parts they use.

import type { BlobStore } from '../../blobstore/index.js';
import type { Store } from '../../store/index.js';
import type { Route } from '../routes.js';
import type { ResolvedMirror } from './options.js';
import type { Upstream } from './upstream.js';

/** One upstream, as the mirror's handlers see it. */
export interface Mirror {
  readonly options: ResolvedMirror;
  readonly upstream: Upstream;
}

/** A repository in a mirror's namespace: the mirror, and the upstream's name for it. */
export interface MirrorTarget {
  readonly mirror: Mirror;
  /** The repository's name upstream: the local name without the mirror's prefix. */
  readonly remote: string;
}

/** What the mirrors use of the registry. */
export interface MirrorParts {
  store: Store;
  blobs: BlobStore;
  /** The data directory: downloads in progress are spooled under it. */
  dataDir: string;
  /** Receives what is wrong but served anyway (a stale tag while the upstream is down), one line each. */
  onWarning: (message: string) => void;
  /** Counts for the metrics (no-ops when they are off). */
  counters: MirrorCounters;
  /** Notes a pull of a manifest in a mirror's namespace (cached or not): gc evicts the repositories pulled longest ago. */
  notePull(repo: string): void;
}

/** What the mirrors count, by mirror prefix. */
export interface MirrorCounters {
  /**
   * A pull in a mirror's namespace: `hit` answered from the cache, `miss`
   * fetched from the upstream, `revalidated` a tag checked and unchanged,
   * `stale` a cached tag served because the upstream could not answer.
   */
  pull(prefix: string, kind: 'manifest' | 'blob' | 'tags' | 'referrers', result: 'hit' | 'miss' | 'revalidated' | 'stale'): void;
  /** Bytes read from the upstream (bodies: manifests, blobs, tag lists). */
  upstreamBytes(prefix: string, bytes: number): void;
  /** A request to the upstream that failed: unreachable, timed out, 5xx or 429, refused credentials, a corrupt or cut body. */
  upstreamError(prefix: string): void;
}

/** Answers a route as the registry itself does (from what is cached). */
export type Next = (route: Route) => void | Promise<void>;
