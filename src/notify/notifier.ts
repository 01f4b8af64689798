// Webhook delivery: one loop per endpoint that reads the durable event log
// after the endpoint's cursor, POSTs a small batch, and moves the cursor only
// once the endpoint answered 2xx. Hence at-least-once and in commit order
// across restarts and crashes (a batch in flight at a crash is sent again).
// It runs beside the server and never inside a request: a slow or dead
// endpoint only grows its own backlog, retried with capped, jittered backoff.
// Of several replicas on one database, the one holding an endpoint's claim
// delivers to it; the others look again every poll interval, and take over
// when it stops or dies. A receiver's answer is read only a few KiB deep:
// its status is all that counts.

import { createHmac, randomUUID } from 'node:crypto';
import type { MissedEvents, Store, NotificationEvent } from '../store/index.js';
import { scrub, toTargets, type NotifyEndpoint, type Target } from './endpoint.js';
import { ENVELOPE_MEDIA_TYPE, toEnvelopeEvent, type EnvelopeSource } from './envelope.js';

/** The defaults of delivery: each one a NotifierOptions or NotifyEndpoint option. */
export const DEFAULT_NOTIFY_LIMITS = {
  /** Events per POST: small, so that a retry resends little. */
  batchSize: 20,
  /** Milliseconds before the first retry; the delay doubles from it after each failure in a row. */
  retryMin: 1000,
  /** Milliseconds the retry delay never passes: a receiver back up is caught up within this. */
  retryMax: 5000,
  /** Milliseconds between looks at the log when no commit was heard of. */
  pollInterval: 5000,
  /** Milliseconds a POST may take, its answer included. */
  timeout: 10_000,
  /** Bytes of a receiver's answer read: a longer one is cut off (its connection closed). */
  maxAnswerBytes: 4096,
};

/** What a Notifier needs beyond its endpoints. */
export interface NotifierOptions {
  /** The event log and the cursors (a MetadataStore goes in through asyncStore). */
  store: Store;
  endpoints: readonly NotifyEndpoint[];
  /** The registry's base URL (target.url, source.addr). */
  baseUrl: string;
  /** Events per POST (default DEFAULT_NOTIFY_LIMITS.batchSize). */
  batchSize?: number;
  /** The first retry's delay and the cap of the backoff, in ms (default DEFAULT_NOTIFY_LIMITS'). */
  retryMin?: number;
  retryMax?: number;
  /** How often to look at the log when no commit was heard of, in ms (default DEFAULT_NOTIFY_LIMITS'). */
  pollInterval?: number;
  /** Bytes of an answer read (default DEFAULT_NOTIFY_LIMITS'). */
  maxAnswerBytes?: number;
  /**
   * Receives each failed delivery (also recorded in the store) and unexpected
   * errors, with the endpoint's label (its name, or scheme://host:port; '' for
   * none): a DeliveryError's message names no secret of the endpoint's.
   */
  onError?: (error: unknown, endpoint: string) => void;
  /**
   * Receives what the operator should know that is no failure, with the
   * endpoint's label: events pruned from the log before the endpoint
   * acknowledged them (how many, which seqs), stepped over so that delivery
   * goes on from the oldest event left. Default: console.warn.
   */
  onWarning?: (message: string, endpoint: string) => void;
}

/** A failed delivery, in words that hold none of the endpoint's secrets. */
export class DeliveryError extends Error {
  override name = 'DeliveryError';
}

/** The signature header's name; its value is `sha256=<hex>`, as GitHub's X-Hub-Signature-256. */
export const SIGNATURE_HEADER = 'X-Regmeta-Signature';

/** The value of the signature header for `body` under `secret`. */
export function signatureOf(body: string | Buffer, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** The delivery loops of one registry. */
export class Notifier {
  readonly #options: Required<Omit<NotifierOptions, 'onError' | 'onWarning' | 'endpoints'>> & Pick<NotifierOptions, 'onError' | 'onWarning'>;
  readonly #targets: Target[];
  readonly #source: EnvelopeSource;
  readonly #stop = new AbortController();
  #wakers = new Set<() => void>();
  #loops: Promise<void>[] = [];
  #unsubscribe: (() => void) | undefined;

  /**
   * @throws TypeError for an endpoint URL that is not http or https, a bad
   * name, credentials in a URL beside an Authorization header, or two
   * endpoints on one cursor (the same name, or the same URL unnamed).
   */
  constructor(options: NotifierOptions) {
    try {
      this.#targets = toTargets(options.endpoints);
    } catch (error) {
      throw new TypeError(`notify: ${(error as Error).message}`);
    }
    const d = DEFAULT_NOTIFY_LIMITS;
    this.#options = {
      store: options.store,
      baseUrl: options.baseUrl,
      onError: options.onError,
      onWarning: options.onWarning,
      batchSize: options.batchSize ?? d.batchSize,
      retryMin: options.retryMin ?? d.retryMin,
      retryMax: options.retryMax ?? d.retryMax,
      pollInterval: options.pollInterval ?? d.pollInterval,
      maxAnswerBytes: options.maxAnswerBytes ?? d.maxAnswerBytes,
    };
    this.#source = { baseUrl: options.baseUrl, instanceId: randomUUID() };
  }

  /**
   * Opens each endpoint's cursor (a new one at the newest event) and starts
   * its loop. Commits of this process wake the loops at once, other
   * processes' within the store's poll interval, and the poll is the fallback.
   * @throws StoreError from opening the cursors or subscribing.
   */
  async start(): Promise<void> {
    const { store } = this.#options;
    const targets = this.#targets;
    for (const target of targets) await store.notifications.open(target.key);
    if (targets.length === 0) return;
    this.#unsubscribe = await store.subscribe(() => this.#wake(), { onError: (error) => this.#report(error, '') });
    // Stopped while subscribing: stop() found nothing to unsubscribe yet.
    if (this.#stop.signal.aborted) return this.#unsubscribe();
    this.#loops = targets.map((target) => this.#loop(target));
  }

  /** Stops every loop: a POST in flight is aborted (its batch is sent again on the next start). */
  async stop(): Promise<void> {
    this.#stop.abort();
    this.#unsubscribe?.();
    this.#wake();
    await Promise.all(this.#loops);
  }

  #wake(): void {
    const wakers = this.#wakers;
    this.#wakers = new Set();
    for (const wake of wakers) wake();
  }

  /** Resolves after `ms`, on a commit when `wakeable`, or on stop. */
  #sleep(ms: number, wakeable: boolean): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wakers.delete(done);
        this.#stop.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      if (wakeable) this.#wakers.add(done);
      this.#stop.signal.addEventListener('abort', done);
    });
  }

  #report(error: unknown, endpoint: string): void {
    (this.#options.onError ?? ((e: unknown) => console.error(`notify ${endpoint}:`, e)))(error, endpoint);
  }

  async #loop(target: Target): Promise<void> {
    try {
      await this.#deliveries(target);
    } finally {
      await this.#options.store.notifications.release(target.key);
    }
  }

  async #deliveries(target: Target): Promise<void> {
    const { notifications } = this.#options.store;
    let failures = 0;
    while (!this.#stop.signal.aborted) {
      let events: NotificationEvent[];
      try {
        // Another replica delivers to this endpoint while it holds the claim: look again later.
        if (!(await notifications.claim(target.key))) {
          await this.#sleep(this.#options.pollInterval, false);
          continue;
        }
        await this.#skipPruned(target);
        events = await notifications.eventsAfter(target.key, this.#options.batchSize);
      } catch (error) {
        if (this.#stop.signal.aborted) return;
        this.#report(error, target.label);
        await this.#sleep(this.#options.pollInterval, false);
        continue;
      }
      if (events.length === 0) {
        await this.#sleep(this.#options.pollInterval, true);
        continue;
      }
      try {
        await this.#deliver(target, events);
        failures = 0;
      } catch (error) {
        if (this.#stop.signal.aborted) return;
        failures++;
        await this.#fail(target, error);
        await this.#sleep(this.#backoff(failures), false);
      }
    }
  }

  /**
   * Steps over the events pruned before the endpoint got them, if any, and
   * says so: a receiver down longer than the log keeps events has missed
   * them, which is the operator's to know, never a silent skip.
   */
  async #skipPruned(target: Target): Promise<void> {
    this.#warnMissed(target, await this.#options.store.notifications.skipPruned(target.key));
  }

  #warnMissed(target: Target, missed: MissedEvents | undefined): void {
    if (missed === undefined) return;
    const range = missed.from === missed.to ? `seq ${missed.from}` : `seq ${missed.from}-${missed.to}`;
    const message = `missed ${missed.count} event${missed.count === 1 ? '' : 's'} (${range}), pruned from the log before the endpoint acknowledged them; delivery goes on from the oldest event left`;
    (this.#options.onWarning ?? ((m: string, endpoint: string) => console.warn(`notify ${endpoint}: ${m}`)))(message, target.label);
  }

  /** Exponential from retryMin, capped at retryMax, with full jitter over its upper half so that retries do not march in step. */
  #backoff(failures: number): number {
    const { retryMin, retryMax } = this.#options;
    const ceiling = Math.min(retryMax, retryMin * 2 ** Math.min(failures - 1, 30));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  async #fail(target: Target, error: unknown): Promise<void> {
    // fetch's own message is "fetch failed"; what failed is in its cause (ECONNREFUSED, …).
    const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
    const detail = cause === undefined ? '' : ` (${cause.code ?? cause.message})`;
    const message = scrub(`${error instanceof Error ? error.message : String(error)}${detail}`, target);
    // Not the error itself: its message or cause may hold the URL.
    this.#report(new DeliveryError(message), target.label);
    try {
      await this.#options.store.notifications.recordFailure(target.key, message);
    } catch (storeError) {
      this.#report(storeError, target.label);
    }
  }

  /**
   * POSTs one batch and, on a 2xx, moves the cursor past it. A batch of
   * events distribution has no notification for only moves the cursor.
   * @throws Error for a failed POST (network, timeout, a status other than 2xx); StoreError.
   */
  async #deliver(target: Target, events: NotificationEvent[]): Promise<void> {
    const envelope = events.map((e) => toEnvelopeEvent(e, this.#source)).filter((e) => e !== undefined);
    if (envelope.length > 0) await this.#post(target, JSON.stringify({ events: envelope }));
    // A prune between skipPruned and eventsAfter left a gap before this batch: the store records it, and it is said too.
    this.#warnMissed(target, await this.#options.store.notifications.advance(target.key, events));
  }

  /** @throws Error unless the endpoint answers 2xx within its timeout. */
  async #post(target: Target, body: string): Promise<void> {
    const headers: Record<string, string> = { ...target.headers, 'Content-Type': ENVELOPE_MEDIA_TYPE, 'User-Agent': 'regmeta-notify' };
    if (target.secret !== undefined) headers[SIGNATURE_HEADER] = signatureOf(body, target.secret);
    const signal = AbortSignal.any([this.#stop.signal, AbortSignal.timeout(target.timeout ?? DEFAULT_NOTIFY_LIMITS.timeout)]);
    const response = await fetch(target.url, { method: 'POST', headers, body, signal, redirect: 'manual' });
    await readAtMost(response, this.#options.maxAnswerBytes);
    if (response.status < 200 || response.status > 299) throw new Error(`HTTP ${response.status} ${response.statusText}`.trim());
  }
}

/**
 * Reads the answer's body up to `limit` bytes (within the POST's timeout,
 * whose signal ends the read too): a short answer is read to its end, which
 * leaves the connection for the next POST; a longer one is cancelled, which
 * closes it. Nothing of it is kept, and how the read ends does not matter.
 */
async function readAtMost(response: Response, limit: number): Promise<void> {
  const reader = response.body?.getReader();
  if (reader === undefined) return;
  try {
    for (let read = 0; read <= limit; ) {
      const { done, value } = await reader.read();
      if (done) return;
      read += value.byteLength;
    }
    await reader.cancel();
  } catch {
    // Aborted (timeout, stop) or reset: the status already said what counts.
  }
}
