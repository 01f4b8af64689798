// The registry's entry point: `npm start`, `tsx src/server/main.ts`, or
// `regmeta serve`. Parses options, opens the store, listens, logs one JSON
// line per request on stdout, and shuts down cleanly on SIGINT/SIGTERM.

import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { openStore } from '../index.js';
import { closeRegistry, createRegistry } from './server.js';

const USAGE = `usage: regmeta serve [options]

Runs an OCI distribution-spec v1.1 registry: metadata in <data>/metadata.db,
blobs in <data>/blobs, uploads in progress in <data>/uploads.

options:
  --listen <host:port>   where to listen (default 127.0.0.1:5000; env REGMETA_LISTEN)
  --data <dir>           the data directory (default ./data; env REGMETA_DATA)
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
`;

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
  /** Undefined leaves the registry's default. */
  maxFailedLoginsPerAddress?: number;
}

/**
 * A whole number from a flag or, failing that, the environment.
 * @throws Error naming the flag when it is not a non-negative integer.
 */
function count(flag: string, value: string | undefined, envValue: string | undefined): number | undefined {
  const raw = value ?? (envValue || undefined);
  if (raw === undefined) return undefined;
  if (!/^\d{1,9}$/.test(raw)) throw new Error(`--${flag} wants a whole number, not ${JSON.stringify(raw)}`);
  return Number(raw);
}

function seconds(value: number | undefined): number | undefined {
  return value === undefined ? undefined : value * 1000;
}

/**
 * Parses the command line.
 * @throws Error with a message for the user on a bad option or address.
 */
export function parseServeArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): ServeOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
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
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return 'help';
  const listen = values.listen ?? env.REGMETA_LISTEN ?? '127.0.0.1:5000';
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen);
  if (!match || Number(match[3]) > 65535) throw new Error(`--listen wants host:port, not ${JSON.stringify(listen)}`);
  return {
    host: match[1] ?? (match[2] || '127.0.0.1'),
    port: Number(match[3]),
    data: values.data ?? env.REGMETA_DATA ?? './data',
    htpasswd: values.htpasswd ?? (env.REGMETA_HTPASSWD || undefined),
    admins: values.admin ?? [],
    readOnly: values['read-only'] ?? false,
    deletes: !(values['no-delete'] ?? false),
    idleTimeout: seconds(count('idle-timeout', values['idle-timeout'], env.REGMETA_IDLE_TIMEOUT)),
    maxConnectionsPerAddress: count(
      'max-connections-per-address',
      values['max-connections-per-address'],
      env.REGMETA_MAX_CONNECTIONS_PER_ADDRESS,
    ),
    maxUploadsPerAddress: count('max-uploads-per-address', values['max-uploads-per-address'], env.REGMETA_MAX_UPLOADS_PER_ADDRESS),
    maxFailedLoginsPerAddress: count(
      'max-failed-logins-per-address',
      values['max-failed-logins-per-address'],
      env.REGMETA_MAX_FAILED_LOGINS_PER_ADDRESS,
    ),
  };
}

/**
 * Runs the registry until SIGINT or SIGTERM.
 * @returns the exit status: 0 after a clean shutdown, 2 for bad usage, 1 when it cannot start.
 */
export async function serve(argv: string[]): Promise<number> {
  let options: ServeOptions | 'help';
  try {
    options = parseServeArgs(argv);
  } catch (error) {
    process.stderr.write(`regmeta serve: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const data = path.resolve(options.data);
  let store;
  let server;
  try {
    mkdirSync(data, { recursive: true });
    store = openStore(path.join(data, 'metadata.db'));
    server = createRegistry({
      store,
      dataDir: data,
      htpasswd: options.htpasswd,
      admins: options.admins,
      readOnly: options.readOnly,
      deletes: options.deletes,
      idleTimeout: options.idleTimeout,
      maxConnectionsPerAddress: options.maxConnectionsPerAddress,
      maxUploadsPerAddress: options.maxUploadsPerAddress,
      maxFailedLoginsPerAddress: options.maxFailedLoginsPerAddress,
      log: (entry) => process.stdout.write(`${JSON.stringify(entry)}\n`),
      onError: (error) =>
        process.stderr.write(
          `${JSON.stringify({ time: new Date().toISOString(), level: 'error', error: String((error as Error)?.stack ?? error) })}\n`,
        ),
    });
    await listen(server, options.port, options.host);
  } catch (error) {
    store?.close();
    process.stderr.write(`regmeta serve: ${(error as Error).message}\n`);
    return 1;
  }
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  process.stdout.write(
    `${JSON.stringify({ time: new Date().toISOString(), msg: 'listening', url: `http://${shown}:${address.port}`, port: address.port, data, readOnly: options.readOnly, deletes: options.deletes, auth: options.htpasswd !== undefined })}\n`,
  );

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), msg: 'shutting down', signal })}\n`);
  await closeRegistry(server);
  store.close();
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), msg: 'stopped' })}\n`);
  return 0;
}

function listen(server: ReturnType<typeof createRegistry>, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

// Run directly (npm start, tsx src/server/main.ts), not when imported by the CLI.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  serve(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      // Everything is closed; should a handle linger anyway, do not hang on it.
      setTimeout(() => process.exit(code), 1000).unref();
    },
    (error: unknown) => {
      process.stderr.write(`regmeta serve: ${String((error as Error)?.stack ?? error)}\n`);
      process.exitCode = 1;
    },
  );
}
