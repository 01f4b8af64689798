// The registry as a plain (req, res) handler: authentication, the read-only
// and no-delete switches, routing, and one log entry per request. Handlers
// stay thin over the store and the blob files. Mount it into any node:http
// or https server, as go-containerregistry's registry.New() is an http.Handler.
// Its options (RegistryOptions) are documented in handler-options.ts.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry as PromRegistry } from 'prom-client';
import { createBlobStore, type BlobStore } from '../blobstore/index.js';
import { asyncStore, immutableRules, MetadataStore, type Store } from '../store/index.js';
import { Access, readAccessRules } from './access.js';
import { BasicAuth, carriesNoCredentials, readHtpasswd } from './auth.js';
import { adminRule, authorize } from './authorize.js';
import { Connections } from './connections.js';
import { HttpError, sendError } from './errors.js';
import { FaultsOnce, type FaultContext } from './faults.js';
import * as blobs from './handlers/blobs.js';
import * as discovery from './handlers/discovery.js';
import * as events from './handlers/events.js';
import * as usage from './handlers/usage.js';
import * as tagDetails from './handlers/tag-details.js';
import * as health from './handlers/health.js';
import * as manifests from './handlers/manifests.js';
import { scrape } from './handlers/metrics.js';
import { publicOrigin, type Registry } from './http.js';
import { Readiness } from './readiness.js';
import { assignRequestId, requestLogEntry, type RequestLogEntry } from './request-log.js';
import { RegistryMetrics } from './metrics.js';
import { RequestState, requestPath } from './request.js';
import { isProbe, isWrite, parseRoute, type Route } from './routes.js';
import { createMirrors, type Mirrors } from './mirror/mirrors.js';
import { resolveMirrors } from './mirror/options.js';
import { checkPullOptions, pullRecorderOf } from './pulls.js';
import type { RegistryOptions } from './handler-options.js';

export type { RegistryOptions };

/** The registry as a request listener, with what it holds to let go of. */
export interface RegistryHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  /**
   * Ends the event streams and stops the upload sweeper and the password
   * threads. The store stays open: it is the caller's to close.
   */
  close(): Promise<void>;
  /** The prom-client Registry holding the handler's metrics; undefined when they are off. */
  readonly metrics?: PromRegistry;
}

/**
 * A handler with the parts createRegistry drives: its connection limits,
 * its registry (metrics, public URL) and its shutdown. Not exported from the
 * package: createRegistryHandler hands out the handler alone.
 */
export interface HandlerParts {
  handler: RegistryHandler;
  connections: Connections;
  registry: Registry;
  /** Set while the server shuts down: every response closes its connection. */
  closing: boolean;
  /** Starts the shutdown: responses close their connections, event streams end. */
  drain(): void;
  /** Called as each response closes (createRegistry closes idle connections then). */
  onResponseClosed?: () => void;
}

/**
 * Creates the registry as a `(req, res)` request listener over `options.store`
 * and the blobs under `options.dataDir` or in `options.storage`. Connection limits (timeouts,
 * connection caps, the minimum body rate) need the server: createRegistry
 * applies them.
 * @throws Error when the htpasswd or access file cannot be read, a limit is not a
 * number ≥ 0 (headersTimeout: > 0), or the data directory cannot be created;
 * TypeError when pulls.flushInterval is not a number > 0;
 * TypeError from createBlobStore for S3 options it refuses;
 * AccessRulesError when the access rules do not hold together.
 */
export function createRegistryHandler(options: RegistryOptions): RegistryHandler {
  return handlerParts(options).handler;
}

/** createRegistryHandler's handler, with the parts a server of its own drives. @throws as createRegistryHandler. */
export function handlerParts(options: RegistryOptions): HandlerParts {
  const { registry, auth, connections, blobStore, onError, mirrors, pulls } = assemble(options);
  const parts = {
    connections,
    registry,
    closing: false,
    drain() {
      parts.closing = true;
      for (const stream of registry.streams) stream.end();
    },
  } as HandlerParts;
  const handler = listener(parts, { auth, mirrors }, onError, options.log ?? (() => {})) as RegistryHandler;
  let closed: Promise<void> | undefined;
  Object.defineProperty(handler, 'metrics', { value: registry.metrics?.registry, enumerable: true });
  handler.close = () =>
    (closed ??= (async () => {
      parts.drain();
      blobStore.close();
      await mirrors?.close();
      // After the mirrors: what they noted last is written too.
      await pulls?.close();
      await auth?.close();
    })());
  parts.handler = handler;
  return parts;
}

/** What a handler is made of, from its options. @throws as createRegistryHandler. */
function assemble(options: RegistryOptions) {
  const access = accessOf(options);
  checkPullOptions(options.pulls);
  const store = toAsyncStore(options.store);
  // Sessions in the metadata database: any replica takes any chunk, a restart loses none.
  const storage = options.storage === undefined ? { directory: options.dataDir } : { s3: options.storage };
  const blobStore = createBlobStore(storage, {
    maxBlobSize: options.maxBlobSize,
    maxUploadsPerAddress: options.maxUploadsPerAddress,
    uploadTtl: options.uploadTtl,
    sessions: store.uploads,
  });
  blobStore.init();
  const onError = options.onError ?? ((error: unknown) => console.error(error));
  // Checked before anything starts: a bad entry is the caller's mistake, not a half-built registry.
  const mirrored = options.mirrors?.length || options.mirrorDefault !== undefined ? resolveMirrors(options.mirrors ?? [], options.mirrorDefault) : undefined;
  const auth = options.htpasswd === undefined ? undefined : new BasicAuth(readHtpasswd(options.htpasswd, options.onWarning), options);
  const connections = new Connections(options);
  const metrics = metricsOf(options, store, blobStore, onError);
  const timed = metrics === undefined ? store : metrics.timed(store);
  // Through the timed store: the flushes show among the store's calls.
  const pulls = pullRecorderOf(options.pulls, mirrored !== undefined, timed, onError, metrics?.pullFlushes);
  const { mirrorDefault, dataDir, onWarning } = options;
  const mirrors = mirrored && createMirrors(mirrored, { mirrorDefault, dataDir, onWarning, store, blobs: blobStore, onError, counters: metrics?.mirrors, pulls: pulls! });
  const registry: Registry = {
    store: timed,
    blobs: blobStore,
    faults: new FaultsOnce(onError),
    readOnly: options.readOnly ?? false,
    deletes: options.deletes ?? true,
    redirect: options.storageRedirect ?? false,
    isAdmin: adminRule(access, auth !== undefined, options.admins ?? []),
    access,
    streams: new Set(),
    heartbeatInterval: connections.heartbeatInterval,
    readiness: new Readiness(store, blobStore, options.minFreeDisk),
    logins: auth !== undefined,
    metrics,
    publicUrl: options.publicUrl === undefined ? undefined : checkedPublicUrl(options.publicUrl),
    immutable: store.policy.immutable?.length ? immutableRules(store.policy) : undefined,
    warn: onWarning ?? ((message) => console.warn(message)),
    pulls: options.pulls?.stats === false ? undefined : pulls,
  };
  return { registry, auth, connections, blobStore, onError, mirrors, pulls };
}

/**
 * The request listener: each request counted and logged when its response
 * closes, and whatever it throws answered as the OCI error envelope.
 */
function listener(
  parts: Omit<HandlerParts, 'handler'>,
  front: Front,
  onError: (error: unknown, request?: FaultContext) => void,
  log: (entry: RequestLogEntry) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  const { registry, connections } = parts;
  const { metrics } = registry;
  return (req, res) => {
    const started = performance.now();
    const bytesBefore = req.socket.bytesWritten;
    const c = new RequestState(req, res, registry);
    assignRequestId(c);
    c.closing = parts.closing;
    metrics?.started();
    // The request's one 'close' listener: a listener each (connections, watchdog) would cost more than its work.
    res.on('close', () => {
      connections.end(req, res);
      parts.onResponseClosed?.();
      const ms = performance.now() - started;
      const sent = req.socket.bytesWritten - bytesBefore;
      metrics?.closed(c, ms / 1000, sent);
      log(requestLogEntry(c, ms, sent));
    });
    handle(c, front, connections).catch((error: unknown) => {
      // A client that hung up mid-request caused the error and hears no answer.
      if (req.destroyed && !req.complete) {
        res.destroy();
        return;
      }
      const fault = { requestId: c.requestId };
      try {
        if (!res.headersSent) c.setCommonHeaders();
        sendError(req, res, error, (failure) => onError(failure, fault));
      } catch (failure) {
        // Nothing can be answered any more; the process must not go down with it.
        onError(failure, fault);
        res.destroy();
      }
    });
  };
}

/** `store` as the handlers reach it: a MetadataStore through asyncStore, a Store as it is. */
export function toAsyncStore(store: MetadataStore | Store): Store {
  return store instanceof MetadataStore ? asyncStore(store) : store;
}

/** @throws Error when `options.metrics.registry` holds a metric of the same name already. */
function metricsOf(options: RegistryOptions, store: Store, blobs: BlobStore, onError: (error: unknown) => void): RegistryMetrics | undefined {
  const { metrics } = options;
  if (metrics === undefined || metrics === false) return undefined;
  return new RegistryMetrics(metrics === true ? {} : metrics, { store, blobs, onError });
}

function accessOf(options: RegistryOptions): Access | undefined {
  const { access, admins = [] } = options;
  if (access === undefined) return undefined;
  return typeof access === 'string' ? readAccessRules(access, admins) : new Access(access, admins);
}

/** What stands in front of the handlers: logins, and the mirrors' routing. */
interface Front {
  auth: BasicAuth | undefined;
  mirrors: Mirrors | undefined;
}

async function handle(c: RequestState, { auth, mirrors }: Front, connections: Connections): Promise<void> {
  const { req, res } = c;
  connections.begin(req, res);
  const pathname = requestPath(c);
  const method = req.method ?? 'GET';
  // Probes carry no credentials and are no one's to deny: before authentication and the rules.
  if (isProbe(pathname)) return dispatch(c, method, routed(c, method, pathname));
  // Authentication comes before routing: an unauthenticated client learns
  // nothing, not even which names are valid.
  // With rules that grant anonymous clients something, a request without
  // credentials goes on as anonymous ('') and the rules decide.
  const { registry } = c;
  if (auth && (registry.access?.anonymous !== true || !carriesNoCredentials(req.headers.authorization))) {
    c.actor = await auth.authenticate(req.headers.authorization, req.socket.remoteAddress);
    // An admin (by the access rules, or --admin) may override an immutable tag; without logins no one is one.
    c.ctx = registry.isAdmin(c.actor) ? { actor: c.actor, admin: true } : { actor: c.actor };
  }
  const { access } = registry;
  const route = mirrors === undefined ? routed(c, method, pathname) : mirrors.rewrite(routed(c, method, pathname), c);
  const authorized = (r: Route) => access === undefined || authorize(c, access, method, r, auth !== undefined);
  authorized(route);
  if (registry.readOnly && isWrite(method)) {
    throw new HttpError('UNSUPPORTED', 'the registry is read-only');
  }
  if (!registry.deletes && method === 'DELETE' && (route.kind === 'manifest' || route.kind === 'blob')) {
    throw new HttpError('UNSUPPORTED', 'deletes are disabled on this registry');
  }
  if (mirrors === undefined) return dispatch(c, method, route);
  await mirrors.serve(c, method, route, (r) => dispatch(c, method, r), authorized);
}

/** The request's route, kept for its log line. @throws what parseRoute throws. */
function routed(c: RequestState, method: string, pathname: string): Route {
  const route = parseRoute(method, pathname);
  c.route = route.kind;
  return route;
}

function dispatch(c: RequestState, method: string, route: Route): void | Promise<void> {
  // A manifest pull writes its head in one go (c.writeHead), common headers
  // included; every other answer finds them set.
  if (route.kind !== 'manifest' || (method !== 'GET' && method !== 'HEAD')) c.setCommonHeaders();
  switch (route.kind) {
    case 'healthz':
      return health.healthz(c);
    case 'readyz':
      return health.readyz(c);
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
    case 'usage':
      return usage.getUsage(c);
    case 'tagDetails':
      return tagDetails.listTagDetails(c, route.name);
    case 'metrics':
      return scrape(c);
  }
}

/**
 * The public URL's origin.
 * @throws TypeError when it is not an http or https URL of a host alone (no credentials, path, query or fragment).
 */
function checkedPublicUrl(url: string): string {
  const origin = publicOrigin(url);
  if (origin === undefined) throw new TypeError('publicUrl: expected an http or https URL of a host alone, like https://registry.example.com');
  return origin;
}
