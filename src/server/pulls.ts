// Pull statistics without a write per pull: each pull is noted in memory,
// added up per (repository, digest, tag), and written to the store in one
// batch at most every few seconds and at close. Every replica adds its own
// counts (the store adds, never sets), and a crash loses at most the pulls of
// one interval, never a manifest or a tag. The mirrors note their
// repositories' use through the same recorder: gc's eviction reads it.

import type { Pull, Store } from '../store/index.js';

/** How often noted pulls are written at most (ms): statistics and gc's idleness are read in hours or days, so seconds lost in a crash do not matter. */
export const DEFAULT_PULL_FLUSH_INTERVAL = 5_000;

/**
 * The most entries one store call takes: a larger flush is written in
 * several short transactions, with the event loop let go between them (a
 * SQLite batch runs on it: requests wait milliseconds, not tens of them).
 */
const MAX_BATCH = 250;

/** RegistryOptions.pulls: the pull statistics and their events. */
export interface PullOptions {
  /**
   * Count the pulls of each manifest and tag and keep when each was last
   * pulled (default true): a manifest GET counts its manifest (by tag, the
   * tag too); a HEAD by tag counts the tag alone (containerd, and so
   * Kubernetes, resolves a tag by HEAD, then GETs by digest, which counts
   * the manifest); a HEAD by digest and blobs are not counted.
   */
  stats?: boolean;
  /** Milliseconds between the batches that write them, at most (default 5 s); what is noted is written at close too. */
  flushInterval?: number;
  /**
   * Write a PULL event per pulled manifest or tag per batch, with its count,
   * for webhooks (default false: most receivers want only writes, and a
   * batch keeps a pull storm from flooding one). Needs `stats`.
   */
  events?: boolean;
}

/** @throws TypeError when `options.flushInterval` is not a number of milliseconds above 0. */
export function checkPullOptions(options: PullOptions | undefined): void {
  const interval = options?.flushInterval;
  if (interval !== undefined && (typeof interval !== 'number' || !(interval > 0))) throw new TypeError('pulls.flushInterval: expected milliseconds above 0');
}

/**
 * The recorder a registry needs, over checked options: for the statistics,
 * or for the mirrors (gc's eviction reads their repositories' use) even
 * with the statistics off.
 */
export function pullRecorderOf(
  options: PullOptions | undefined,
  mirrors: boolean,
  store: Store,
  onError: (error: unknown) => void,
  onFlush?: (written: boolean, entries: number) => void,
): PullRecorder | undefined {
  if (options?.stats === false && !mirrors) return undefined;
  return new PullRecorder(store, { interval: options?.flushInterval, events: options?.events === true, onError, onFlush });
}

/** What a PullRecorder writes with, and how often. */
interface PullRecorderOptions {
  /** Milliseconds between flushes at most (default DEFAULT_PULL_FLUSH_INTERVAL). */
  interval?: number;
  /** Write a PULL event per entry of each flush (Store.recordPulls' `events`). */
  events?: boolean;
  /** Hears of a batch the store refused: it stays noted and is written with the next (dropped at close). */
  onError: (error: unknown) => void;
  /** Hears of each store call of a flush: whether it was written, and how many entries it held (the metrics). */
  onFlush?: (written: boolean, entries: number) => void;
}

/** One entry: the pulls of a repository's manifest by digest, of a manifest by tag, of a tag alone, or the repository's use alone. */
interface Noted {
  repo: string;
  digest: string | undefined;
  tag: string | undefined;
  count: number;
  /** The latest pull, epoch ms. */
  at: number;
}

/** Pulls noted in memory and written to the store in batches. */
export class PullRecorder {
  readonly #store: Store;
  readonly #options: PullRecorderOptions;
  readonly #interval: number;
  /** The entries not yet written, by keyOf. */
  #pending = new Map<string, Noted>();
  #timer: NodeJS.Timeout | undefined;
  /** The flush running now: flushes run one at a time, in order. */
  #flushing: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(store: Store, options: PullRecorderOptions) {
    this.#store = store;
    this.#options = options;
    // setTimeout fires at once for more than 2^31-1 ms: a longer interval waits that long.
    this.#interval = Math.min(options.interval ?? DEFAULT_PULL_FLUSH_INTERVAL, 2 ** 31 - 1);
  }

  /**
   * Notes `count` pulls now: of manifest `digest` (by `tag` when given: the
   * tag's too), of `tag` alone (a HEAD that resolves it), or, with neither, the repository's use alone (a mirror's).
   * Never throws, never waits.
   */
  note(repo: string, digest?: string, tag?: string, count = 1): void {
    const key = keyOf(repo, digest, tag);
    const at = Date.now();
    const noted = this.#pending.get(key);
    if (noted !== undefined) {
      noted.count += count;
      noted.at = at;
      return;
    }
    this.#pending.set(key, { repo, digest, tag, count, at });
    this.#schedule();
  }

  /** Writes what is noted, and then once more what was noted meanwhile; never rejects. */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#flushing = this.#flushing.then(() => this.#write());
    return this.#flushing;
  }

  /** Writes what is noted and stops the timer; notes after it are not written. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#closed) return;
    // Unref'd: noted pulls never keep a process alive; close() writes them.
    this.#timer = setTimeout(() => void this.flush(), this.#interval).unref();
  }

  async #write(): Promise<void> {
    if (this.#pending.size === 0) return;
    const entries = [...this.#pending.values()];
    this.#pending = new Map();
    for (let start = 0; start < entries.length; start += MAX_BATCH) {
      if (start > 0) await new Promise((resolve) => setImmediate(resolve));
      const batch = entries.slice(start, start + MAX_BATCH);
      try {
        await this.#store.recordPulls(batch.map(toPull), { events: this.#options.events === true });
        this.#options.onFlush?.(true, batch.length);
      } catch (error) {
        this.#options.onFlush?.(false, batch.length);
        this.#keep(entries.slice(start), error);
        return;
      }
    }
  }

  /** Keeps what a refused flush did not write, added to what was noted since, for the next try. */
  #keep(unwritten: Noted[], error: unknown): void {
    const fate = this.#closed ? 'dropped at close' : 'kept for the next try';
    const what = `${unwritten.length} ${unwritten.length === 1 ? 'entry' : 'entries'}`;
    this.#options.onError(new Error(`cannot record the pulls of ${what} (${fate}): ${(error as Error).message}`, { cause: error }));
    for (const entry of unwritten) {
      const key = keyOf(entry.repo, entry.digest, entry.tag);
      const since = this.#pending.get(key);
      if (since === undefined) this.#pending.set(key, entry);
      else since.count += entry.count;
    }
    this.#schedule();
  }
}

/** An entry's key: no repository name holds '@' or '#', no digest or tag '#'. */
function keyOf(repo: string, digest: string | undefined, tag: string | undefined): string {
  if (digest === undefined) return tag === undefined ? repo : `${repo}@#${tag}`;
  return tag === undefined ? `${repo}@${digest}` : `${repo}@${digest}#${tag}`;
}

/** A noted entry as the store takes it: a repository's use alone carries no count. */
function toPull({ repo, digest, tag, count, at }: Noted): Pull {
  const pull: Pull = { repo, at: new Date(at) };
  if (digest !== undefined) pull.digest = digest;
  if (tag !== undefined) pull.tag = tag;
  if (digest !== undefined || tag !== undefined) pull.count = count;
  return pull;
}
