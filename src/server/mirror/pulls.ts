// The pulls of a mirror's repositories, noted in memory and written to the
// store in one batch at most every few seconds and at close: a pull costs
// no write of its own, and regmeta gc still knows which cached repositories
// are used.

import type { Pull, Store } from '../../store/index.js';

/** How often noted pulls are written at most: gc's idleness is counted in hours or days, so seconds lost in a crash do not matter. */
const PULL_FLUSH_INTERVAL = 5_000;

/** Pulls noted in memory and written to the store in batches. */
export class PullRecorder {
  readonly #store: Store;
  readonly #interval: number;
  readonly #onError: (error: unknown) => void;
  /** The latest pull of each repository not yet written. */
  #pending = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  /** The flush running now: flushes run one at a time, in order. */
  #flushing: Promise<void> = Promise.resolve();
  #closed = false;

  /** @param onError hears of a batch the store refused: it stays noted and is written with the next (dropped at close). */
  constructor(store: Store, onError: (error: unknown) => void, interval = PULL_FLUSH_INTERVAL) {
    this.#store = store;
    this.#onError = onError;
    this.#interval = interval;
  }

  /** Notes that `repo` was pulled now; never throws, never waits. */
  note(repo: string): void {
    this.#pending.set(repo, Date.now());
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
    if (this.#timer !== undefined || this.#closed || this.#pending.size === 0) return;
    // Unref'd: noted pulls never keep a process alive; close() writes them.
    this.#timer = setTimeout(() => void this.flush(), this.#interval).unref();
  }

  async #write(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = this.#pending;
    this.#pending = new Map();
    const pulls: Pull[] = [...batch].map(([repo, at]) => ({ repo, at: new Date(at) }));
    try {
      await this.#store.recordPulls(pulls);
    } catch (error) {
      const fate = this.#closed ? 'dropped at close' : 'kept for the next try';
      this.#onError(new Error(`cannot record the mirrors' pulls of ${pulls.length} ${pulls.length === 1 ? 'repository' : 'repositories'} (${fate}): ${(error as Error).message}`, { cause: error }));
      // Kept for the next flush, under what was noted since (which is later).
      for (const [repo, at] of batch) if (!this.#pending.has(repo)) this.#pending.set(repo, at);
      this.#schedule();
    }
  }
}
