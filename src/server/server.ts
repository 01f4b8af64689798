// The registry as a node:http or node:https server of its own: the handler,
// plus what only a server can do (connection limits, a graceful shutdown),
// and startRegistry, which also opens the store and listens.

import type { EventEmitter } from 'node:events';
import { createServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Server as NetServer } from 'node:net';
import path from 'node:path';
import { createSecureContext } from 'node:tls';
import { asyncStore, openStore, type Store, type MetadataStore } from '../store/index.js';
import { Notifier, type NotifierOptions } from '../notify/index.js';
import { handlerParts, toAsyncStore, type HandlerParts, type RegistryOptions } from './handler.js';
import { metricsListener } from './handlers/metrics.js';
import { Maintenance, type MaintenanceOptions } from './maintenance.js';

/** The server createRegistry makes: plain HTTP, or HTTPS when given a certificate. */
/** The SQLite file of a registry's metadata in its data directory, when the metadata is not elsewhere. */
export const DATABASE_FILE = 'metadata.db';

export type RegistryServer = HttpServer | HttpsServer;

/** A certificate chain and its private key, PEM-encoded. */
export interface TlsFiles {
  cert: string | Buffer;
  key: string | Buffer;
}

/** createRegistry's options: the handler's, plus a certificate to serve HTTPS with. */
export interface RegistryServerOptions extends RegistryOptions {
  /** When given, the server speaks HTTPS only (no plain HTTP on the same port). */
  tls?: TlsFiles;
}

/** The event closeRegistry emits on a registry server to start its shutdown: a symbol, so that no one else's listener hears it. */
const DRAIN = Symbol('drain');

/**
 * Creates the registry server (not yet listening), with the connection
 * limits applied: an https server when `options.tls` is given, else http.
 * @throws what createRegistryHandler throws; Error from node:tls when the
 * certificate or key cannot be parsed or do not belong together.
 */
export function createRegistry(options: RegistryServerOptions & { tls: TlsFiles }): HttpsServer;
export function createRegistry(options: RegistryServerOptions): RegistryServer;
export function createRegistry(options: RegistryServerOptions): RegistryServer {
  return registryServer(options).server;
}

/** createRegistry's server, with the handler's parts that startRegistry reads (metrics, public URL). */
function registryServer(options: RegistryServerOptions): { server: RegistryServer; parts: HandlerParts } {
  // Parse the certificate first: a bad one must not leave a handler (and its threads) behind.
  const secure = options.tls === undefined ? undefined : checkedTls(options.tls);
  const parts = handlerParts(options);
  const { handler, connections } = parts;
  const { handshakeTimeout, ...http } = connections.serverOptions;
  const server: RegistryServer =
    secure === undefined ? createServer(http, handler) : createHttpsServer({ ...secure, ...http, handshakeTimeout }, handler);
  connections.attach(server);
  parts.onResponseClosed = () => {
    if (parts.closing) setImmediate(() => server.closeIdleConnections());
  };
  (server as EventEmitter).on(DRAIN, () => parts.drain());
  server.on('close', () => {
    handlerClosing.set(server, handler.close().catch(options.onError ?? ((error: unknown) => console.error(error))));
  });
  return { server, parts };
}

/**
 * The handler's close (the mirrors' last pulls written, among others),
 * started as its server closes: what closeRegistry waits for, so that a
 * caller closes the store only after it.
 */
const handlerClosing = new WeakMap<RegistryServer, Promise<void>>();

/**
 * Shuts the server down gracefully: stops accepting, ends event streams and
 * idle keep-alive connections, lets in-flight requests finish, and resolves
 * once every connection is gone and the handler has closed (the mirrors'
 * noted pulls written). After `timeout` ms the stragglers are cut.
 * The store stays open: it is the caller's to close.
 */
export function closeRegistry(server: RegistryServer, timeout = 30_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), timeout).unref();
    server.close(() => {
      clearTimeout(timer);
      resolve(handlerClosing.get(server));
    });
    (server as EventEmitter).emit(DRAIN);
    server.closeIdleConnections();
  });
}

/**
 * Replaces the certificate of an https registry server: connections made
 * from then on get the new one; open connections keep theirs and go on.
 * @throws Error from node:tls when the certificate or key cannot be parsed
 * or do not belong together (the server keeps the old one); TypeError for a
 * plain http server.
 */
export function setRegistryCertificate(server: RegistryServer, tls: TlsFiles): void {
  if (!('setSecureContext' in server)) throw new TypeError('not an https server');
  server.setSecureContext(checkedTls(tls));
}

/**
 * The certificate and key, once node:tls has parsed them and checked that
 * they match: setSecureContext would otherwise half-apply a bad pair.
 * @throws Error from node:tls.
 */
function checkedTls(tls: TlsFiles): TlsFiles {
  createSecureContext({ cert: tls.cert, key: tls.key });
  return { cert: tls.cert, key: tls.key };
}

/** A registry listening on its own, from startRegistry. */
export interface StartedRegistry {
  /** Where it listens, as http://host:port or https://host:port. */
  url: string;
  server: RegistryServer;
  /** The metadata as the registry reaches it: `options.store` (a MetadataStore behind asyncStore), or the store it opened. */
  store: Store;
  /** Delivers the event log to webhooks when `options.notify` named endpoints. */
  notifier?: Notifier;
  /** Where GET /metrics is answered without credentials, as http://host:port, when `options.metricsListen` was given. */
  metricsUrl?: string;
  /** The maintenance schedule, when `options.maintenance` was given. */
  maintenance?: Maintenance;
  /** Stops the maintenance schedule and the notifier, shuts down as closeRegistry does, then closes the store if startRegistry opened it. */
  close(): Promise<void>;
}

/** startRegistry's options: createRegistry's, plus where to listen and what to notify. */
export interface StartRegistryOptions extends Omit<RegistryServerOptions, 'store'> {
  /** The metadata (as RegistryOptions.store); default: a SQLite store in `<dataDir>/metadata.db`, opened and closed here. */
  store?: MetadataStore | Store;
  host?: string;
  port?: number;
  /**
   * A server already listening, whose socket the registry takes over
   * instead of listening on `host` and `port`: bound before anything is
   * created or opened (as `regmeta serve` does, so that a port taken leaves
   * no data directory behind), or handed over by a supervisor. Theirs from
   * the call on: closed with the registry, or when startRegistry fails.
   */
  listener?: NetServer;
  /** Webhooks: every event POSTed to each endpoint (see src/notify), from a loop beside the server. */
  notify?: Omit<NotifierOptions, 'store' | 'baseUrl'>;
  /**
   * A plain-HTTP listener of its own for GET /metrics, which asks no
   * credentials: bind it to an address only the monitoring reaches (host
   * default 127.0.0.1; port 0 lets the kernel choose). It turns the metrics
   * on; the main listener answers /metrics only as `metrics` says.
   */
  metricsListen?: { host?: string; port: number };
  /**
   * The maintenance schedule (event pruning, and other jobs): every
   * `interval`, the replica holding the store's lease runs the jobs, one
   * replica at a time. Stopped (a running round aborted) by close().
   */
  maintenance?: MaintenanceOptions;
}

/** Starts webhook delivery when endpoints are configured; its errors and warnings go to the registry's. */
async function startNotifier(options: StartRegistryOptions, store: Store, baseUrl: string): Promise<Notifier | undefined> {
  if (options.notify === undefined || options.notify.endpoints.length === 0) return undefined;
  const fault = options.onError;
  const warn = options.onWarning;
  const notifier = new Notifier({
    ...options.notify,
    store,
    baseUrl,
    onError: options.notify.onError ?? (fault && ((error) => fault(error))),
    onWarning: options.notify.onWarning ?? (warn && ((message, endpoint) => warn(`notify ${endpoint}: ${message}`))),
  });
  await notifier.start();
  return notifier;
}

/** Starts the maintenance schedule when configured. */
function startMaintenance(options: StartRegistryOptions, store: Store): Maintenance | undefined {
  if (options.maintenance === undefined) return undefined;
  const maintenance = new Maintenance(store, options.maintenance);
  maintenance.start();
  return maintenance;
}

/**
 * Opens the store (`<dataDir>/metadata.db`, unless `options.store` is given),
 * creates the registry (HTTPS with `options.tls`) and listens on `host`
 * (default 127.0.0.1) and `port` (default 5000; 0 lets the kernel choose);
 * then starts the webhook notifier when `options.notify` names endpoints,
 * and the maintenance schedule when `options.maintenance` is given.
 * @throws StoreError from openStore or the notifier's cursors; TypeError for
 * notify endpoints the Notifier refuses (a URL not http(s), a bad name, two
 * on one cursor); what createRegistry throws; the listen error (EADDRINUSE,
 * EACCES).
 */
export async function startRegistry(options: StartRegistryOptions): Promise<StartedRegistry> {
  const dataDir = path.resolve(options.dataDir);
  const owned = options.store === undefined;
  const store = options.store === undefined ? asyncStore(openStore(path.join(dataDir, DATABASE_FILE))) : toAsyncStore(options.store);
  let server: RegistryServer | undefined;
  let parts: HandlerParts;
  let notifier: Notifier | undefined;
  let metricsServer: HttpServer | undefined;
  let url: string;
  let metricsUrl: string | undefined;
  let maintenance: Maintenance | undefined;
  let listener = options.listener;
  try {
    ({ server, parts } = registryServer({ ...options, store, dataDir, metrics: metricsOption(options) }));
    if (listener === undefined) await listen(server, options.port ?? 5000, options.host ?? '127.0.0.1');
    else {
      await listen(server, listener);
      // The socket is the registry's now: closing the registry closes it.
      listener = undefined;
    }
    url = urlOf(server, options.tls === undefined ? 'http' : 'https');
    if (options.metricsListen !== undefined) {
      const onError = options.onError ?? ((error: unknown) => console.error(error));
      metricsServer = createServer(metricsListener(parts.registry.metrics!, onError));
      await listen(metricsServer, options.metricsListen.port, options.metricsListen.host ?? '127.0.0.1');
      metricsUrl = urlOf(metricsServer, 'http');
    }
    notifier = await startNotifier(options, store, parts.registry.publicUrl ?? url);
    maintenance = startMaintenance(options, store);
  } catch (error) {
    server?.close();
    listener?.close();
    metricsServer?.close();
    await notifier?.stop();
    if (owned) await store.close();
    throw error;
  }
  const listening = server;
  return {
    url,
    server: listening,
    store,
    notifier,
    metricsUrl,
    maintenance,
    async close() {
      await maintenance?.stop();
      await notifier?.stop();
      await Promise.all([closeRegistry(listening), closeMetrics(metricsServer)]);
      if (owned) await store.close();
    },
  };
}

/**
 * The handler's metrics option under startRegistry: with a listener of
 * their own the metrics are on, and the main listener answers /metrics only
 * when `metrics` asked for it.
 */
function metricsOption(options: StartRegistryOptions): RegistryOptions['metrics'] {
  const { metrics, metricsListen } = options;
  if (metricsListen === undefined) return metrics;
  if (typeof metrics === 'object') return metrics;
  return { endpoint: metrics === true };
}

function urlOf(server: RegistryServer, scheme: string): string {
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${scheme}://${host}:${address.port}`;
}

/** Closes the metrics listener: scrapes are short, so open connections are cut rather than waited for. */
function closeMetrics(server: HttpServer | undefined): Promise<void> {
  if (server === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Listens on `port` and `host`, or on the socket of `listener`, a server already listening. */
function listen(server: RegistryServer, ...where: [port: number, host: string] | [listener: NetServer]): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve();
    };
    if (where.length === 2) server.listen(where[0], where[1], done);
    else server.listen(where[0], done);
  });
}
