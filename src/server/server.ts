// The registry as a node:http server: authentication, the read-only and
// no-delete switches, routing, and one log entry per request. Handlers stay
// thin over the store and the blob files.

import { createServer, type Server } from 'node:http';
import { DirectoryBlobStore } from '../blobstore/index.js';
import type { MetadataStore } from '../index.js';
import { BasicAuth, readHtpasswd } from './auth.js';
import { Connections, type ConnectionLimits } from './connections.js';
import { HttpError, sendError } from './errors.js';
import { FaultsOnce } from './faults.js';
import * as blobs from './handlers/blobs.js';
import * as discovery from './handlers/discovery.js';
import * as events from './handlers/events.js';
import * as manifests from './handlers/manifests.js';
import type { Registry, RequestContext } from './http.js';
import { isWrite, parseRoute, type Route } from './routes.js';

/** One line of the request log. */
export interface RequestLogEntry {
  time: string;
  method: string;
  path: string;
  status: number;
  /** Bytes written to the socket for this response, headers included. */
  bytes: number;
  ms: number;
  actor: string;
}

export interface RegistryOptions extends Partial<ConnectionLimits> {
  store: MetadataStore;
  /** Holds blobs/ and uploads/ (created when missing). */
  dataDir: string;
  /** An htpasswd file of bcrypt hashes: when given, every request must authenticate. */
  htpasswd?: string;
  /** Users who may read everyone's events (with no htpasswd, everyone may). */
  admins?: string[];
  /** Refuse every write with 405 UNSUPPORTED. */
  readOnly?: boolean;
  /** Manifest, tag and blob deletes (default true; false answers 405 UNSUPPORTED). */
  deletes?: boolean;
  /** The largest blob accepted, in bytes (default 64 GiB). */
  maxBlobSize?: number;
  /** Upload sessions one client address may hold open at once (default 256; 0: no cap). */
  maxUploadsPerAddress?: number;
  /** Receives one entry per finished request. */
  log?: (entry: RequestLogEntry) => void;
  /**
   * Receives server faults (5xx) and their detail, which the client never
   * sees, and, once per blob, a blob linked in the store whose file is gone.
   */
  onError?: (error: unknown) => void;
}

interface Internals {
  registry: Registry;
  /** closeRegistry was called: every response closes its connection. */
  closing: boolean;
}

const internals = new WeakMap<Server, Internals>();

/**
 * Creates the registry server (not yet listening).
 * @throws Error when the htpasswd file cannot be read or the data directory created.
 */
export function createRegistry(options: RegistryOptions): Server {
  const blobStore = new DirectoryBlobStore(options.dataDir, {
    maxBlobSize: options.maxBlobSize,
    maxUploadsPerAddress: options.maxUploadsPerAddress,
  });
  blobStore.init();
  const onError = options.onError ?? ((error: unknown) => console.error(error));
  const auth = options.htpasswd === undefined ? undefined : new BasicAuth(readHtpasswd(options.htpasswd));
  const admins = new Set(options.admins ?? []);
  const connections = new Connections(options);
  const registry: Registry = {
    store: options.store,
    blobs: blobStore,
    faults: new FaultsOnce(onError),
    readOnly: options.readOnly ?? false,
    deletes: options.deletes ?? true,
    isAdmin: (user) => auth === undefined || admins.has(user),
    streams: new Set(),
    heartbeatInterval: connections.heartbeatInterval,
  };
  const log = options.log ?? (() => {});

  const state: Internals = { registry, closing: false };
  const server = createServer((req, res) => {
    const started = performance.now();
    const socket = req.socket;
    const bytesBefore = socket.bytesWritten;
    const c: RequestContext = {
      req,
      res,
      url: new URL('http://registry.invalid/'),
      registry,
      actor: '',
      ctx: {},
    };
    if (state.closing) res.setHeader('Connection', 'close');
    res.once('close', () => {
      if (state.closing) setImmediate(() => server.closeIdleConnections());
      log({
        time: new Date().toISOString(),
        method: req.method ?? '',
        path: (req.url ?? '').split('?')[0].slice(0, 1024),
        // 499, as nginx logs it: the client went away before the answer was complete.
        status: res.writableFinished ? res.statusCode : 499,
        bytes: socket.bytesWritten - bytesBefore,
        ms: Math.round((performance.now() - started) * 100) / 100,
        actor: c.actor,
      });
    });
    handle(c, auth, connections).catch((error: unknown) => {
      // A client that hung up mid-request caused the error and hears no answer.
      if (req.destroyed && !req.complete) {
        res.destroy();
        return;
      }
      try {
        sendError(req, res, error, onError);
      } catch (failure) {
        // Nothing can be answered any more; the process must not go down with it.
        onError(failure);
        res.destroy();
      }
    });
  });
  connections.attach(server);
  server.on('close', () => blobStore.close());
  internals.set(server, state);
  return server;
}

async function handle(c: RequestContext, auth: BasicAuth | undefined, connections: Connections): Promise<void> {
  const { req, res } = c;
  connections.begin(req, res);
  res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
  const target = req.url ?? '/';
  try {
    c.url = new URL(target, 'http://registry.invalid');
  } catch {
    throw new HttpError('NAME_INVALID', 'malformed request target');
  }
  // URL parsing resolves '.' and '..' segments (also percent-encoded ones);
  // a path that needed that names something other than what it says.
  const rawPath = target.split('?')[0];
  if (!target.startsWith('/') || rawPath !== c.url.pathname) {
    throw new HttpError('NAME_INVALID', 'the request path is not in normal form');
  }
  // Authentication comes before routing: an unauthenticated client learns
  // nothing, not even which names are valid.
  if (auth) {
    c.actor = await auth.authenticate(req.headers.authorization);
    c.ctx = { actor: c.actor };
  }
  const method = req.method ?? 'GET';
  const route = parseRoute(method, c.url.pathname);
  const { registry } = c;
  if (registry.readOnly && isWrite(method)) {
    throw new HttpError('UNSUPPORTED', 'the registry is read-only');
  }
  if (!registry.deletes && method === 'DELETE' && (route.kind === 'manifest' || route.kind === 'blob')) {
    throw new HttpError('UNSUPPORTED', 'deletes are disabled on this registry');
  }
  await dispatch(c, method, route);
}

function dispatch(c: RequestContext, method: string, route: Route): void | Promise<void> {
  switch (route.kind) {
    case 'base':
      return discovery.base(c);
    case 'catalog':
      return discovery.catalog(c);
    case 'tags':
      return discovery.listTags(c, route.name);
    case 'referrers':
      return discovery.referrers(c, route.name, route.digest);
    case 'manifest':
      if (method === 'PUT') return manifests.putManifest(c, route.name, route.reference);
      if (method === 'DELETE') return manifests.deleteManifest(c, route.name, route.reference);
      return manifests.getManifest(c, route.name, route.reference);
    case 'blob':
      if (method === 'DELETE') return blobs.deleteBlob(c, route.name, route.digest);
      return blobs.getBlob(c, route.name, route.digest);
    case 'uploadStart':
      return blobs.startUpload(c, route.name);
    case 'upload':
      if (method === 'PATCH') return blobs.patchUpload(c, route.name, route.id);
      if (method === 'PUT') return blobs.finishUpload(c, route.name, route.id);
      if (method === 'DELETE') return blobs.cancelUpload(c, route.name, route.id);
      return blobs.uploadStatus(c, route.name, route.id);
    case 'events':
      return events.listEvents(c);
    case 'eventStream':
      return events.streamEvents(c);
  }
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
    const state = internals.get(server);
    if (state) {
      state.closing = true;
      for (const stream of state.registry.streams) stream.end();
    }
    server.closeIdleConnections();
  });
}
