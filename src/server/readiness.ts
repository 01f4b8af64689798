// Whether the registry can take a push now, for an orchestrator's readiness
// probe: the database answers and takes the write lock, the blob storage
// takes a file (an object store: a probe object), and the disk has room
// (where the storage has a bound at all). Each check reports on its own, so an
// operator sees which one failed; a failure is named by its code only (the
// answer goes to anyone, and a message may name paths).

import type { BlobStore } from '../blobstore/index.js';
import type { Store } from '../store/index.js';

/** The free disk below which the registry is not ready, by default: 1 GiB. */
export const DEFAULT_MIN_FREE_DISK = 1024 ** 3;

/**
 * How long a readiness check may take, in ms, before it counts as failed
 * (TIMEOUT): a database or disk that does not answer must not hold the
 * probe past an orchestrator's own timeout.
 */
const READINESS_TIMEOUT = 2000;

/** One check's outcome. */
interface CheckResult {
  status: 'ok' | 'failed';
  /** Why it failed: a code such as STORE_CLOSED, DATABASE_UNAVAILABLE, STORAGE_UNAVAILABLE, EROFS, ENOSPC, LOW_DISK or TIMEOUT. */
  error?: string;
  [detail: string]: unknown;
}

/** The answer of GET /readyz. */
export interface ReadinessReport {
  status: 'ok' | 'unavailable';
  checks: { database: CheckResult; blobs: CheckResult; disk: CheckResult };
}

const codeOf = (error: unknown): string => {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'UNKNOWN';
};

/** What `work` resolves to, or `late` once `ms` have passed without it. */
function within<T>(work: Promise<T>, ms: number, late: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((resolve) => (timer = setTimeout(() => resolve(late), ms)));
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

const TIMED_OUT: CheckResult = { status: 'failed', error: 'TIMEOUT' };

async function outcome(check: () => unknown): Promise<CheckResult> {
  try {
    await check();
    return { status: 'ok' };
  } catch (error) {
    return { status: 'failed', error: codeOf(error) };
  }
}

/** The readiness checks over one store and blob store; probes that arrive together share one run. */
export class Readiness {
  #running: Promise<ReadinessReport> | undefined;

  constructor(
    readonly store: Store,
    readonly blobs: BlobStore,
    /** Bytes; 0: any free space will do. */
    readonly minFreeDisk: number = DEFAULT_MIN_FREE_DISK,
    /** Ms; a check not done by then has failed with TIMEOUT. */
    readonly timeout: number = READINESS_TIMEOUT,
  ) {}

  /**
   * Runs every check (or joins the run in progress), each bounded by
   * `timeout`. Never throws: a check that throws or runs out of time has failed.
   */
  check(): Promise<ReadinessReport> {
    return (this.#running ??= this.#run().finally(() => (this.#running = undefined)));
  }

  async #run(): Promise<ReadinessReport> {
    const [database, blobs, disk] = await Promise.all(
      [outcome(() => this.store.checkWritable()), outcome(() => this.blobs.checkWritable()), this.#disk()].map((check) => within(check, this.timeout, TIMED_OUT)),
    );
    const ok = database.status === 'ok' && blobs.status === 'ok' && disk.status === 'ok';
    return { status: ok ? 'ok' : 'unavailable', checks: { database, blobs, disk } };
  }

  async #disk(): Promise<CheckResult> {
    let free: number;
    try {
      free = await this.blobs.freeBytes();
    } catch (error) {
      return { status: 'failed', error: codeOf(error) };
    }
    // An object store sets no bound: nothing to compare, and Infinity is no JSON number.
    if (free === Number.POSITIVE_INFINITY) return { status: 'ok' };
    const enough = free >= this.minFreeDisk;
    return { status: enough ? 'ok' : 'failed', ...(enough ? {} : { error: 'LOW_DISK' }), freeBytes: free, minFreeBytes: this.minFreeDisk };
  }
}
