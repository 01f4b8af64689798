// What the rest of regmeta uses of the registry server: the package entry
// regmeta/server (src/server.ts) takes its public part, the CLI also the
// readers of its files and its defaults. Nothing outside src/server imports
// the files behind it.

export { createRegistryHandler, type RegistryHandler, type RegistryOptions } from './handler.js';
export type { RequestLogEntry } from './request-log.js';
// The bucket of RegistryOptions.storage, for the package's users.
export type { S3Options } from '../blobstore/index.js';
export type { FaultContext } from './faults.js';
export { DEFAULT_MIRROR, resolveMirrors, type MirrorOptions, type ResolvedMirror } from './mirror/options.js';
export { DEFAULT_MIN_FREE_DISK } from './readiness.js';
export { DEFAULT_PULL_FLUSH_INTERVAL, type PullOptions } from './pulls.js';
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
export {
  DEFAULT_MAINTENANCE_INTERVAL,
  Maintenance,
  pruneEventsJob,
  retentionJob,
  pruneInBatches,
  type JobReport,
  type MaintenanceJob,
  type MaintenanceOptions,
} from './maintenance.js';
export { DEFAULT_STATS_INTERVAL, type MetricsOptions } from './metrics.js';
export { DEFAULT_AUTH_LIMITS, type AuthLimits } from './auth.js';
export { Access, AccessRulesError, ANONYMOUS, readAccessRules, type AccessRule, type AccessRules, type Action } from './access.js';
// Webhooks from the event log, which startRegistry runs with `notify`.
export {
  DEFAULT_NOTIFY_LIMITS,
  DeliveryError,
  Notifier,
  SIGNATURE_HEADER,
  signatureOf,
  ENVELOPE_MEDIA_TYPE,
  type NotifyEndpoint,
  type NotifierOptions,
  type EnvelopeEvent,
} from '../notify/index.js';

// For the CLI, which reads its config file as the server reads access rules,
// checks --public-url by the server's rule and opens the data directory the
// server uses. Not the package's API.
export { publicOrigin } from './http.js';
export { DATABASE_FILE } from './server.js';
export { REDIRECT_TTL_SECONDS } from './handlers/blobs.js';
export { FileFormatError, parseFileText } from './file-format.js';
