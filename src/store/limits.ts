// The store's limits, each written once. The server reading a manifest body,
// the CLI paging through events and the store checking what it is given
// must agree on them, so they read them here or from `store.limits`.

import { StoreError } from './errors.js';
import type { StoreOptions } from './types.js';

const MIB = 1024 * 1024;

/** How long a write waits for another connection's lock by default, in ms. */
export const DEFAULT_BUSY_TIMEOUT = 5000;

/** How often subscribe() looks for other processes' commits by default, in ms. */
export const DEFAULT_POLL_INTERVAL = 100;

/** Pages a backup copies between progress reports when the caller names no number: small enough for a lively report. */
export const DEFAULT_BACKUP_PAGES_PER_STEP = 1024;

/**
 * How long the PostgreSQL store waits on its server, by default, in seconds:
 * bounds that keep a request from hanging while the server is away, so that
 * it is answered DATABASE_UNAVAILABLE within a few seconds instead.
 */
export const DEFAULT_POSTGRES_TIMEOUTS = Object.freeze({
  /** To open a connection: TCP, TLS and authentication (a server that does not answer at all). */
  connectTimeout: 2,
  /** For a free connection of the pool when every one is busy: as long as a write waits for a lock by default. */
  queueTimeout: 5,
  /**
   * The longest pause between attempts to reconnect to a server that is
   * away: writes resume within about this long of its return. Attempts are
   * made only while requests wait (and by the listener of event delivery).
   */
  reconnectDelay: 0.5,
});

/** The largest manifest accepted by default: the spec's suggested floor for what registries must take. */
const DEFAULT_MAX_MANIFEST_SIZE = 4 * MIB;

/**
 * The most rows one call returns: getEvents' perPage, and a batch of
 * subscribe's delivery. Enough for a screenful many times over, small
 * enough that one call never holds thousands of rows in memory.
 */
export const MAX_PAGE_SIZE = 1000;

/**
 * The most entries one retireTags or retireManifests call takes: one
 * transaction's worth, short enough that a server's writers wait for it
 * milliseconds, not seconds.
 */
export const MAX_RETIRE_BATCH = 10_000;

/** Actor names, object ids and the like: long enough for any digest reference, short enough for an index. */
const MAX_TEXT_LENGTH = 1024;

/**
 * How deeply a manifest's arrays and objects may nest. Real manifests nest
 * about five levels (an index's manifests, a descriptor, its platform, the
 * platform's features). Go's encoding/json, which distribution, skopeo and
 * containerd decode with, gives up past 10,000; a few hundred is generous
 * for anything real and keeps every recursive walk of the value shallow.
 */
export const MAX_MANIFEST_DEPTH = 256;

/** The limits a store enforces, as `store.limits` reports them. */
export interface StoreLimits {
  /** The largest manifest putManifest accepts, in bytes. */
  readonly maxManifestSize: number;
  /** How deeply a manifest's arrays and objects may nest. */
  readonly maxManifestDepth: number;
  /** The largest perPage getEvents accepts. */
  readonly maxPageSize: number;
  /** The longest actor, user or object id the event log takes. */
  readonly maxTextLength: number;
  /** How long a write waits for another connection's lock, in ms. */
  readonly busyTimeout: number;
}

/** The effective limits of a store opened with `options`. */
export function limitsOf(options: StoreOptions): StoreLimits {
  return Object.freeze({
    maxManifestSize: options.maxManifestSize ?? DEFAULT_MAX_MANIFEST_SIZE,
    maxManifestDepth: MAX_MANIFEST_DEPTH,
    maxPageSize: MAX_PAGE_SIZE,
    maxTextLength: MAX_TEXT_LENGTH,
    busyTimeout: options.busyTimeout ?? DEFAULT_BUSY_TIMEOUT,
  });
}

/**
 * A text field of the event log (actor, user, object id): a string of at
 * most MAX_TEXT_LENGTH characters without NUL, or null when absent.
 * @throws StoreError EVENT_INVALID.
 */
export function checkText(value: unknown, field: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || value.length > MAX_TEXT_LENGTH || value.includes('\0')) {
    throw new StoreError('EVENT_INVALID', `${field} must be a string of at most ${MAX_TEXT_LENGTH} characters without NUL`);
  }
  return value;
}
