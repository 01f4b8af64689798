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
}

/** Answers a route as the registry itself does (from what is cached). */
export type Next = (route: Route) => void | Promise<void>;
