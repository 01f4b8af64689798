// The registry server's door (`regmeta/server`): mount the registry into any
// node:http or https server, or let it listen on its own.
export { createRegistryHandler, type RegistryHandler, type RegistryOptions } from './handler.js';
export type { RequestLogEntry } from './request-log.js';
export type { FaultContext } from './faults.js';
export { DEFAULT_MIN_FREE_DISK, type CheckResult, type ReadinessReport } from './readiness.js';
export {
  closeRegistry,
  createRegistry,
  setRegistryCertificate,
  startRegistry,
  type RegistryServer,
  type RegistryServerOptions,
  type StartedRegistry,
  type StartRegistryOptions,
  type TlsFiles,
} from './server.js';
export { DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from './connections.js';
export { publicOrigin } from './http.js';
export { DEFAULT_STATS_INTERVAL, LATENCY_BUCKETS, type MetricsOptions } from './metrics.js';
export { DEFAULT_AUTH_LIMITS, type AuthLimits } from './auth.js';
export { FILE_FORMAT_LIMITS, FileFormatError, parseFileText } from './file-format.js';
export { Access, AccessRulesError, ANONYMOUS, readAccessRules, type AccessRule, type AccessRules, type Action } from './access.js';
// Webhooks from the event log, which startRegistry runs with `notify`.
export { DEFAULT_NOTIFY_LIMITS, DeliveryError, Notifier, SIGNATURE_HEADER, signatureOf, ENVELOPE_MEDIA_TYPE, type NotifyEndpoint, type NotifierOptions, type EnvelopeEvent } from '../notify/index.js';
// The blob store's session table on the metadata database (regmeta gc sweeps uploads through it).
