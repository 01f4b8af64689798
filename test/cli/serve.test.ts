// `regmeta serve` as a real child process: it prints where it listens,
// serves, and on SIGTERM lets the request in flight finish, closes the
// database and exits 0. Plus the option parsing, in-process.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { openStore } from 'regmeta';
import { afterAll, describe, expect, it } from 'vitest';
import { parseServeArgs } from '../../src/cli/commands/serve.js';
import { pushBlob, sha256 } from '../server/helpers.js';
import { BIN } from './run.js';

const root = path.resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('parseServeArgs', () => {
  it('defaults to 127.0.0.1:5000 and ./data with deletes on', () => {
    expect(parseServeArgs([], {})).toEqual({
      host: '127.0.0.1',
      port: 5000,
      data: './data',
      htpasswd: undefined,
      admins: [],
      readOnly: false,
      deletes: true,
      maxFailedLoginsPerAddress: undefined,
    });
  });

  it('takes the failed-login limit from the flag or the environment, and refuses a non-number', () => {
    expect(parseServeArgs(['--max-failed-logins-per-address', '0'], {})).toMatchObject({ maxFailedLoginsPerAddress: 0 });
    expect(parseServeArgs([], { REGMETA_MAX_FAILED_LOGINS_PER_ADDRESS: '50' })).toMatchObject({ maxFailedLoginsPerAddress: 50 });
    expect(() => parseServeArgs(['--max-failed-logins-per-address', 'ten'], {})).toThrow(/whole number/);
  });

  it('takes the environment over defaults and flags over the environment', () => {
    const env = { REGMETA_LISTEN: '0.0.0.0:6000', REGMETA_DATA: '/env/data', REGMETA_HTPASSWD: '/env/htpasswd' };
    expect(parseServeArgs([], env)).toMatchObject({ host: '0.0.0.0', port: 6000, data: '/env/data', htpasswd: '/env/htpasswd' });
    expect(parseServeArgs(['--listen', '[::1]:7000', '--data', 'd', '--read-only', '--no-delete', '--admin', 'a', '--admin', 'b'], env)).toMatchObject({
      host: '::1',
      port: 7000,
      data: 'd',
      readOnly: true,
      deletes: false,
      admins: ['a', 'b'],
    });
  });

  it('takes the connection and upload limits from flags or the environment, the idle timeout in seconds', () => {
    const env = { REGMETA_IDLE_TIMEOUT: '30', REGMETA_MAX_CONNECTIONS_PER_ADDRESS: '10', REGMETA_MAX_UPLOADS_PER_ADDRESS: '5' };
    expect(parseServeArgs([], env)).toMatchObject({ idleTimeout: 30_000, maxConnectionsPerAddress: 10, maxUploadsPerAddress: 5 });
    expect(parseServeArgs(['--idle-timeout', '0', '--max-connections-per-address', '0', '--max-uploads-per-address', '7'], env)).toMatchObject({
      idleTimeout: 0,
      maxConnectionsPerAddress: 0,
      maxUploadsPerAddress: 7,
    });
    expect(() => parseServeArgs(['--idle-timeout', '1.5'], {})).toThrow(/--idle-timeout wants a whole number/);
    expect(() => parseServeArgs([], { REGMETA_MAX_UPLOADS_PER_ADDRESS: '-1' })).toThrow(/--max-uploads-per-address/);
  });

  it('refuses a malformed address or an unknown option', () => {
    expect(() => parseServeArgs(['--listen', 'localhost'], {})).toThrow(/host:port/);
    expect(() => parseServeArgs(['--listen', 'h:70000'], {})).toThrow(/host:port/);
    expect(() => parseServeArgs(['--bogus'], {})).toThrow();

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
      expect(Object.keys(line).sort()).toEqual(['actor', 'bytes', 'method', 'ms', 'path', 'status', 'time']);
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
