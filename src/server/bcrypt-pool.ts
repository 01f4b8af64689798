// bcrypt checks on worker threads. bcryptjs is pure JavaScript and slow by
// design; on the main thread (even through its async API, which only breaks
// the work into 100 ms slices) a flood of wrong passwords delays every other
// request by seconds. A few threads do the checks instead, behind a bounded
// queue, and the event loop stays free.

import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

// The worker is a script evaluated from a string rather than a file: the
// sources run as TypeScript under tsx and vitest and may run compiled too,
// and a string loads the same way under both. It loads bcryptjs by the URL
// the main thread resolves, since an eval'd script has no location of its
// own to resolve packages from, and with import(), which both a CommonJS
// and a module script (--input-type=module) have.
const WORKER_CODE = `
(async () => {
  const { parentPort, workerData } = await import('node:worker_threads');
  const bcrypt = (await import(workerData.bcrypt)).default;
  parentPort.on('message', ({ password, hash }) => {
    try {
      parentPort.postMessage({ ok: bcrypt.compareSync(password, hash) });
    } catch (error) {
      parentPort.postMessage({ error: String(error) });
    }
  });
})();
`;

const BCRYPT_URL = pathToFileURL(createRequire(import.meta.url).resolve('bcryptjs')).href;

/** Thrown by BcryptPool.verify when the queue of waiting checks is full. */
export class VerifyQueueFull extends Error {
  override name = 'VerifyQueueFull';
}

interface Job {
  password: string;
  hash: string;
  resolve: (ok: boolean) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  job?: Job;
  failure?: Error;
}

/** A small pool of threads running bcrypt's compare, started as checks arrive. */
export class BcryptPool {
  readonly #threads: number;
  readonly #queueLimit: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  #closed = false;

  /**
   * @param threads at most this many worker threads (at least 1).
   * @param queueLimit at most this many checks wait for a free thread.
   */
  constructor(threads: number, queueLimit: number) {
    this.#threads = Math.max(1, Math.floor(threads));
    this.#queueLimit = Math.max(0, queueLimit);
  }

  /**
   * Whether `password` matches the bcrypt `hash` ($2a$ or $2b$).
   * @throws VerifyQueueFull when `queueLimit` checks are already waiting.
   * @throws Error when the pool is closed, or the hash is malformed, or a worker died during the check.
   */
  verify(password: string, hash: string): Promise<boolean> {
    if (this.#closed) return Promise.reject(new Error('the password check pool is closed'));
    const idle = this.#slots.some((slot) => slot.job === undefined) || this.#slots.length < this.#threads;
    if (!idle && this.#queue.length >= this.#queueLimit) {
      return Promise.reject(new VerifyQueueFull('too many password checks are waiting'));
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ password, hash, resolve, reject });
      this.#pump();
    });
  }

  /** Stops the threads; checks still waiting or running fail. Safe to call twice. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) job.reject(new Error('the password check pool is closed'));
    await Promise.all(this.#slots.map((slot) => slot.worker.terminate()));
  }

  /** Hands waiting jobs to idle threads, starting threads up to the limit. */
  #pump(): void {
    while (this.#queue.length > 0 && !this.#closed) {
      const slot = this.#slots.find((s) => s.job === undefined) ?? (this.#slots.length < this.#threads ? this.#spawn() : undefined);
      if (slot === undefined) return;
      const job = this.#queue.shift()!;
      slot.job = job;
      slot.worker.ref();
      slot.worker.postMessage({ password: job.password, hash: job.hash });
    }
  }

  #spawn(): Slot {
    // execArgv: [], not the parent's: the script needs no loader (tsx) and
    // must not be read as a module or otherwise by the parent's flags.
    const worker = new Worker(WORKER_CODE, { eval: true, execArgv: [], workerData: { bcrypt: BCRYPT_URL } });
    const slot: Slot = { worker };
    worker.on('message', (message: { ok?: boolean; error?: string }) => {
      const job = slot.job;
      slot.job = undefined;
      worker.unref();
      if (message.error !== undefined) job?.reject(new Error(message.error));
      else job?.resolve(message.ok === true);
      this.#pump();
    });
    // 'exit' follows 'error'; without a listener an error would be thrown on the main thread.
    worker.on('error', (error) => {
      slot.failure = error;
    });
    worker.on('exit', (code) => {
      this.#slots.splice(this.#slots.indexOf(slot), 1);
      slot.job?.reject(slot.failure ?? new Error(`a password check thread exited with code ${code}`));
      slot.job = undefined;
      this.#pump();
    });
    // An idle thread must never keep the process alive, a busy one must
    // (someone awaits its answer). After the listeners: adding a 'message'
    // listener refs the thread again.
    worker.unref();
    this.#slots.push(slot);
    return slot;
  }
}
