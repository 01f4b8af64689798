// Serve's maintenance schedule: every interval, the replica that holds the
// store's lease on it runs the configured jobs (event pruning now; any job
// is a function of the store and an abort signal that answers a summary).
// One replica at a time: the holder keeps the lease from round to round,
// renewing it while a round runs, so the others' tries fail until it stops
// (and lets go) or dies (and its lease runs out). A job that fails is
// reported and runs again next round; stopping aborts a running round.

import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { applyRetention, type PruneResult, type RetentionRule, type Store } from '../store/index.js';

/** A scheduled job: what it does, given the store and a signal that stopping the server aborts; its summary is logged. */
export interface MaintenanceJob {
  /** Its name in the log: `events.prune`. */
  name: string;
  run(store: Store, signal: AbortSignal): Promise<Record<string, unknown>>;
}

/** What one job of a round did. */
export interface JobReport {
  job: string;
  /** When it started, and how long it took, in ms. */
  startedAt: Date;
  ms: number;
  /** Its summary, when it succeeded. */
  summary?: Record<string, unknown>;
  /** Why it failed; it runs again next round. */
  error?: unknown;
  /** Stopped part-way: the server is stopping (or the lease went elsewhere); it runs again next round. */
  aborted?: true;
}

/** The schedule's options. */
export interface MaintenanceOptions {
  /** Milliseconds between rounds (0: no schedule). */
  interval: number;
  jobs: readonly MaintenanceJob[];
  /** Who this replica is in the lease (default: host, pid and a random id). */
  holder?: string;
  /** Hears of each job run, succeeded or failed. */
  onJob?: (report: JobReport) => void;
  /** Hears of a round this replica did not run, another holding the lease (for a debug log). */
  onSkipped?: () => void;
  /** Hears of the lease's own failures (the database unreachable): the next round tries again. */
  onError?: (error: unknown) => void;
}

/** The lease's name in the store. */
const MAINTENANCE_LEASE = 'maintenance';
/** The default interval: hourly. */
export const DEFAULT_MAINTENANCE_INTERVAL = 3_600_000;
/**
 * How long past a round's interval the lease lasts: its holder renews it in
 * time even on a loaded machine, and a holder that died gives way this long
 * after its next round was due.
 */
const LEASE_GRACE = 30_000;
/** Events deleted per transaction: short enough that writers barely wait. */
const PRUNE_BATCH = 10_000;

/**
 * Prunes the events published before `before` in batches of PRUNE_BATCH,
 * one transaction each, until none are left or `signal` aborts.
 * @returns how many went in all, and the horizon.
 * @throws StoreError as Store.pruneEvents; the signal's reason when aborted.
 */
export async function pruneInBatches(store: Store, before: Date, options: { signal?: AbortSignal; onBatch?: (pruned: number) => void } = {}): Promise<PruneResult> {
  let total = 0;
  for (;;) {
    options.signal?.throwIfAborted();
    const batch = await store.pruneEvents({ before, limit: PRUNE_BATCH });
    total += batch.pruned;
    options.onBatch?.(total);
    if (batch.pruned < PRUNE_BATCH) return { ...batch, pruned: total };
  }
}

/** The job that keeps the event log to `keep` ms (serve's events.keep). */
export function pruneEventsJob(keep: number): MaintenanceJob {
  return {
    name: 'events.prune',
    async run(store, signal) {
      const before = new Date(Date.now() - keep);
      const { pruned, horizon } = await pruneInBatches(store, before, { signal });
      return { before: before.toISOString(), pruned, horizon };
    },
  };
}

/**
 * The job that applies retention `rules` (serve's retention): what the plan
 * says goes, with the store's immutable tags kept, as regmeta gc --retention
 * does; the blobs left unreferenced go with the next regmeta gc.
 */
export function retentionJob(rules: readonly RetentionRule[]): MaintenanceJob {
  return {
    name: 'retention',
    async run(store, signal) {
      const result = await applyRetention(store, rules, { signal });
      return { tags: result.tags.length, manifests: result.manifests.length, skipped: result.skipped };
    },
  };
}

/** The schedule of one replica: started by startRegistry, stopped by its close. */
export class Maintenance {
  readonly holder: string;
  readonly #options: MaintenanceOptions;
  readonly #store: Store;
  readonly #stop = new AbortController();
  #loop: Promise<void> | undefined;
  #held = false;

  constructor(store: Store, options: MaintenanceOptions) {
    this.#store = store;
    this.#options = options;
    this.holder = options.holder ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  }

  /** The lease's length: a round's interval and a grace. */
  get #ttl(): number {
    return this.#options.interval + LEASE_GRACE;
  }

  /**
   * Starts the rounds, the first at once; nothing when the interval is 0 or there are no jobs.
   * Never throws: a round's errors go to `onError`, and the next round comes all the same.
   */
  start(): void {
    if (this.#options.interval <= 0 || this.#options.jobs.length === 0 || this.#loop !== undefined) return;
    this.#loop = this.#rounds();
  }

  /** Aborts a running round, waits for it, and lets go of the lease so another replica may take it at once. Never throws. */
  async stop(): Promise<void> {
    this.#stop.abort(new Error('the server is stopping'));
    await this.#loop;
    if (this.#held) await this.#store.releaseJob(MAINTENANCE_LEASE, this.holder).catch(() => undefined);
    this.#held = false;
  }

  async #rounds(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      try {
        this.#held = await this.#store.leaseJob(MAINTENANCE_LEASE, this.holder, this.#ttl);
        if (this.#held) await this.#round(signal);
        else this.#options.onSkipped?.();
      } catch (error) {
        if (!signal.aborted) this.#report(error);
      }
      await sleep(this.#options.interval, signal);
    }
  }

  /** Runs every job in turn, the lease renewed meanwhile; then renews it for the interval to come. */
  async #round(stop: AbortSignal): Promise<void> {
    const lost = new AbortController();
    const signal = AbortSignal.any([stop, lost.signal]);
    const renewal = setInterval(() => {
      this.#store.leaseJob(MAINTENANCE_LEASE, this.holder, this.#ttl).then(
        (held) => held || lost.abort(new Error('the maintenance lease went to another replica')),
        (error) => this.#report(error),
      );
    }, Math.min(this.#ttl / 3, 10_000));
    try {
      for (const job of this.#options.jobs) {
        if (signal.aborted) return;
        await this.#run(job, signal);
      }
    } finally {
      clearInterval(renewal);
    }
    if (!signal.aborted) this.#held = await this.#store.leaseJob(MAINTENANCE_LEASE, this.holder, this.#ttl);
  }

  async #run(job: MaintenanceJob, signal: AbortSignal): Promise<void> {
    const startedAt = new Date();
    try {
      const summary = await job.run(this.#store, signal);
      this.#options.onJob?.({ job: job.name, startedAt, ms: Date.now() - startedAt.getTime(), summary });
    } catch (error) {
      const report: JobReport = { job: job.name, startedAt, ms: Date.now() - startedAt.getTime(), error };
      if (signal.aborted) report.aborted = true;
      this.#options.onJob?.(report);
    }
  }

  #report(error: unknown): void {
    (this.#options.onError ?? ((e: unknown) => console.error('maintenance:', e)))(error);
  }
}

/** The longest a timer waits at once (a longer one would fire at once). */
const MAX_TIMER = 2 ** 31 - 1;

/** Resolves after `ms` (however long), or at once when `signal` aborts. */
async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  const end = Date.now() + ms;
  for (let left = ms; left > 0 && !signal.aborted; left = end - Date.now()) {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.min(left, MAX_TIMER));
      signal.addEventListener('abort', done);
    });
  }
}
