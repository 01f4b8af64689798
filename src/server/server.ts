// The registry as a node:http server of its own: the handler, plus what
// only a server can do (connection limits, a graceful shutdown), and
// startRegistry, which also opens the store and listens.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { openStore, type MetadataStore } from '../index.js';
import { createRegistryHandler, handlerInternals, type RegistryHandler, type RegistryOptions } from './handler.js';

const handlers = new WeakMap<Server, RegistryHandler>();

/**
 * Creates the registry server (not yet listening), with the connection
 * limits applied.
 * @throws what createRegistryHandler throws.
 */
export function createRegistry(options: RegistryOptions): Server {
  const handler = createRegistryHandler(options);
  const state = handlerInternals(handler);
  const server = createServer(handler);
  state.connections.attach(server);
  state.onResponseClosed = () => {
    if (state.closing) setImmediate(() => server.closeIdleConnections());
  };
  server.on('close', () => {
    handler.close().catch(options.onError ?? ((error: unknown) => console.error(error)));
  });
  handlers.set(server, handler);
  return server;
}

/**
 * Shuts the server down gracefully: stops accepting, ends event streams and
 * idle keep-alive connections, lets in-flight requests finish, and resolves
 * once every connection is gone. After `timeout` ms the stragglers are cut.
 * The store stays open: it is the caller's to close.
 */
export function closeRegistry(server: Server, timeout = 30_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), timeout).unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    const handler = handlers.get(server);
    if (handler !== undefined) handlerInternals(handler).drain();
    server.closeIdleConnections();
  });
}

/** A registry listening on its own, from startRegistry. */
export interface StartedRegistry {
  /** Where it listens, as http://host:port. */
  url: string;
  server: Server;
  store: MetadataStore;
  /** Shuts down as closeRegistry does, then closes the store if startRegistry opened it. */
  close(): Promise<void>;
}

/**
 * Opens the store (`<dataDir>/metadata.db`, unless `options.store` is given),
 * creates the registry and listens on `host` (default 127.0.0.1) and `port`
 * (default 5000; 0 lets the kernel choose).
 * @throws StoreError from openStore; what createRegistry throws; the listen
 * error (EADDRINUSE, EACCES).
 */
export async function startRegistry(
  options: Omit<RegistryOptions, 'store'> & { store?: MetadataStore; host?: string; port?: number },
): Promise<StartedRegistry> {
  const dataDir = path.resolve(options.dataDir);
  const store = options.store ?? openStore(path.join(dataDir, 'metadata.db'));
  const owned = options.store === undefined;
  let server: Server | undefined;
  try {
    server = createRegistry({ ...options, store, dataDir });
    await listen(server, options.port ?? 5000, options.host ?? '127.0.0.1');
  } catch (error) {
    server?.close();
    if (owned) store.close();
    throw error;
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const listening = server;
  return {
    url: `http://${host}:${address.port}`,
    server: listening,
    store,
    async close() {
      await closeRegistry(listening);
      if (owned) store.close();
    },
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
