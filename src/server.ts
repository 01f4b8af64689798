// The package entry regmeta/server: the registry as a (req, res) handler for
// any node:http or https server, or listening on its own; its options and
// their defaults, the access rules, and the webhooks it delivers.

export {
  // The registry.
  createRegistryHandler,
  createRegistry,
  startRegistry,
  closeRegistry,
  setRegistryCertificate,
  type RegistryHandler,
  type RegistryOptions,
  type S3Options,
  type MirrorOptions,
  DEFAULT_MIRROR,
  type RegistryServer,
  type RegistryServerOptions,
  type StartRegistryOptions,
  type StartedRegistry,
  type TlsFiles,
  type RequestLogEntry,
  type FaultContext,
  // Options, with their defaults.
  type ConnectionLimits,
  DEFAULT_CONNECTION_LIMITS,
  type AuthLimits,
  DEFAULT_AUTH_LIMITS,
  type MetricsOptions,
  DEFAULT_STATS_INTERVAL,
  DEFAULT_MIN_FREE_DISK,
  type PullOptions,
  DEFAULT_PULL_FLUSH_INTERVAL,
  // Who may pull, push and delete where.
  Access,
  AccessRulesError,
  ANONYMOUS,
  readAccessRules,
  type AccessRule,
  type AccessRules,
  type Action,
  // Webhooks from the event log, and what a receiver checks.
  Notifier,
  DeliveryError,
  DEFAULT_NOTIFY_LIMITS,
  type NotifierOptions,
  type NotifyEndpoint,
  SIGNATURE_HEADER,
  signatureOf,
  ENVELOPE_MEDIA_TYPE,
  type EnvelopeEvent,
} from './server/index.js';
