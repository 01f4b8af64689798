// Upload sessions in memory: the table, the per-address cap, one writer at a
// time per session, and the expiry of idle ones. Where their bytes go is the
// storage's business; this part any storage can share.

import { createHash, randomUUID, type Hash } from 'node:crypto';
import { BlobStoreError } from './errors.js';
import type { Upload } from './types.js';

/** One session's state: which repository it is for and what it has received. */
export interface Session extends Upload {
  /** The client address that opened it, for the per-address cap. */
  readonly client: string;
  /** Bytes received so far; the storage holds exactly these. */
  size: number;
  /** The sha256 of the bytes so far, fed as they arrive. */
  hash: Hash;
  /** A request is writing to it: a second one must not interleave. */
  busy: boolean;
  /** Settles when the current writer is done. */
  idle: Promise<void>;
  lastUsed: number;
}

export interface SessionLimits {
  /** Sessions idle longer than this (ms) expire. */
  uploadTtl: number;
  /** Sessions one client address may hold open at once; 0 turns the cap off. */
  maxUploadsPerAddress: number;
}

// What a client held at the cap is told to wait before it tries again.
const RETRY_AFTER_SECONDS = 60;

/** The sessions one process holds. */
export class Sessions {
  readonly #limits: SessionLimits;
  readonly #table = new Map<string, Session>();
  readonly #perAddress = new Map<string, number>();
  // Every session this table made, open or over: what a handle may be.
  readonly #issued = new WeakSet<Upload>();
  #sweeper: NodeJS.Timeout | undefined;

  constructor(limits: SessionLimits) {
    this.#limits = limits;
  }

  /** How many sessions are open now. */
  get count(): number {
    return this.#table.size;
  }

  /**
   * Registers a new session for `repo`, counted against `client` at once, so
   * that concurrent opens cannot all pass the cap.
   * @throws BlobStoreError TOOMANYREQUESTS when `client` holds as many as it may.
   */
  open(repo: string, client: string): Session {
    const held = this.#perAddress.get(client) ?? 0;
    const { maxUploadsPerAddress, uploadTtl } = this.#limits;
    if (maxUploadsPerAddress > 0 && held >= maxUploadsPerAddress) {
      throw new BlobStoreError(
        'TOOMANYREQUESTS',
        `${held} upload sessions are open from this address, the most it may hold: finish or cancel some (idle ones expire after ${Math.round(uploadTtl / 60_000)} minutes)`,
        { retryAfter: RETRY_AFTER_SECONDS },
      );
    }
    const session: Session = {
      id: randomUUID(),
      repo,
      client,
      size: 0,
      hash: createHash('sha256'),
      busy: false,
      idle: Promise.resolve(),
      lastUsed: Date.now(),
    };
    this.#table.set(session.id, session);
    this.#issued.add(session);
    this.#perAddress.set(client, held + 1);
    return session;
  }

  /**
   * The live session behind `repo` and `id`, marked as used.
   * @throws BlobStoreError BLOB_UPLOAD_UNKNOWN, also for another repository's session.
   */
  get(repo: string, id: string): Session {
    const session = this.#table.get(id);
    if (!session || session.repo !== repo) throw unknownUpload();
    session.lastUsed = Date.now();
    return session;
  }

  /** The state behind a handle this table gave out, whether or not it is still open. @throws BlobStoreError BLOB_UPLOAD_UNKNOWN for a handle from elsewhere. */
  stateOf(upload: Upload): Session {
    if (!this.#issued.has(upload)) throw unknownUpload();
    return upload as Session;
  }

  /**
   * Waits for the session's current writer, then takes it.
   * @returns the release, which the caller must call once.
   * @throws BlobStoreError BLOB_UPLOAD_UNKNOWN when it was finished or cancelled meanwhile.
   */
  async acquire(session: Session): Promise<() => void> {
    // Check and take in one synchronous step after the last await, so two
    // waiters woken together cannot both take the session.
    while (session.busy) await session.idle;
    if (this.#table.get(session.id) !== session) throw unknownUpload();
    session.busy = true;
    let release!: () => void;
    session.idle = new Promise((resolve) => {
      release = () => {
        session.busy = false;
        session.lastUsed = Date.now();
        resolve();
      };
    });
    return release;
  }

  /** Drops the session from the table and from its address's count; once. @returns whether it was there. Never throws. */
  forget(session: Session): boolean {
    if (this.#table.get(session.id) !== session) return false;
    this.#table.delete(session.id);
    const left = (this.#perAddress.get(session.client) ?? 1) - 1;
    if (left <= 0) this.#perAddress.delete(session.client);
    else this.#perAddress.set(session.client, left);
    return true;
  }

  /** Calls `expire` now and then for each session idle past the TTL and not being written; once started, started once. */
  startExpiry(expire: (session: Session) => Promise<void>): void {
    this.stopExpiry();
    const sweep = async () => {
      const cutoff = Date.now() - this.#limits.uploadTtl;
      for (const session of [...this.#table.values()]) {
        if (!session.busy && session.lastUsed < cutoff) await expire(session).catch(() => {});
      }
    };
    this.#sweeper = setInterval(() => void sweep(), Math.min(this.#limits.uploadTtl, 600_000)).unref();
  }

  /** Stops the expiry. Never throws. */
  stopExpiry(): void {
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }
}

function unknownUpload(): BlobStoreError {
  return new BlobStoreError('BLOB_UPLOAD_UNKNOWN', 'unknown upload session');
}
