// `regmeta serve` as a real child process: it prints where it listens,
// serves, and on SIGTERM lets the request in flight finish, closes the
// database and exits 0. Plus the option parsing, in-process.

import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { openStore } from 'regmeta';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_BLOB_LIMITS } from '../../src/blobstore/types.js';
import { parseServeArgs } from '../../src/cli/commands/serve.js';
import { CliError, Exit } from '../../src/cli/exit.js';
import { DEFAULT_AUTH_LIMITS } from '../../src/server/auth.js';
import { DEFAULT_CONNECTION_LIMITS } from '../../src/server/connections.js';
import { DEFAULT_STATS_INTERVAL } from '../../src/server/metrics.js';
import { DEFAULT_PULL_FLUSH_INTERVAL } from '../../src/server/pulls.js';
import { DEFAULT_MAINTENANCE_INTERVAL } from '../../src/server/maintenance.js';
import { DEFAULT_MIN_FREE_DISK } from '../../src/server/readiness.js';
import { pushBlob, sha256 } from '../server/helpers.js';
import { BIN } from './run.js';

const root = path.resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('parseServeArgs', () => {
  const config = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseServeArgs(argv, env)!.config;

  it('defaults to 127.0.0.1:5000 and ./data with deletes on, and the limits of the server\'s constants', () => {
    const loaded = parseServeArgs([], {})!;
    expect(loaded.config).toEqual({
      listen: '127.0.0.1:5000',
      data: path.resolve('data'),
      admins: [],
      readOnly: false,
      storage: { redirect: false },
      deletes: true,
      notify: [],
      mirrors: [],
      logLevel: 'info',
      minFreeDisk: DEFAULT_MIN_FREE_DISK,
      metrics: true,
      metricsInterval: DEFAULT_STATS_INTERVAL,
      pulls: { stats: true, flushInterval: DEFAULT_PULL_FLUSH_INTERVAL, events: false },
      immutable: [],
      quotas: [],
      retention: [],
      maintenance: { interval: DEFAULT_MAINTENANCE_INTERVAL },
      limits: {
        idleTimeout: DEFAULT_CONNECTION_LIMITS.idleTimeout,
        headersTimeout: DEFAULT_CONNECTION_LIMITS.headersTimeout,
        minBodyRate: DEFAULT_CONNECTION_LIMITS.minBodyRate,
        bodyRateGrace: DEFAULT_CONNECTION_LIMITS.bodyRateGrace,
        maxConnectionsPerAddress: DEFAULT_CONNECTION_LIMITS.maxConnectionsPerAddress,
        maxConnections: DEFAULT_CONNECTION_LIMITS.maxConnections,
        maxUploadsPerAddress: DEFAULT_BLOB_LIMITS.maxUploadsPerAddress,
        uploadTtl: DEFAULT_BLOB_LIMITS.uploadTtl,
        maxBlobSize: DEFAULT_BLOB_LIMITS.maxBlobSize,
        maxFailedLoginsPerAddress: DEFAULT_AUTH_LIMITS.maxFailedLoginsPerAddress,
        failedLoginWindow: DEFAULT_AUTH_LIMITS.failedLoginWindow,
        failedLoginAddresses: DEFAULT_AUTH_LIMITS.failedLoginAddresses,
        passwordCheckThreads: DEFAULT_AUTH_LIMITS.passwordCheckThreads,
        passwordCheckQueue: DEFAULT_AUTH_LIMITS.passwordCheckQueue,
      },
    });
    expect(new Set(Object.values(loaded.sources))).toEqual(new Set(['default']));
    expect(loaded.printConfig).toBe(false);
  });

  it('takes the failed-login limit from the flag or the environment, and refuses a non-number', () => {
    expect(config(['--max-failed-logins-per-address', '0']).limits).toMatchObject({ maxFailedLoginsPerAddress: 0 });
    expect(config([], { REGMETA_MAX_FAILED_LOGINS_PER_ADDRESS: '50' }).limits).toMatchObject({ maxFailedLoginsPerAddress: 50 });
    expect(() => config(['--max-failed-logins-per-address', 'ten'])).toThrow(/^--max-failed-logins-per-address: expected a whole number ≥ 0, got "ten"$/);
  });

  it('takes the environment over defaults and flags over the environment', () => {
    const env = { REGMETA_LISTEN: '0.0.0.0:6000', REGMETA_DATA: '/env/data', REGMETA_HTPASSWD: '/env/htpasswd', REGMETA_ADMINS: 'x, y' };
    expect(config([], env)).toMatchObject({ listen: '0.0.0.0:6000', data: '/env/data', htpasswd: '/env/htpasswd', admins: ['x', 'y'] });
    const loaded = parseServeArgs(['--listen', '[::1]:7000', '--data', 'd', '--read-only', '--no-delete', '--admin', 'a', '--admin', 'b'], env)!;
    expect(loaded.config).toMatchObject({
      listen: '[::1]:7000',
      data: path.resolve('d'),
      htpasswd: '/env/htpasswd',
      readOnly: true,
      deletes: false,
      admins: ['a', 'b'],
    });
    expect(loaded.sources).toMatchObject({ listen: 'flag', data: 'flag', htpasswd: 'environment', readOnly: 'flag', deletes: 'flag', 'limits.idleTimeout': 'default' });
  });

  it('treats an empty environment variable as unset, and reads booleans from it', () => {
    const empty = config([], { REGMETA_HTPASSWD: '', REGMETA_LISTEN: '' });
    expect(empty.listen).toBe('127.0.0.1:5000');
    expect(empty.htpasswd).toBeUndefined();
    expect(config([], { REGMETA_READ_ONLY: 'true', REGMETA_DELETES: '0' })).toMatchObject({ readOnly: true, deletes: false });
    expect(config(['--no-read-only', '--delete'], { REGMETA_READ_ONLY: '1', REGMETA_DELETES: 'false' })).toMatchObject({ readOnly: false, deletes: true });
    expect(() => config([], { REGMETA_READ_ONLY: 'yes please' })).toThrow(/^REGMETA_READ_ONLY: expected true or false, got "yes please"$/);
    expect(() => config(['--delete', '--no-delete'])).toThrow(/--delete and --no-delete contradict/);
  });

  it('takes the connection and upload limits from flags or the environment, durations in seconds or with a unit', () => {
    const env = { REGMETA_IDLE_TIMEOUT: '30', REGMETA_MAX_CONNECTIONS_PER_ADDRESS: '10', REGMETA_MAX_UPLOADS_PER_ADDRESS: '5' };
    expect(config([], env).limits).toMatchObject({ idleTimeout: 30_000, maxConnectionsPerAddress: 10, maxUploadsPerAddress: 5 });
    expect(config(['--idle-timeout', '0', '--max-connections-per-address', '0', '--max-uploads-per-address', '7'], env).limits).toMatchObject({
      idleTimeout: 0,
      maxConnectionsPerAddress: 0,
      maxUploadsPerAddress: 7,
    });
    expect(config(['--idle-timeout', '1m30s', '--upload-ttl', '2h', '--max-blob-size', '512MiB']).limits).toMatchObject({
      idleTimeout: 90_000,
      uploadTtl: 7_200_000,
      maxBlobSize: 512 * 1024 ** 2,
    });
    expect(config(['--idle-timeout', '1.5']).limits.idleTimeout).toBe(1500);
    expect(() => config(['--idle-timeout', 'soon'])).toThrow(/^--idle-timeout: expected a duration \(seconds, or like 60s, 5m, 1h30m\), got "soon"$/);
    expect(() => config([], { REGMETA_MAX_UPLOADS_PER_ADDRESS: '-1' })).toThrow(/^REGMETA_MAX_UPLOADS_PER_ADDRESS: expected a whole number/);
    expect(() => config(['--password-check-threads', '0'])).toThrow(/--password-check-threads: expected a whole number from 1 to 64, got "0"/);
  });

  it('takes the server-wide connection cap, the request head deadline and the minimum body rate from flags or the environment', () => {
    const env = { REGMETA_MAX_CONNECTIONS: '2000', REGMETA_HEADERS_TIMEOUT: '5s', REGMETA_MIN_BODY_RATE: '1KiB', REGMETA_BODY_RATE_GRACE: '30' };
    expect(config([], env).limits).toMatchObject({ maxConnections: 2000, headersTimeout: 5000, minBodyRate: 1024, bodyRateGrace: 30_000 });
    expect(config(['--max-connections', '0', '--min-body-rate', '0', '--body-rate-grace', '0'], env).limits).toMatchObject({
      maxConnections: 0,
      minBodyRate: 0,
      bodyRateGrace: 0,
    });
    expect(() => config(['--headers-timeout', '0'])).toThrow(/^--headers-timeout: expected a duration \(seconds, or like 60s, 5m, 1h30m\) of at least 1s, got "0"$/);
    expect(() => config(['--max-connections', 'lots'])).toThrow(/^--max-connections: expected a whole number ≥ 0, got "lots"$/);
  });

  it('caps connections by default below the open-file limit, with room for a blob file each', async () => {
    // A process whose limit is 512 descriptors: (512 - 128) / 2 connections.
    const run = spawnSync('sh', ['-c', `ulimit -n 512 && exec "${process.execPath}" "${BIN}" serve --print-config`], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('  maxConnections: 192 # default\n');
  });

  it('reports every bad flag and variable at once, one line each', () => {
    let thrown: unknown;
    try {
      config(['--idle-timeout', 'x', '--listen', 'nowhere'], { REGMETA_MAX_BLOB_SIZE: '10GB' });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(CliError);
    const error = thrown as CliError;
    expect(error.exitCode).toBe(Exit.USAGE);
    expect([error.message, ...error.more].map((line) => line.split(':')[0])).toEqual(['--listen', '--idle-timeout', 'REGMETA_MAX_BLOB_SIZE']);
  });

  it('wants the TLS certificate and key together', () => {
    expect(config(['--tls-cert', 'c.pem', '--tls-key', 'k.pem']).tls).toEqual({ cert: path.resolve('c.pem'), key: path.resolve('k.pem') });
    expect(() => config(['--tls-cert', 'c.pem'])).toThrow(/^tls.key: needed with tls.cert \(--tls-key, REGMETA_TLS_KEY or tls.key in the config file\)$/);
    expect(() => config([], { REGMETA_TLS_KEY: 'k.pem' })).toThrow(/^tls.cert: needed with tls.key/);
  });

  it('refuses a malformed address or an unknown option', () => {
    expect(() => config(['--listen', 'localhost'])).toThrow(/host:port/);
    expect(() => config(['--listen', 'h:70000'])).toThrow(/host:port/);
    expect(() => config(['--bogus'])).toThrow();
  });
});

interface Child {
  proc: ChildProcessWithoutNullStreams;
  lines: Record<string, unknown>[];
  port: number;
  exit: Promise<number | null>;
}

async function startChild(data: string): Promise<Child> {
  const proc = spawn(process.execPath, [BIN, 'serve', '--listen', '127.0.0.1:0', '--data', data], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  const exit = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  let stderr = '';
  proc.stderr.on('data', (chunk) => (stderr += chunk));
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      lines.push(entry);
      if (entry.msg === 'listening') resolve(entry.port as number);
    });
    void exit.then((code) => reject(new Error(`server exited ${code} before listening: ${stderr}`)));
  });
  return { proc, lines, port, exit };
}

describe('the server process', () => {
  it('prints its port, logs each request as JSON, and on SIGTERM finishes the request in flight and exits 0', async () => {
    const data = mkdtempSync(path.join(tmpdir(), 'regmeta-main-'));
    dirs.push(data);
    const child = await startChild(data);
    const url = `http://127.0.0.1:${child.port}`;
    const digest = await pushBlob(url, 'proc/app', 'before the signal');
    const post = await fetch(`${url}/v2/proc/app/blobs/uploads/`, { method: 'POST' });
    const location = post.headers.get('location')!;

    // A PATCH that the server has started on (100 Continue proves it), whose
    // body is still coming when the signal arrives.
    const body = Buffer.from('sent after SIGTERM');
    const inFlight = request({
      host: '127.0.0.1',
      port: child.port,
      method: 'PATCH',
      path: location,
      headers: { 'Content-Length': body.length, Expect: '100-continue' },
    });
    const answered = new Promise<number>((resolve, reject) => {
      inFlight.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      inFlight.on('error', reject);
    });
    await new Promise<void>((resolve) => inFlight.once('continue', resolve));
    child.proc.kill('SIGTERM');
    // The signal is seen once the server logs it; only then does the body go out.
    while (!child.lines.some((line) => line.msg === 'shutting down')) await new Promise((resolve) => setTimeout(resolve, 10));
    inFlight.end(body);
    expect(await answered).toBe(202);
    expect(await child.exit).toBe(0);
    expect(child.lines.at(-1)).toMatchObject({ msg: 'stopped' });

    const requests = child.lines.filter((line) => line.method !== undefined);
    expect(requests.map((line) => `${line.method} ${line.status}`)).toEqual(['POST 201', 'POST 202', 'PATCH 202']);
    for (const line of requests) {
      expect(Object.keys(line).sort()).toEqual(['actor', 'bytes', 'level', 'method', 'ms', 'msg', 'path', 'remoteAddress', 'requestId', 'route', 'status', 'time', 'userAgent']);
    }

    // The database was closed cleanly and holds what was acknowledged.
    const store = openStore(path.join(data, 'metadata.db'));
    try {
      expect(store.statBlob('proc/app', digest).size).toBe('before the signal'.length);
      expect(digest).toBe(sha256('before the signal'));
    } finally {
      store.close();
    }
  });

  it('logs SIGHUP without TLS and goes on serving, even one sent the moment it says it listens', async () => {
    const data = mkdtempSync(path.join(tmpdir(), 'regmeta-main-'));
    dirs.push(data);
    const child = await startChild(data);
    child.proc.kill('SIGHUP');
    while (!child.lines.some((line) => line.msg === 'SIGHUP: no TLS certificate to re-read')) {
      if (child.proc.exitCode !== null || child.proc.signalCode !== null) throw new Error(`serve ended on SIGHUP (${child.proc.signalCode})`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect((await fetch(`http://127.0.0.1:${child.port}/v2/`)).status).toBe(200);
    child.proc.kill('SIGTERM');
    expect(await child.exit).toBe(0);
  });

  it('stops listening on SIGINT: a later connection is refused', async () => {
    const data = mkdtempSync(path.join(tmpdir(), 'regmeta-main-'));
    dirs.push(data);
    const child = await startChild(data);
    expect((await fetch(`http://127.0.0.1:${child.port}/v2/`)).status).toBe(200);
    child.proc.kill('SIGINT');
    expect(await child.exit).toBe(0);
    await expect(fetch(`http://127.0.0.1:${child.port}/v2/`)).rejects.toThrow();
  });
});
