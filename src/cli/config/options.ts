// Every option of `regmeta serve`, written once: its config file key, kind,
// default and help line. The flag and the environment variable are derived
// from the key, and from this table come the flag parser, the environment
// reader, the config file validator, --help, --print-config and the table in
// docs/registry.md (test/cli/config.test.ts holds the doc to it). The other
// commands read `data`, `database`, `storage.s3` and `mirrors` from it too (location.ts).

import { DEFAULT_BLOB_LIMITS } from '../../blobstore/index.js';
import { DATABASE_FILE, DEFAULT_AUTH_LIMITS, DEFAULT_CONNECTION_LIMITS, DEFAULT_MAINTENANCE_INTERVAL, DEFAULT_MIN_FREE_DISK, DEFAULT_PULL_FLUSH_INTERVAL, DEFAULT_STATS_INTERVAL, REDIRECT_TTL_SECONDS } from '../../server/index.js';
import { immutable } from './immutable.js';
import { mirrorPrefix, mirrors } from './mirrors.js';
import { quotas } from './quotas.js';
import { retention } from './retention.js';
import { s3 } from './storage.js';
import { boolean, choice, count, databaseUrl, duration, list, listen, notify, path, publicUrl, size, type Kind } from './kinds.js';

/** The levels of --log-level, most verbose first (pino's). */
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** One option, as written in the table. */
interface OptionSpec {
  /** The config file key, dotted for nesting: `limits.idleTimeout` is `limits: { idleTimeout }`. */
  key: string;
  kind: Kind<any>;
  /** The value when no source gives one (undefined: unset), in the kind's units (ms, bytes). */
  default?: unknown;
  /** The default for the docs, when it is computed or unset ("none: …"). */
  defaultText?: string;
  /** One line: what it does. */
  help: string;
  /** The flag's value in --help: `--listen <host:port>`. */
  arg?: string;
  /** The flag when it is not the key's last part in kebab case (`admin` for admins). */
  flag?: string;
  /** The environment variable when it is not derived from the key (REGMETA_STORAGE for storage.s3). */
  env?: string;
  /** Shown masked by --print-config. */
  secret?: boolean;
}

/** An option with its derived names. */
export interface OptionInfo extends OptionSpec {
  /** Without the dashes: `idle-timeout`; a boolean also has `no-<flag>`. */
  flagName: string;
  env: string;
  /** The key as a path: ['limits', 'idleTimeout']. */
  path: string[];
}

const SPECS: OptionSpec[] = [
  { key: 'listen', kind: listen, default: '127.0.0.1:5000', arg: 'host:port', help: 'the address and port to listen on' },
  {
    key: 'publicUrl',
    kind: publicUrl,
    arg: 'url',
    defaultText: 'none: the listen address',
    help: 'the URL clients reach the registry at, behind a proxy or a load balancer (scheme://host[:port]): webhooks name their targets by it, and Location headers are absolute URLs under it',
  },
  { key: 'data', kind: path, default: './data', arg: 'dir', help: `the data directory (${DATABASE_FILE}; blobs and uploads, without --storage), created when missing once the listen address is bound (a port taken creates nothing)` },
  {
    key: 'database',
    kind: databaseUrl,
    arg: 'url',
    defaultText: `none: SQLite in <data>/${DATABASE_FILE}`,
    help: 'keep the metadata in this PostgreSQL database (postgres://user:password@host:5432/db; the password is masked in --print-config); --data then holds the blobs and uploads only',
  },
  {
    key: 'storage.s3',
    kind: s3,
    flag: 'storage',
    env: 'REGMETA_STORAGE',
    arg: 'url',
    defaultText: 'none: the blobs and uploads in --data',
    help: 'keep the blobs in this S3-compatible bucket, under the prefix: s3://BUCKET/PREFIX?endpoint=URL&region=R&forcePathStyle=true (in the file also {bucket, prefix, endpoint, region, forcePathStyle}); credentials come from the AWS chain (AWS_* environment, shared config, a role), never from here',
  },
  {
    key: 'storage.redirect',
    kind: boolean,
    default: false,
    help: `answer a blob GET with a 307 to a pre-signed URL of the storage, valid ${REDIRECT_TTL_SECONDS / 60} minutes, which the client fetches the bytes from itself (the filesystem store has none: it serves the bytes)`,
  },
  { key: 'htpasswd', kind: path, arg: 'file', defaultText: 'none: anonymous access', help: 'require basic auth against this htpasswd file of bcrypt entries' },
  { key: 'admins', kind: list, default: [], flag: 'admin', arg: 'user', defaultText: 'none (everyone, without htpasswd)', help: 'users who see every event (others see those of the repositories they may pull), and with access rules do everything (repeat the flag; comma-separated in the environment)' },
  {
    key: 'immutable',
    kind: immutable,
    default: [],
    arg: 'json',
    defaultText: 'none: any tag may be moved and deleted',
    help: 'immutable tags: a list of {repositories, tags} (patterns: rel/*, v*); such a tag, once it exists, is never moved or deleted (403 DENIED), nor its manifest or repository, except by an admin, whose override is logged and its event carries the reason; see Keeping the registry in shape',
  },
  { key: 'access', kind: path, arg: 'file', defaultText: 'none: whoever is let in may do everything', help: 'access rules (YAML or JSON): who may pull, push and delete in which repositories; admins may do everything' },
  { key: 'readOnly', kind: boolean, default: false, help: 'refuse every write (405 UNSUPPORTED)' },
  { key: 'deletes', kind: boolean, default: true, flag: 'delete', help: 'take manifest, tag and blob deletes (false: they answer 405 UNSUPPORTED), as suits local development' },
  {
    key: 'retention',
    kind: retention,
    default: [],
    flag: 'retention-rules',
    arg: 'json',
    defaultText: 'none: nothing is removed by rule',
    help: 'retention rules, which regmeta gc --retention applies: a list of {repositories, keep: {newest, tags, pulledWithin, pushedWithin, untaggedGrace}}; the first rule whose pattern matches a repository applies, a tag any of its conditions keeps stays, untagged manifests go after untaggedGrace (default 24h), repositories no rule matches are left alone; see Keeping the registry in shape',
  },
  { key: 'tls.cert', kind: path, arg: 'file', defaultText: 'none: plain HTTP', help: 'serve HTTPS with this PEM certificate chain (with tls.key); re-read on SIGHUP' },
  { key: 'tls.key', kind: path, arg: 'file', defaultText: 'none', help: 'the PEM private key of tls.cert; re-read on SIGHUP' },
  {
    key: 'notify',
    kind: notify,
    default: [],
    arg: 'url',
    defaultText: 'none',
    help: 'POST every event to this webhook (repeat the flag; comma-separated in the environment; in the file also {url, name, headers, secret, timeout}); see Webhooks',
  },
  {
    key: 'mirrors',
    kind: mirrors,
    default: [],
    flag: 'mirror',
    env: 'REGMETA_MIRROR',
    arg: 'prefix=url',
    defaultText: 'none',
    help: 'serve the registry at URL read-only under PREFIX/ as a pull-through cache: a pull of PREFIX/library/alpine fetches library/alpine there once, keeps it and serves it (repeat the flag; comma-separated in the environment; in the file also {prefix, url, username, password, passwordFile, ttl, maxSize, maxIdle, concurrency, timeout}: credentials go there alone); see docs/mirroring.md',
  },
  {
    key: 'mirrorDefault',
    kind: mirrorPrefix,
    arg: 'prefix',
    defaultText: 'none: names outside every prefix are this registry\'s alone',
    help: 'the mirror that answers a pull of a name outside every prefix that is not here (a Docker daemon\'s registry-mirrors asks for library/alpine, no prefix)',
  },
  {
    key: 'quotas',
    kind: quotas,
    default: [],
    flag: 'quota',
    arg: 'namespace=size',
    defaultText: 'none',
    help: 'the most bytes the blobs of a namespace (a name\'s first component) may take, each blob counted once: a push that would go over is refused (403 DENIED), before its bytes where the upload gives its size (repeat the flag; comma-separated in the environment; in the file a list of {namespace, maxSize}); see regmeta usage',
  },
  { key: 'metrics', kind: boolean, default: true, help: 'answer GET /metrics (Prometheus) on the listen address: to anyone without htpasswd, to admins with it; see Metrics' },
  {
    key: 'metricsListen',
    kind: listen,
    arg: 'host:port',
    defaultText: 'none',
    help: 'also answer GET /metrics on this address, without credentials (bind it where only the monitoring reaches)',
  },
  {
    key: 'metricsInterval',
    kind: duration(),
    default: DEFAULT_STATS_INTERVAL,
    arg: 'duration',
    help: 'read the store\'s counts and the webhooks\' state for the metrics at most this often (scrapes in between get the last read)',
  },
  {
    key: 'pulls.stats',
    kind: boolean,
    default: true,
    help: 'count the pulls of each manifest and tag and keep when each was last pulled (a manifest GET counts the manifest, by tag the tag too; a HEAD by tag counts the tag alone, as containerd resolves a tag by HEAD and then GETs by digest; blobs are not counted), in memory, written in batches: no write per pull',
  },
  {
    key: 'pulls.flushInterval',
    kind: duration(1),
    default: DEFAULT_PULL_FLUSH_INTERVAL,
    arg: 'duration',
    help: 'write the pulls counted in memory at most this often, and at shutdown: a crash loses at most this long\'s counts',
  },
  {
    key: 'pulls.events',
    kind: boolean,
    default: false,
    help: 'write a PULL event per pulled manifest or tag per batch, with its count, for webhooks (action "pull"): a pull storm is one event per batch, not one per pull',
  },
  {
    key: 'logLevel',
    kind: choice(LOG_LEVELS),
    default: 'info',
    arg: 'level',
    help: 'log this level and above: trace, debug (adds /healthz, /readyz and /metrics requests), info (each request), warn, error, fatal or silent',
  },
  {
    key: 'minFreeDisk',
    kind: size(),
    default: DEFAULT_MIN_FREE_DISK,
    arg: 'size',
    help: 'free disk under the data directory below which GET /readyz answers 503 (0: any will do)',
  },
  {
    key: 'events.keep',
    kind: duration(1000),
    arg: 'duration',
    defaultText: 'none: events are kept forever',
    help: 'prune events published longer ago than this, on the maintenance schedule (a webhook endpoint down longer misses them, and is told so: regmeta notify status)',
  },
  {
    key: 'maintenance.interval',
    kind: duration(),
    default: DEFAULT_MAINTENANCE_INTERVAL,
    arg: 'duration',
    help: 'run the maintenance jobs (the retention rules, events.keep\'s pruning) this often, the first at start; of several replicas on one database, one at a time (0: never)',
  },
  {
    key: 'limits.idleTimeout',
    kind: duration(),
    default: DEFAULT_CONNECTION_LIMITS.idleTimeout,
    arg: 'duration',
    help: 'cut a connection silent this long while the server waits on the client (0: never)',
  },
  {
    key: 'limits.headersTimeout',
    kind: duration(1000),
    default: DEFAULT_CONNECTION_LIMITS.headersTimeout,
    arg: 'duration',
    help: 'cut a connection whose request head is not complete this long after the connection opened or the request began; on HTTPS also one whose handshake takes this long',
  },
  {
    key: 'limits.minBodyRate',
    kind: size(),
    default: DEFAULT_CONNECTION_LIMITS.minBodyRate,
    arg: 'size',
    help: 'bytes per second a request body must average once limits.bodyRateGrace is over, while the server reads it; slower ones are cut (0: no minimum)',
  },
  {
    key: 'limits.bodyRateGrace',
    kind: duration(),
    default: DEFAULT_CONNECTION_LIMITS.bodyRateGrace,
    arg: 'duration',
    help: 'how long a request body may come at any rate before limits.minBodyRate applies',
  },
  {
    key: 'limits.maxConnectionsPerAddress',
    kind: count(),
    default: DEFAULT_CONNECTION_LIMITS.maxConnectionsPerAddress,
    arg: 'n',
    help: 'connections one client address (an IPv6 /64) may hold; more are closed as they are accepted, on plain HTTP with a 429 (0: no cap)',
  },
  {
    key: 'limits.maxConnections',
    kind: count(),
    default: DEFAULT_CONNECTION_LIMITS.maxConnections,
    defaultText: 'half of what the open-file limit leaves after 128',
    arg: 'n',
    help: 'connections the server holds at once, from all addresses; more are closed as they are accepted (0: no cap)',
  },
  {
    key: 'limits.maxUploadsPerAddress',
    kind: count(),
    default: DEFAULT_BLOB_LIMITS.maxUploadsPerAddress,
    arg: 'n',
    help: 'upload sessions one client address (an IPv6 /64) may hold open; more answer 429 (0: no cap)',
  },
  { key: 'limits.uploadTtl', kind: duration(60_000), default: DEFAULT_BLOB_LIMITS.uploadTtl, arg: 'duration', help: 'drop an upload session idle this long, with its file' },
  { key: 'limits.maxBlobSize', kind: size(1), default: DEFAULT_BLOB_LIMITS.maxBlobSize, arg: 'size', help: 'the largest blob accepted; larger answer 413' },
  {
    key: 'limits.maxFailedLoginsPerAddress',
    kind: count(),
    default: DEFAULT_AUTH_LIMITS.maxFailedLoginsPerAddress,
    arg: 'n',
    help: 'failed logins one client address may make per window; more answer 429 (0: no limit)',
  },
  {
    key: 'limits.failedLoginWindow',
    kind: duration(1000),
    default: DEFAULT_AUTH_LIMITS.failedLoginWindow,
    arg: 'duration',
    help: 'the window of failed logins, from the first failure in it',
  },
  {
    key: 'limits.failedLoginAddresses',
    kind: count(1),
    default: DEFAULT_AUTH_LIMITS.failedLoginAddresses,
    arg: 'n',
    help: 'client addresses whose failed logins are remembered (the oldest are forgotten first)',
  },
  {
    key: 'limits.passwordCheckThreads',
    kind: count(1, 64),
    default: DEFAULT_AUTH_LIMITS.passwordCheckThreads,
    defaultText: '1 with up to two cores, else 2',
    arg: 'n',
    help: 'threads that check passwords (bcrypt), off the event loop',
  },
  {
    key: 'limits.passwordCheckQueue',
    kind: count(),
    default: DEFAULT_AUTH_LIMITS.passwordCheckQueue,
    arg: 'n',
    help: 'password checks that may wait for a thread; more answer 429',
  },
];

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * Names from a key: the `limits.` section is left out of the flag and the
 * variable (`--idle-timeout`, REGMETA_IDLE_TIMEOUT), other sections stay
 * (`--tls-cert`, REGMETA_TLS_CERT).
 */
function derive(spec: OptionSpec): OptionInfo {
  const path = spec.key.split('.');
  const named = kebab((path[0] === 'limits' ? path.slice(1) : path).join('-'));
  return { ...spec, path, flagName: spec.flag ?? named, env: spec.env ?? `REGMETA_${named.replace(/-/g, '_').toUpperCase()}` };
}

/** The options of `regmeta serve`, in the order of --help and docs/registry.md; the other commands read `data`, `database` and `storage.s3`. */
export const OPTIONS: readonly OptionInfo[] = Object.freeze(SPECS.map(derive));

/** The options about the configuration itself, which no config file sets. */
export const META_OPTIONS = {
  config: { flag: 'config', env: 'REGMETA_CONFIG', arg: 'file', help: 'read options from this YAML or JSON file (see below)' },
  printConfig: { flag: 'print-config', help: 'print the effective configuration and where each value came from, then exit' },
} as const;

/** The config file's sections: keys whose value is a mapping of further keys. */
export const SECTIONS: ReadonlySet<string> = new Set(OPTIONS.filter((o) => o.path.length > 1).map((o) => o.path[0]));
