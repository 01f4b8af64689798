// The registry's metrics, exposed through prom-client. The request path only
// adds to plain numbers (three Map lookups, a few additions): prom-client's
// own inc() and observe() hash and validate their labels on every call, many
// times the cost, on every request. Its metrics are filled from those
// numbers when scraped (collect()), and the store's counts and the webhooks'
// state are read at most once per interval, never per scrape (the storage
// gauges and the pull statistics counters are in metrics-storage.ts).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry as PromRegistry } from 'prom-client';
import type { BlobStore } from '../blobstore/index.js';
import type { Store, NotificationStatus } from '../store/index.js';
import { endpointLabels } from '../notify/index.js';
import { pullFlushCounters, storeGauges, usageGauges } from './metrics-storage.js';
import { mirrorCounters } from './mirror/counters.js';
import type { MirrorCounters } from './mirror/types.js';
import { routeKindOf, type RouteKind } from './routes.js';
import { timedStore, type Timing } from './timed-store.js';

/** What createRegistryHandler's `metrics` option may say beyond `true`. */
export interface MetricsOptions {
  /** The prom-client Registry to register in; default a new one (each handler needs its own, or the names collide). */
  registry?: PromRegistry;
  /** Answer GET /metrics on the handler (default true); false collects only, for a listener of one's own. */
  endpoint?: boolean;
  /** Milliseconds between reads of the store's counts and the webhooks' state (default 30 s): scrapes in between get the last read. */
  statsInterval?: number;
  /** Add prom-client's process metrics (collectDefaultMetrics) to the registry (default false: the process is the embedder's). */
  processMetrics?: boolean;
}

/** Latency buckets (seconds): 0.1 ms to 60 s, each about 2.5 times the last. */
export const LATENCY_BUCKETS: readonly number[] = Object.freeze([
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
]);

/** The default of MetricsOptions.statsInterval: counting a large store takes milliseconds; scrapes come every 15-60 s. */
export const DEFAULT_STATS_INTERVAL = 30_000;

type Labels = Record<string, string>;

/** What the metrics read of a finished request. */
interface CountedRequest {
  req: IncomingMessage;
  res: ServerResponse;
  /** The route's kind once routing passed; undefined for a request refused before it. */
  route: RouteKind | undefined;
}

/** One label set of a latency histogram, as plain numbers. */
class LatencyCell {
  readonly buckets = new Float64Array(LATENCY_BUCKETS.length);
  sum = 0;
  count = 0;
  constructor(readonly labels: Labels) {}

  observe(seconds: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]) i++;
    // Above the last bound it is in +Inf only, which is the count.
    if (i < LATENCY_BUCKETS.length) this.buckets[i]++;
    this.sum += seconds;
    this.count++;
  }
}

/** One route's bytes. */
interface ByteCell {
  labels: Labels;
  received: number;
  sent: number;
}

/** One (method, route, status): its count, and the cells it adds to. */
interface RequestCell {
  labels: Labels;
  count: number;
  latency: LatencyCell;
  bytes: ByteCell;
}

/**
 * Hands plain cells to a prom-client Histogram at scrape time. prom-client
 * has no public way to set a histogram's buckets, so this writes the
 * per-label-set state its exposition reads (`hashMap`: labels, bucketValues
 * by bound, sum, count); the metrics test reads every part of it back.
 */
function exportCells(histogram: Histogram<string>, cells: Iterable<LatencyCell>): void {
  const hashMap: Record<string, unknown> = {};
  let i = 0;
  for (const cell of cells) {
    // A store method never called has no series yet, as a label set never seen would not.
    if (cell.count === 0) continue;
    const bucketValues: Record<number, number> = {};
    LATENCY_BUCKETS.forEach((bound, k) => (bucketValues[bound] = cell.buckets[k]));
    hashMap[String(i++)] = { labels: cell.labels, bucketValues, sum: cell.sum, count: cell.count };
  }
  (histogram as unknown as { hashMap: Record<string, unknown> }).hashMap = hashMap;
}

/**
 * A value read by `read` at most once per `interval` ms, when asked for; a
 * failed read keeps the last value. Scrapes while a read is out wait for it.
 */
function everyInterval<T>(read: () => Promise<T>, interval: number, onError: (error: unknown) => void): () => Promise<T | undefined> {
  let value: T | undefined;
  let at = -Infinity;
  let latest: Promise<T | undefined> = Promise.resolve(undefined);
  return () => {
    const now = performance.now();
    if (now - at >= interval) {
      at = now;
      latest = read().then(
        (fresh) => (value = fresh),
        (error: unknown) => {
          onError(error);
          return value;
        },
      );
    }
    return latest;
  };
}

/** Where the metrics read what they do not count themselves. */
interface MetricsSources {
  store: Store;
  blobs: BlobStore;
  onError: (error: unknown) => void;
}

/** The metrics of one registry handler. */
export class RegistryMetrics {
  readonly registry: PromRegistry;
  /** Whether the handler answers GET /metrics. */
  readonly endpoint: boolean;
  /** What the mirrors count: pulls by result, upstream bytes and errors. */
  readonly mirrors: MirrorCounters;
  /** Counts a store call of a pull statistics flush: written or failed, with its entries. */
  readonly pullFlushes: (written: boolean, entries: number) => void;
  #inFlight = 0;
  readonly #requests: RequestCell[] = [];
  // route → method → status: lookups by strings whose hashes V8 keeps (literals, node's method names), no key built per request.
  readonly #byRoute = new Map<string, Map<string, Map<number, RequestCell>>>();
  readonly #latency = new Map<string, LatencyCell>();
  readonly #bytes = new Map<string, ByteCell>();
  readonly #operations = new Map<string, LatencyCell>();

  /** @throws Error when a metric of the same name is in `options.registry` already. */
  constructor(options: MetricsOptions, sources: MetricsSources) {
    this.registry = options.registry ?? new PromRegistry();
    this.endpoint = options.endpoint ?? true;
    const registers = [this.registry];
    this.#requestMetrics(registers);
    this.#stateGauges(registers, sources.blobs);
    this.mirrors = mirrorCounters(registers);
    this.pullFlushes = pullFlushCounters(registers);
    const interval = options.statsInterval ?? DEFAULT_STATS_INTERVAL;
    storeGauges(registers, everyInterval(() => sources.store.stats({ top: 0 }), interval, sources.onError));
    notifyGauges(registers, everyInterval(() => sources.store.notifications.status(), interval, sources.onError));
    usageGauges(registers, everyInterval(() => sources.store.usage(), interval, sources.onError));
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** The request counts, the latency histograms (requests and store calls) and the bytes, each filled from the cells when scraped. */
  #requestMetrics(registers: PromRegistry[]): void {
    // collect() runs with the metric as `this`: the cells come in by closure.
    const requests = this.#requests;
    const bytes = this.#bytes;
    new Counter({
      name: 'regmeta_http_requests_total',
      help: 'Requests answered, by method, route kind and status (499: the client went away first).',
      labelNames: ['method', 'route', 'status'],
      registers,
      collect() {
        this.reset();
        for (const cell of requests) this.inc(cell.labels, cell.count);
      },
    });
    const histograms: Array<[string, string, string, Map<string, LatencyCell>]> = [
      ['regmeta_http_request_duration_seconds', 'Time from a request\'s arrival to its response\'s end, by method and route kind.', 'method,route', this.#latency],
      ['regmeta_store_operation_duration_seconds', 'Time the metadata store took per call the server made, by operation (the store method).', 'operation', this.#operations],
    ];
    for (const [name, help, labelNames, cells] of histograms) {
      new Histogram({
        name,
        help,
        labelNames: labelNames.split(','),
        buckets: [...LATENCY_BUCKETS],
        registers,
        collect() {
          exportCells(this, cells.values());
        },
      });
    }
    for (const [name, help, field] of [
      ['regmeta_http_received_bytes_total', 'Bytes read from clients (request lines, headers and bodies), by route kind.', 'received'],
      ['regmeta_http_sent_bytes_total', 'Bytes written to clients (headers and bodies), by route kind.', 'sent'],
    ] as const) {
      new Counter({
        name,
        help,
        labelNames: ['route'],
        registers,
        collect() {
          this.reset();
          for (const cell of bytes.values()) this.inc(cell.labels, cell[field]);
        },
      });
    }
  }

  /** Requests in flight and upload sessions open, read when scraped. */
  #stateGauges(registers: PromRegistry[], blobs: BlobStore): void {
    const inFlight = () => this.#inFlight;
    new Gauge({
      name: 'regmeta_http_requests_in_flight',
      help: 'Requests being answered now (event streams and this scrape included).',
      registers,
      collect() {
        this.set(inFlight());
      },
    });
    new Gauge({
      name: 'regmeta_upload_sessions',
      // Read from the session table, the metadata database: not this process's alone.
      help: 'Blob upload sessions open now in the metadata database, every replica\'s (each replica reports the same number: take max, not sum).',
      registers,
      async collect() {
        // A database that does not answer leaves the last value: the scrape still answers.
        const count = await blobs.countUploads().catch(() => undefined);
        if (count !== undefined) this.set(count);
      },
    });
  }

  /** A request arrived. */
  started(): void {
    this.#inFlight++;
  }

  /**
   * A request's response closed: counted under its route, or, refused
   * before routing (a 401), the route its path makes; status 499 when the
   * client went away before the answer was complete, as nginx logs it.
   * @param seconds how long it took.
   * @param sent what it wrote to its socket.
   */
  closed(c: CountedRequest, seconds: number, sent: number): void {
    const { req, res } = c;
    const method = req.method ?? '';
    const route = c.route ?? routeKindOf(method, (req.url ?? '').split('?')[0]);
    const status = res.writableFinished ? res.statusCode : 499;
    this.finished(method, route, status, seconds, req.socket, sent);
  }

  /**
   * A request's response closed. Bytes received are what the connection
   * read since the previous response on it closed: its request line,
   * headers and body, which the handler never sees as such.
   */
  finished(method: string, route: string, status: number, seconds: number, socket: Socket, sent: number): void {
    this.#inFlight--;
    const cell = this.#byRoute.get(route)?.get(method)?.get(status) ?? this.#requestCell(method, route, status);
    cell.count++;
    cell.latency.observe(seconds);
    const marked = socket as Socket & { [READ_MARK]?: number };
    const read = socket.bytesRead;
    cell.bytes.received += read - (marked[READ_MARK] ?? 0);
    marked[READ_MARK] = read;
    cell.bytes.sent += sent;
  }

  #requestCell(method: string, route: string, status: number): RequestCell {
    const latencyKey = `${method} ${route}`;
    let latency = this.#latency.get(latencyKey);
    if (latency === undefined) this.#latency.set(latencyKey, (latency = new LatencyCell({ method, route })));
    let bytes = this.#bytes.get(route);
    if (bytes === undefined) this.#bytes.set(route, (bytes = { labels: { route }, received: 0, sent: 0 }));
    const cell: RequestCell = { labels: { method, route, status: String(status) }, count: 0, latency, bytes };
    this.#requests.push(cell);
    let methods = this.#byRoute.get(route);
    if (methods === undefined) this.#byRoute.set(route, (methods = new Map()));
    let statuses = methods.get(method);
    if (statuses === undefined) methods.set(method, (statuses = new Map()));
    statuses.set(status, cell);
    return cell;
  }

  /** `store` with each method's calls timed into regmeta_store_operation_duration_seconds. */
  timed(store: Store): Store {
    return timedStore(store, (operation): Timing => {
      const cell = new LatencyCell({ operation });
      this.#operations.set(operation, cell);
      return (seconds) => cell.observe(seconds);
    });
  }

  /**
   * The metrics in the registry's format (Prometheus text, unless the
   * registry given was made for OpenMetrics).
   * @throws what a collect function of the registry throws.
   */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

const READ_MARK = Symbol('regmeta.bytesReadCounted');

/** Each webhook endpoint's delivery state, from a read of at most once per interval. */
function notifyGauges(registers: PromRegistry[], status: () => Promise<NotificationStatus[] | undefined>): void {
  const gauges: Array<[string, string, (s: NotificationStatus) => number | undefined]> = [
    ['regmeta_notify_backlog_events', 'Events committed and not yet delivered to the endpoint.', (s) => s.backlog],
    ['regmeta_notify_failures', 'Failed deliveries to the endpoint since its last success.', (s) => s.failures],
    ['regmeta_notify_missed_events', 'Events pruned from the log before the endpoint acknowledged them, in all.', (s) => s.missed?.count ?? 0],
    [
      'regmeta_notify_last_success_timestamp_seconds',
      'When the endpoint last acknowledged a delivery (absent: never).',
      (s) => (s.lastSuccessAt === undefined ? undefined : s.lastSuccessAt.getTime() / 1000),
    ],
  ];
  for (const [name, help, value] of gauges) {
    new Gauge({
      name,
      help: `${help} Read at most once per stats interval.`,
      labelNames: ['endpoint'],
      registers,
      async collect() {
        const read = await status();
        this.reset();
        // Labelled as shown everywhere (a name, or scheme://host:port): the URL's path and query may hold a secret.
        const states = read ?? [];
        const labels = endpointLabels(states.map((s) => s.endpoint));
        states.forEach((s, i) => {
          const v = value(s);
          if (v !== undefined) this.set({ endpoint: labels[i] }, v);
        });
      },
    });
  }
}
