// One writer at a time per upload session, across processes, whatever keeps
// the bytes: a writer claims the session in the table (an owner token and a
// lease, renewed while a long body streams) and commits the new size, which
// also releases the claim. A second writer waits: in this process behind the
// first (a queue per session, whose head alone polls the table), across
// processes by polling the claim until it is released or its lease runs out.

import { randomUUID } from 'node:crypto';
import { BlobStoreError } from './errors.js';
import { unknownUpload } from './sessions.js';
import type { UploadSession, UploadSessions } from '../store/index.js';
import type { Upload } from './types.js';

/** A session handle as callers hold it: its size follows what this process commits. */
export class SessionHandle implements Upload {
  constructor(
    readonly id: string,
    readonly repo: string,
    public size: number,
  ) {}
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The handles a blob store gave out, and the claims of its writers on their sessions. */
export class SessionClaims {
  readonly #table: UploadSessions;
  readonly #lease: number;
  readonly #issued = new WeakSet<Upload>();
  // The writers of this process queued per session: only the head polls the table.
  readonly #queues = new Map<string, Promise<void>>();

  /** Claims in `table` that last `lease` ms unless renewed. */
  constructor(table: UploadSessions, lease: number) {
    this.#table = table;
    this.#lease = lease;
  }

  /** A handle on `record`, one this store gave out. */
  handle(record: UploadSession): SessionHandle {
    const handle = new SessionHandle(record.id, record.repo, record.size);
    this.#issued.add(handle);
    return handle;
  }

  /** @throws BlobStoreError BLOB_UPLOAD_UNKNOWN for a handle from elsewhere. */
  handleOf(upload: Upload): SessionHandle {
    if (!this.#issued.has(upload)) throw unknownUpload();
    return upload as SessionHandle;
  }

  /**
   * Runs `fn` as the session's one writer: after this process's earlier
   * writers on it, with a claim in the table renewed while `fn` runs, and
   * released after it unless `fn` committed. The handle's size is the
   * committed one when `fn` starts. `fn` gets the claim's owner token and
   * whether the claim was lost meanwhile (its lease ran out and another
   * writer took it).
   * @throws BlobStoreError BLOB_UPLOAD_UNKNOWN (ended meanwhile), TOOMANYREQUESTS
   * (another process held the session longer than a lease and a bit); what `fn` throws.
   */
  async exclusive<T>(handle: SessionHandle, fn: (owner: string, lost: () => boolean) => Promise<T>): Promise<T> {
    const previous = this.#queues.get(handle.id) ?? Promise.resolve();
    let done!: () => void;
    const tail = previous.then(() => new Promise<void>((resolve) => (done = resolve)));
    this.#queues.set(handle.id, tail);
    await previous;
    const owner = randomUUID();
    try {
      handle.size = await this.#claim(handle, owner);
      let lost = false;
      const lease = this.#lease;
      const renewal = setInterval(() => {
        this.#table.renew(handle.id, owner, lease).then((held) => (lost ||= !held), () => {});
      }, Math.max(lease / 3, 10));
      renewal.unref();
      try {
        return await fn(owner, () => lost);
      } finally {
        clearInterval(renewal);
        // After a commit or an end this finds no claim of ours: nothing happens.
        await this.#table.release(handle.id, owner).catch(() => {});
      }
    } finally {
      done();
      if (this.#queues.get(handle.id) === tail) this.#queues.delete(handle.id);
    }
  }

  /** Claims the session for `owner`, polling while another process holds it. @returns the committed size. */
  async #claim(handle: SessionHandle, owner: string): Promise<number> {
    const lease = this.#lease;
    // Long enough for the claim of a writer that died to run out, with a margin.
    const deadline = Date.now() + lease + Math.min(lease, 5000);
    for (let wait = 5; ; wait = Math.min(wait * 2, 250)) {
      const claimed = await this.#table.claim(handle.repo, handle.id, owner, lease);
      if (claimed !== 'busy') return claimed.size;
      if (Date.now() >= deadline) {
        throw new BlobStoreError('TOOMANYREQUESTS', 'another request is writing to this upload session: try again', { retryAfter: 1 });
      }
      await sleep(wait);
    }
  }
}
