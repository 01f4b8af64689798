// `regmeta serve` (and `npm start`): the registry on a data directory until
// SIGINT or SIGTERM. Options come from flags, the environment, a config file
// and defaults (config/), all checked before anything starts; the log
// (../log.ts): requests and the command's own lines on stdout, faults and
// warnings on stderr, JSON lines or, on a terminal, readable ones.

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { createSecureContext } from 'node:tls';
import { StoreError, type Store } from '../../store/index.js';
import {
  AccessRulesError,
  pruneEventsJob,
  retentionJob,
  readAccessRules,
  setRegistryCertificate,
  startRegistry,
  type JobReport,
  type MaintenanceJob,
  type StartedRegistry,
  type StartRegistryOptions,
  type TlsFiles,
} from '../../server/index.js';
import type { Command } from '../args.js';
import { CliError, Exit } from '../exit.js';
import { openMetadata } from '../open.js';
import { splitListen } from '../config/kinds.js';
import { mirrorOptions } from '../config/mirrors.js';
import { s3 } from '../config/storage.js';
import { FLAGS, loadServeConfig, type LoadedConfig, type ServeConfig } from '../config/load.js';
import { optionsHelp, printableConfig } from '../config/render.js';
import { createServeLog, logFault, type ServeLog } from '../log.js';

const USAGE = `usage: regmeta serve [options]

Runs an OCI distribution-spec v1.1 registry: metadata in <data>/metadata.db
(or, with --database, in PostgreSQL), blobs in <data>/blobs, uploads in
progress in <data>/uploads.

options, each also an environment variable and a config file key; a flag
wins over the environment, which wins over the file, which wins over the
default:
${optionsHelp()}
  -h, --help
      this text

Durations are seconds or like 60s, 5m, 1h30m; sizes are bytes or like
512MiB, 64GiB. An empty environment variable counts as unset.

The config file is YAML, or JSON when its name ends in .json, with the keys
above; relative paths in it are relative to the file. It is checked as a
whole before anything starts: each problem is one line naming the key, and
the exit status is 2. For example:
  listen: 0.0.0.0:5443
  data: /srv/registry
  htpasswd: htpasswd
  access: access.yaml
  tls: { cert: registry.crt, key: registry.key }
  limits: { idleTimeout: 5m, maxBlobSize: 10GiB }
  mirrors:
    - docker.io=https://registry-1.docker.io
    - { prefix: ghcr.io, url: https://ghcr.io, username: ci, passwordFile: ghcr.pass, ttl: 10m, maxSize: 20GiB }

Logs at --log-level: each request (and the lines below) on stdout, warnings
and faults on stderr; JSON lines, or readable lines on a terminal. Every
response carries X-Request-Id, which the request's line names too. GET
/healthz and GET /readyz answer anyone, before authentication.

Stops on SIGINT or SIGTERM: no new connections, requests in flight finish,
the database is closed, exit status 0. SIGHUP re-reads the TLS certificate
and key: new connections get the new ones, open connections go on; a pair
that does not load is logged and the old one kept. Without TLS, SIGHUP is
logged and otherwise ignored (it does not stop the server).

examples:
  regmeta serve --listen 0.0.0.0:5000 --data /srv/registry --no-delete
  regmeta serve --config /etc/regmeta.yaml --print-config
  regmeta serve --mirror docker.io=https://registry-1.docker.io
      then: podman pull localhost:5000/docker.io/library/alpine:3
`;

/**
 * Parses the command line, the environment and the config file it names;
 * undefined after printing --help.
 * @throws CliError USAGE listing every bad option, value or key; IO when the config file cannot be read.
 */
export function parseServeArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): LoadedConfig | undefined {
  return loadServeConfig(argv, env, serve);
}

/** The log; set while the command runs. */
let log: ServeLog | undefined;

/** One of the command's own lines, written at once (after the requests before it: one buffer keeps their order). */
function logLine(fields: Record<string, unknown>, msg: string): void {
  log?.logger.info(fields, msg);
  log?.flush();
}

const warn = (msg: string) => log?.logger.warn(msg);

/**
 * The certificate and key files' contents, once node:tls has accepted the pair.
 * @throws CliError IO when a file cannot be read; Error from node:tls when the pair does not load.
 */
function readTls(tls: { cert: string; key: string }): TlsFiles {
  const read = (key: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new CliError(Exit.IO, `cannot read ${key} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  };
  const files = { cert: read('tls.cert', tls.cert), key: read('tls.key', tls.key) };
  createSecureContext(files);
  return files;
}

/**
 * Checks the access rules file, before anything starts.
 * @throws CliError USAGE listing every problem, one line each naming its key; IO when it cannot be read.
 */
function checkAccess(file: string, admins: string[]): void {
  try {
    readAccessRules(file, admins);
  } catch (error) {
    if (error instanceof AccessRulesError) throw new CliError(Exit.USAGE, error.problems[0], undefined, error.problems.slice(1));
    throw new CliError(Exit.IO, `cannot read access ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/**
 * Opens the metadata and starts the registry on it (closing the store is the caller's, after the registry's close).
 * @throws StoreError from opening the database; CliError DATABASE for a
 * database file that is not a regmeta store; CliError USAGE when the
 * certificate and key do not load; CliError IO when a file cannot be read
 * or the address cannot be listened on.
 */
async function start(config: ServeConfig): Promise<StartedRegistry> {
  // Before the store is opened: a bad certificate, access file or mirror starts nothing.
  const tls = loadTls(config);
  if (config.access !== undefined) checkAccess(config.access, config.admins);
  const mirrors = mirrorOptions(config.mirrors);
  // Listen first: a port taken must not leave a data directory or a database behind.
  const listener = await bind(config.listen);
  let store: Store;
  try {
    // The immutable tags and the quotas are the store's to enforce, inside each write's transaction.
    const policy = { immutable: config.immutable, quotas: config.quotas };
    store = await openMetadata({ data: config.data, database: config.database }, { create: true, policy });
  } catch (error) {
    listener.close();
    throw error;
  }
  try {
    const registry = await startRegistry({ ...registryOptions(config, mirrors), store, listener, tls });
    if (config.tls !== undefined && tls !== undefined) logCertificate('certificate loaded', config.tls.cert, tls.cert);
    return registry;
  } catch (error) {
    await store.close();
    // The database's errors keep their own exit code; the rest is this machine's I/O.
    if (error instanceof StoreError) throw error;
    throw new CliError(Exit.IO, `cannot start: ${(error as Error).message}`);
  }
}

/** @throws CliError USAGE when the certificate and key do not load as a pair; CliError IO when a file cannot be read. */
function loadTls(config: ServeConfig): TlsFiles | undefined {
  try {
    return config.tls === undefined ? undefined : readTls(config.tls);
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(Exit.USAGE, `tls.cert and tls.key do not load as a pair: ${(error as Error).message}`, 'both PEM, the key the certificate\'s');
  }
}

/** What startRegistry takes from the config, beside the store, the socket and the certificate. */
function registryOptions(config: ServeConfig, mirrors: StartRegistryOptions['mirrors']): Omit<StartRegistryOptions, 'store' | 'listener' | 'tls'> {
  return {
    ...config.limits,
    dataDir: config.data,
    storage: config.storage.s3,
    storageRedirect: config.storage.redirect,
    publicUrl: config.publicUrl,
    htpasswd: config.htpasswd,
    admins: config.admins,
    access: config.access,
    readOnly: config.readOnly,
    deletes: config.deletes,
    mirrors,
    mirrorDefault: config.mirrorDefault,
    notify: {
      endpoints: config.notify,
      // A failing endpoint is the operator's to see, not a fault of the registry's.
      onError: (error, endpoint) => warn(`notify ${endpoint}: ${describeNotifyError(error)}`),
    },
    ...metricsOptions(config),
    maintenance: maintenanceOptions(config),
    minFreeDisk: config.minFreeDisk,
    pulls: config.pulls,
    log: (entry) => log?.request(entry),
    onError: (error, request) => log && logFault(log.logger, error, request),
    onWarning: warn,
  };
}

/**
 * A server listening on `listen` (host:port), for startRegistry to take over.
 * @throws CliError IO when it cannot listen there (the port taken, a privileged port, an address not this machine's).
 */
async function bind(listen: string): Promise<NetServer> {
  const { host, port } = splitListen(listen)!;
  const server = createNetServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new CliError(Exit.IO, `cannot listen on ${listen}: ${code}`, code === 'EADDRINUSE' ? 'another process holds the port: stop it, or choose another --listen' : 'check --listen');
  }
  return server;
}

/** The metrics as configured: off altogether only when neither address answers them. */
function metricsOptions(config: ServeConfig): Pick<StartRegistryOptions, 'metrics' | 'metricsListen'> {
  if (!config.metrics && config.metricsListen === undefined) return { metrics: false };
  return {
    metrics: { endpoint: config.metrics, statsInterval: config.metricsInterval, processMetrics: true },
    metricsListen: config.metricsListen === undefined ? undefined : splitListen(config.metricsListen),
  };
}

/** The maintenance schedule as configured: none without a job (no retention rules, events.keep unset) or with an interval of 0. */
function maintenanceOptions(config: ServeConfig): StartRegistryOptions['maintenance'] {
  const jobs: MaintenanceJob[] = [];
  if (config.retention.length > 0) jobs.push(retentionJob(config.retention));
  if (config.events?.keep !== undefined) jobs.push(pruneEventsJob(config.events.keep));
  if (jobs.length === 0 || config.maintenance.interval === 0) return undefined;
  return {
    interval: config.maintenance.interval,
    jobs,
    onJob: logJob,
    onSkipped: () => {
      log?.logger.debug('maintenance: another replica holds the lease this round');
      log?.flush();
    },
    onError: (error) => warn(`maintenance: ${(error as Error).message ?? String(error)}; trying again next round`),
  };
}

/** One line per job run: its summary, or why it failed (it runs again next round). */
function logJob(report: JobReport): void {
  const fields = { job: report.job, startedAt: report.startedAt.toISOString(), ms: report.ms };
  if (report.error === undefined) return logLine({ ...fields, ...report.summary }, `maintenance: ${report.job}`);
  const why = report.error instanceof Error ? report.error.message : String(report.error);
  warn(`maintenance: ${report.job} ${report.aborted ? 'stopped' : 'failed'} after ${report.ms} ms: ${why}; it runs again next round`);
}

/** A failed delivery in one line: fetch's "fetch failed" says little without its cause. */
function describeNotifyError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  const message = error instanceof Error ? error.message : String(error);
  return cause === undefined ? message : `${message} (${cause.code ?? cause.message})`;
}

/** Which certificate the server now presents: its file, subject, expiry and fingerprint, in one line. */
function logCertificate(msg: string, file: string, pem: string | Buffer): void {
  const cert = new X509Certificate(pem);
  logLine({ cert: file, subject: cert.subject, validTo: cert.validTo, fingerprint256: cert.fingerprint256 }, msg);
}

/** SIGHUP: the certificate and key read anew; one log line either way, and on failure the old pair stays. */
function reloadTls(registry: StartedRegistry, config: ServeConfig): void {
  if (config.tls === undefined) {
    logLine({}, 'SIGHUP: no TLS certificate to re-read');
    return;
  }
  try {
    const files = readTls(config.tls);
    setRegistryCertificate(registry.server, files);
    logCertificate('certificate reloaded', config.tls.cert, files.cert);
  } catch (error) {
    log?.logger.error(`SIGHUP: kept the old certificate: ${(error as Error).message}`);
  }
}

/** Flushes the log and lets it go: the command's errors after it are main's to print. */
function closeLog(): void {
  log?.close();
  log = undefined;
}

export const serve: Command = {
  name: 'serve',
  usage: USAGE,
  options: FLAGS,
  exits: { [Exit.USAGE]: 'a bad option, value or config key: nothing starts' },
  async run(argv) {
    const loaded = parseServeArgs(argv);
    if (loaded === undefined) return Exit.OK;
    const { config } = loaded;
    if (loaded.printConfig) {
      for (const line of loaded.warnings) process.stderr.write(`regmeta serve: warning: ${line}\n`);
      process.stdout.write(printableConfig(loaded));
      return Exit.OK;
    }
    log = createServeLog(config.logLevel);
    for (const line of loaded.warnings) warn(line);
    // Every handler is in place before the "listening" line: whoever reads it
    // may signal at once, and an unhandled SIGHUP would end the process.
    let registry: StartedRegistry | undefined;
    const onHangup = () => (registry === undefined ? logLine({}, 'SIGHUP: still starting; ignored') : reloadTls(registry, config));
    process.on('SIGHUP', onHangup);
    const stopped = new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    });
    try {
      registry = await start(config);
    } catch (error) {
      process.off('SIGHUP', onHangup);
      closeLog();
      throw error;
    }
    const url = new URL(registry.url);
    logLine({ url: registry.url, port: Number(url.port), data: config.data, database: registry.store.location, storage: config.storage.s3 === undefined ? undefined : s3.format(config.storage.s3), redirect: config.storage.redirect, readOnly: config.readOnly, deletes: config.deletes, auth: config.htpasswd !== undefined, access: config.access !== undefined, tls: config.tls !== undefined, notify: config.notify.length, mirrors: config.mirrors.length === 0 ? undefined : config.mirrors.map((m) => `${m.prefix}=${m.url}`), mirrorDefault: config.mirrorDefault, metrics: registry.metricsUrl, maintenance: registry.maintenance === undefined ? undefined : { interval: config.maintenance.interval, holder: registry.maintenance.holder } }, 'listening');
    const signal = await stopped;
    process.off('SIGHUP', onHangup);
    logLine({ signal }, 'shutting down');
    await registry.close();
    await registry.store.close();
    logLine({}, 'stopped');
    closeLog();
    return Exit.OK;
  },
};
