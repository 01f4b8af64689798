// createRegistryHandler's options, each documented: apart from handler.ts, which assembles and runs the handler from them.

import type { S3Options } from '../blobstore/index.js';
import type { MetadataStore, Store } from '../store/index.js';
import type { AccessRules } from './access.js';
import type { AuthLimits } from './auth.js';
import type { ConnectionLimits } from './connections.js';
import type { FaultContext } from './faults.js';
import type { MetricsOptions } from './metrics.js';
import type { MirrorOptions } from './mirror/options.js';
import type { PullOptions } from './pulls.js';
import type { RequestLogEntry } from './request-log.js';

/** createRegistryHandler's options: the store, the data directory, and the registry's switches and limits. */
export interface RegistryOptions extends Partial<ConnectionLimits>, Partial<AuthLimits> {
  /**
   * The metadata: a MetadataStore (SQLite, used as it is, through asyncStore)
   * or any Store (either backend).
   */
  store: MetadataStore | Store;
  /** Holds blobs/ and uploads/ (created when missing), unless `storage` keeps the blobs elsewhere. */
  dataDir: string;
  /**
   * Keep the blobs in this S3-compatible bucket instead of under `dataDir`.
   * Credentials come from the AWS SDK's standard chain (environment, shared
   * config, a role); the SDK is loaded only when this is given.
   */
  storage?: S3Options;
  /**
   * Answer a blob GET with a 307 to a pre-signed URL of the storage, valid
   * 20 minutes (distribution's default), so that the bytes do not pass through the
   * registry (distribution's `redirect`). Where the storage has no such URLs
   * (a directory) the registry serves the bytes itself. Default false.
   */
  storageRedirect?: boolean;
  /**
   * Upstream registries served read-only under namespaces of this one, as a
   * pull-through cache: a pull of `PREFIX/<name>` fetches `<name>` from the
   * upstream, keeps it and serves it. Writes into those namespaces are
   * refused (405 UNSUPPORTED).
   */
  mirrors?: MirrorOptions[];
  /**
   * The prefix of the mirror that answers pulls of names outside every
   * mirror's namespace that this registry does not have (a Docker daemon's
   * `registry-mirrors` sends `library/alpine`, without a prefix).
   */
  mirrorDefault?: string;
  /**
   * An htpasswd file of bcrypt hashes: when given, every request must
   * authenticate, unless access rules grant anonymous clients something.
   */
  htpasswd?: string;
  /**
   * Users who may read everyone's events (with no htpasswd, everyone may);
   * with access rules, also users who may do everything (added to the rules' admins).
   */
  admins?: string[];
  /**
   * Access rules, or the YAML/JSON file to read them from: who may pull, push
   * and delete where (src/server/access.ts). Without them whoever is let in
   * may do everything.
   */
  access?: AccessRules | string;
  /** Refuse every write with 405 UNSUPPORTED. */
  readOnly?: boolean;
  /**
   * Where clients reach the registry, as scheme://host[:port] (behind a
   * proxy or a load balancer, not the address it listens on): Location
   * headers are then absolute URLs under it, and startRegistry's webhooks
   * name their targets by it. Default: Location headers are paths, and
   * webhooks name the listen address.
   */
  publicUrl?: string;
  /** Manifest, tag and blob deletes (default true; false answers 405 UNSUPPORTED). */
  deletes?: boolean;
  /** The largest blob accepted, in bytes (default 64 GiB). */
  maxBlobSize?: number;
  /** Upload sessions one client address may hold open at once (default 256; 0: no cap). */
  maxUploadsPerAddress?: number;
  /** Milliseconds an upload session may sit idle before it is dropped with its bytes (default a day). */
  uploadTtl?: number;
  /** Free disk (bytes) below which GET /readyz answers 503 (default 1 GiB; 0: any will do). */
  minFreeDisk?: number;
  /**
   * Receives one entry per finished request, probes (/healthz, /readyz)
   * included: a logger may want those at a lower level.
   */
  log?: (entry: RequestLogEntry) => void;
  /**
   * Receives server faults (5xx) and their detail, which the client never
   * sees, and, once per blob, a blob linked in the store whose file is gone;
   * with the request they happened in, when there was one.
   */
  onError?: (error: unknown, request?: FaultContext) => void;
  /**
   * Receives what is wrong but not fatal, one line each: at startup,
   * htpasswd entries that are not bcrypt; later, an admin's move or delete
   * of an immutable tag. Default: console.warn.
   */
  onWarning?: (message: string) => void;
  /**
   * Prometheus metrics (src/server/metrics.ts), at GET /metrics and in
   * `handler.metrics`: true, or the options. Off by default: a handler
   * without them does none of their work.
   */
  metrics?: boolean | MetricsOptions;
  /** Pull statistics (on by default): each manifest's and tag's pulls, counted in memory and written in batches. */
  pulls?: PullOptions;
}
