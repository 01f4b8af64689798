// `regmeta serve` (and `npm start`): the registry on a data directory until
// SIGINT or SIGTERM. Options come from flags, else the environment, else
// defaults; requests are logged as JSON lines on stdout, faults on stderr.

import path from 'node:path';
import { StoreError } from '../../index.js';
import { startRegistry, type StartedRegistry } from '../../server/index.js';
import { CliError, Exit, parse, type Command } from '../common.js';
import { LineBuffer } from '../log-buffer.js';

const USAGE = `usage: regmeta serve [options]

Runs an OCI distribution-spec v1.1 registry: metadata in <data>/metadata.db,
blobs in <data>/blobs, uploads in progress in <data>/uploads.

options:
  --listen <host:port>   where to listen (default 127.0.0.1:5000; env REGMETA_LISTEN)
  --data <dir>           the data directory, created when missing (default ./data;
                         env REGMETA_DATA)
  --htpasswd <file>      require basic auth against this bcrypt htpasswd file
                         (env REGMETA_HTPASSWD)
  --admin <user>         a user who may read everyone's events (repeatable);
                         without --htpasswd everyone may
  --read-only            refuse every write (405 UNSUPPORTED)
  --no-delete            refuse manifest, tag and blob deletes (405 UNSUPPORTED);
                         deletes are on by default, as suits local development
  --idle-timeout <s>     cut a connection silent this long while the server
                         waits on it: a stalled body, an unread answer
                         (default 60; 0 off; env REGMETA_IDLE_TIMEOUT)
  --max-connections-per-address <n>
                         connections one client address may hold (default 128;
                         0 no cap; env REGMETA_MAX_CONNECTIONS_PER_ADDRESS)
  --max-uploads-per-address <n>
                         upload sessions one client address may hold open
                         (default 256; 0 no cap; env REGMETA_MAX_UPLOADS_PER_ADDRESS)
  --max-failed-logins-per-address <n>
                         wrong passwords one client address may send a minute
                         before it gets 429 (default 10; 0 no limit; behind a
                         proxy every client shares its address; env
                         REGMETA_MAX_FAILED_LOGINS_PER_ADDRESS)
  -h, --help             this text

Stops on SIGINT or SIGTERM: no new connections, requests in flight finish,
the database is closed, exit status 0.

example:
  regmeta serve --listen 0.0.0.0:5000 --data /srv/registry --no-delete
`;

const options = {
  listen: { type: 'string' },
  data: { type: 'string' },
  htpasswd: { type: 'string' },
  admin: { type: 'string', multiple: true },
  'read-only': { type: 'boolean' },
  'no-delete': { type: 'boolean' },
  'idle-timeout': { type: 'string' },
  'max-connections-per-address': { type: 'string' },
  'max-uploads-per-address': { type: 'string' },
  'max-failed-logins-per-address': { type: 'string' },
} as const;

/** Options after parsing: flags override the environment, which overrides defaults. */
export interface ServeOptions {
  host: string;
  port: number;
  data: string;
  htpasswd?: string;
  admins: string[];
  readOnly: boolean;
  deletes: boolean;
  /** Milliseconds; undefined leaves the registry's default. */
  idleTimeout?: number;
  maxConnectionsPerAddress?: number;
  maxUploadsPerAddress?: number;
  maxFailedLoginsPerAddress?: number;
}

/**
 * A whole number from a flag or, failing that, the environment.
 * @throws CliError USAGE naming the flag when it is not a non-negative integer.
 */
function count(flag: string, value: string | undefined, envValue: string | undefined): number | undefined {
  const raw = value ?? (envValue || undefined);
  if (raw === undefined) return undefined;
  if (!/^\d{1,9}$/.test(raw)) throw usage(`--${flag} wants a whole number, not ${JSON.stringify(raw)}`);
  return Number(raw);
}

function usage(message: string): CliError {
  return new CliError(Exit.USAGE, message, "see 'regmeta serve --help'");
}

/**
 * Parses the command line; undefined after printing --help.
 * @throws CliError USAGE on a bad option, number or address.
 */
export function parseServeArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): ServeOptions | undefined {
  const args = parse(argv, serve, options, { min: 0, max: 0 });
  if (!args) return undefined;
  const values = args.values;
  const listen = values.listen ?? env.REGMETA_LISTEN ?? '127.0.0.1:5000';
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen);
  if (!match || Number(match[3]) > 65535) throw usage(`--listen wants host:port, not ${JSON.stringify(listen)}`);
  const idle = count('idle-timeout', values['idle-timeout'], env.REGMETA_IDLE_TIMEOUT);
  return {
    host: match[1] ?? (match[2] || '127.0.0.1'),
    port: Number(match[3]),
    data: values.data ?? env.REGMETA_DATA ?? './data',
    htpasswd: values.htpasswd ?? (env.REGMETA_HTPASSWD || undefined),
    admins: (values.admin as string[] | undefined) ?? [],
    readOnly: values['read-only'] ?? false,
    deletes: !(values['no-delete'] ?? false),
    idleTimeout: idle === undefined ? undefined : idle * 1000,
    maxConnectionsPerAddress: count('max-connections-per-address', values['max-connections-per-address'], env.REGMETA_MAX_CONNECTIONS_PER_ADDRESS),
    maxUploadsPerAddress: count('max-uploads-per-address', values['max-uploads-per-address'], env.REGMETA_MAX_UPLOADS_PER_ADDRESS),
    maxFailedLoginsPerAddress: count(
      'max-failed-logins-per-address',
      values['max-failed-logins-per-address'],
      env.REGMETA_MAX_FAILED_LOGINS_PER_ADDRESS,
    ),
  };
}

/** One of the command's own lines; the request log is flushed first, so stdout keeps the order of events. */
function logLine(requestLog: LineBuffer, fields: Record<string, unknown>): void {
  requestLog.flush();
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...fields })}\n`);
}

/**
 * Starts the registry.
 * @throws StoreError from opening the database; CliError IO when the
 * htpasswd file cannot be read or the address cannot be listened on.
 */
async function start(o: ServeOptions, requestLog: LineBuffer): Promise<StartedRegistry> {
  const { host, port, data, admins, ...limits } = o;
  try {
    return await startRegistry({
      ...limits,
      host,
      port,
      dataDir: path.resolve(data),
      admins,
      log: (entry) => requestLog.line(JSON.stringify(entry)),
      onError: (error) =>
        process.stderr.write(
          `${JSON.stringify({ time: new Date().toISOString(), level: 'error', error: String((error as Error)?.stack ?? error) })}\n`,
        ),
    });
  } catch (error) {
    // The database's errors keep their own exit code; the rest is this machine's I/O.
    if (error instanceof StoreError) throw error;
    throw new CliError(Exit.IO, `cannot start: ${(error as Error).message}`);
  }
}

export const serve: Command = {
  name: 'serve',
  usage: USAGE,
  async run(argv) {
    const o = parseServeArgs(argv);
    if (o === undefined) return Exit.OK;
    const requestLog = new LineBuffer();
    const registry = await start(o, requestLog);
    const url = new URL(registry.url);
    logLine(requestLog, { msg: 'listening', url: registry.url, port: Number(url.port), data: path.resolve(o.data), readOnly: o.readOnly, deletes: o.deletes, auth: o.htpasswd !== undefined });
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    });
    logLine(requestLog, { msg: 'shutting down', signal });
    await registry.close();
    logLine(requestLog, { msg: 'stopped' });
    requestLog.close();
    return Exit.OK;
  },
};
