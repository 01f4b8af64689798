// Webhook delivery: one loop per endpoint that reads the durable event log
// after the endpoint's cursor, POSTs a small batch, and moves the cursor only
// once the endpoint answered 2xx. Hence at-least-once and in commit order
// across restarts and crashes (a batch in flight at a crash is sent again).
// It runs beside the server and never inside a request: a slow or dead
// endpoint only grows its own backlog, retried with capped, jittered backoff.
// Of several replicas on one database, the one holding an endpoint's claim
// delivers to it; the others look again every poll interval, and take over
// when it stops or dies.

import { createHmac, randomUUID } from 'node:crypto';
import type { AsyncStore, NotificationEvent } from '../store/index.js';
import { ENVELOPE_MEDIA_TYPE, toEnvelopeEvent, type EnvelopeSource } from './envelope.js';

/** One receiver of notifications. */
export interface NotifyEndpoint {
  /** http or https; also the key of its cursor in the store. */
  url: string;
  /** Sent with every POST (an Authorization header, say). */
  headers?: Record<string, string>;
  /** When set, every body is signed: `X-Regmeta-Signature: sha256=<hex HMAC-SHA256 of the body>`. */
  secret?: string;
  /** Milliseconds a POST may take before it counts as failed (default 10 s). */
  timeout?: number;
}

/** What a Notifier needs beyond its endpoints. */
export interface NotifierOptions {
  /** The event log and the cursors (a MetadataStore goes in through asyncStore). */
  store: AsyncStore;
  endpoints: readonly NotifyEndpoint[];
  /** The registry's base URL (target.url, source.addr). */
  baseUrl: string;
  /** Events per POST (default 20): small, so that a retry resends little. */
  batchSize?: number;
  /** The first retry's delay and the cap of the backoff, in ms (default 1 s and 5 min). */
  retryMin?: number;
  retryMax?: number;
  /** How often to look at the log when no commit was heard of, in ms (default 5 s). */
  pollInterval?: number;
  /** Receives each failed delivery (also recorded in the store) and unexpected errors. */
  onError?: (error: unknown, endpoint: string) => void;
}

/** The signature header's name; its value is `sha256=<hex>`, as GitHub's X-Hub-Signature-256. */
export const SIGNATURE_HEADER = 'X-Regmeta-Signature';

/** The value of the signature header for `body` under `secret`. */
export function signatureOf(body: string | Buffer, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

const DEFAULT_TIMEOUT = 10_000;

/** The delivery loops of one registry. */
export class Notifier {
  readonly #options: Required<Omit<NotifierOptions, 'onError'>> & Pick<NotifierOptions, 'onError'>;
  readonly #source: EnvelopeSource;
  readonly #stop = new AbortController();
  #wakers = new Set<() => void>();
  #loops: Promise<void>[] = [];
  #unsubscribe: (() => void) | undefined;

  /** @throws TypeError for an endpoint URL that is not http or https. */
  constructor(options: NotifierOptions) {
    for (const endpoint of options.endpoints) {
      const protocol = URL.canParse(endpoint.url) ? new URL(endpoint.url).protocol : '';
      if (protocol !== 'http:' && protocol !== 'https:') throw new TypeError(`notify: ${endpoint.url}: not an http or https URL`);
    }
    this.#options = { batchSize: 20, retryMin: 1000, retryMax: 300_000, pollInterval: 5000, ...options };
    this.#source = { baseUrl: options.baseUrl, instanceId: randomUUID() };
  }

  /**
   * Opens each endpoint's cursor (a new one at the newest event) and starts
   * its loop. Commits of this process wake the loops at once, other
   * processes' within the store's poll interval, and the poll is the fallback.
   * @throws StoreError from opening the cursors or subscribing.
   */
  async start(): Promise<void> {
    const { store, endpoints } = this.#options;
    for (const endpoint of endpoints) await store.notifications.open(endpoint.url);
    if (endpoints.length === 0) return;
    this.#unsubscribe = await store.subscribe(() => this.#wake(), { onError: (error) => this.#report(error, '') });
    // Stopped while subscribing: stop() found nothing to unsubscribe yet.
    if (this.#stop.signal.aborted) return this.#unsubscribe();
    this.#loops = endpoints.map((endpoint) => this.#loop(endpoint));
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

  async #loop(endpoint: NotifyEndpoint): Promise<void> {
    try {
      await this.#deliveries(endpoint);
    } finally {
      await this.#options.store.notifications.release(endpoint.url);
    }
  }

  async #deliveries(endpoint: NotifyEndpoint): Promise<void> {
    const { notifications } = this.#options.store;
    let failures = 0;
    while (!this.#stop.signal.aborted) {
      let events: NotificationEvent[];
      try {
        // Another replica delivers to this endpoint while it holds the claim: look again later.
        if (!(await notifications.claim(endpoint.url))) {
          await this.#sleep(this.#options.pollInterval, false);
          continue;
        }
        events = await notifications.eventsAfter(endpoint.url, this.#options.batchSize);
      } catch (error) {
        if (this.#stop.signal.aborted) return;
        this.#report(error, endpoint.url);
        await this.#sleep(this.#options.pollInterval, false);
        continue;
      }
      if (events.length === 0) {
        await this.#sleep(this.#options.pollInterval, true);
        continue;
      }
      try {
        await this.#deliver(endpoint, events);
        failures = 0;
      } catch (error) {
        if (this.#stop.signal.aborted) return;
        failures++;
        await this.#fail(endpoint, error);
        await this.#sleep(this.#backoff(failures), false);
      }
    }
  }

  /** Exponential from retryMin, capped at retryMax, with full jitter over its upper half so that retries do not march in step. */
  #backoff(failures: number): number {
    const { retryMin, retryMax } = this.#options;
    const ceiling = Math.min(retryMax, retryMin * 2 ** Math.min(failures - 1, 30));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  async #fail(endpoint: NotifyEndpoint, error: unknown): Promise<void> {
    // fetch's own message is "fetch failed"; what failed is in its cause (ECONNREFUSED, …).
    const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
    const detail = cause === undefined ? '' : ` (${cause.code ?? cause.message})`;
    const message = `${error instanceof Error ? error.message : String(error)}${detail}`;
    this.#report(error, endpoint.url);
    try {
      await this.#options.store.notifications.recordFailure(endpoint.url, message);
    } catch (storeError) {
      this.#report(storeError, endpoint.url);
    }
  }

  /**
   * POSTs one batch and, on a 2xx, moves the cursor past it. A batch of
   * events distribution has no notification for only moves the cursor.
   * @throws Error for a failed POST (network, timeout, a status other than 2xx); StoreError.
   */
  async #deliver(endpoint: NotifyEndpoint, events: NotificationEvent[]): Promise<void> {
    const last = events[events.length - 1].id;
    const envelope = events.map((e) => toEnvelopeEvent(e, this.#source)).filter((e) => e !== undefined);
    if (envelope.length > 0) await this.#post(endpoint, JSON.stringify({ events: envelope }));
    await this.#options.store.notifications.advance(endpoint.url, last);
  }

  /** @throws Error unless the endpoint answers 2xx within its timeout. */
  async #post(endpoint: NotifyEndpoint, body: string): Promise<void> {
    const headers: Record<string, string> = { ...endpoint.headers, 'Content-Type': ENVELOPE_MEDIA_TYPE, 'User-Agent': 'regmeta-notify' };
    if (endpoint.secret !== undefined) headers[SIGNATURE_HEADER] = signatureOf(body, endpoint.secret);
    const signal = AbortSignal.any([this.#stop.signal, AbortSignal.timeout(endpoint.timeout ?? DEFAULT_TIMEOUT)]);
    const response = await fetch(endpoint.url, { method: 'POST', headers, body, signal, redirect: 'manual' });
    // The body is not needed; reading it frees the connection for the next POST.
    await response.arrayBuffer().catch(() => undefined);
    if (response.status < 200 || response.status > 299) throw new Error(`HTTP ${response.status} ${response.statusText}`.trim());
  }
}
