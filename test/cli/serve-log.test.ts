// The log of `regmeta serve` as a real child process writes it: JSON lines
// on stdout (a pipe), one per request with its route, client, user agent and
// request id; probes only at debug; a fault once on stderr at error, with
// its stack and request id; readable lines on a terminal. Plus --log-level
// and --min-free-disk as options, in-process.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseServeArgs } from '../../src/cli/commands/serve.js';
import { BIN } from './run.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'regmeta-log-'));
  dirs.push(dir);
  return dir;
}

async function until(what: string, condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A port free a moment ago: the kernel's choice for a listener closed at once. */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

interface Logged {
  child: ChildProcess;
  url: string;
  data: string;
  /** stdout's lines, parsed as JSON (each must parse). */
  out: Record<string, unknown>[];
  err: Record<string, unknown>[];
  exit: Promise<number | null>;
}

/** `regmeta serve` on port 0 with its stdout and stderr parsed line by line as JSON. */
async function serveLogged(args: string[] = [], env: Record<string, string> = {}): Promise<Logged> {
  const data = dataDir();
  const child = spawn(process.execPath, [BIN, 'serve', '--listen', '127.0.0.1:0', '--data', data, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const parsed = (stream: NodeJS.ReadableStream, into: Record<string, unknown>[]) => {
    let rest = '';
    stream.on('data', (chunk: Buffer) => {
      const lines = (rest + String(chunk)).split('\n');
      rest = lines.pop()!;
      for (const line of lines) into.push(JSON.parse(line) as Record<string, unknown>);
    });
  };
  const out: Record<string, unknown>[] = [];
  const err: Record<string, unknown>[] = [];
  parsed(child.stdout!, out);
  parsed(child.stderr!, err);
  await until('the listening line', () => out.some((l) => l.msg === 'listening'));
  const port = out.find((l) => l.msg === 'listening')!.port as number;
  return { child, url: `http://127.0.0.1:${port}`, data, out, err, exit };
}

describe('the log of regmeta serve on a pipe', () => {
  it('is a JSON line per request with route, status, bytes, ms, actor, address, user agent and request id; probes and scrapes are left out at info', async () => {
    const s = await serveLogged();
    try {
      const res = await fetch(`${s.url}/v2/app/manifests/latest`, { headers: { 'User-Agent': 'docker/27.0', 'X-Request-Id': 'from-client-1' } });
      expect(res.status).toBe(404);
      expect(res.headers.get('x-request-id')).toBe('from-client-1');
      const made = await fetch(`${s.url}/v2/`);
      expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${s.url}/readyz`)).status).toBe(200);
      expect((await fetch(`${s.url}/metrics`)).status).toBe(200);
      const madeId = made.headers.get('x-request-id')!;
      await until('the request lines', () => s.out.some((l) => l.requestId === madeId));
      const line = s.out.find((l) => l.requestId === 'from-client-1');
      expect(line).toEqual({
        level: 'info',
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        msg: 'request',
        method: 'GET',
        route: 'manifest',
        path: '/v2/app/manifests/latest',
        status: 404,
        bytes: expect.any(Number),
        ms: expect.any(Number),
        actor: '',
        remoteAddress: '127.0.0.1',
        userAgent: 'docker/27.0',
        requestId: 'from-client-1',
      });
      expect(s.out.find((l) => l.requestId === madeId)).toMatchObject({ route: 'base', status: 200 });
      expect(s.out.filter((l) => ['healthz', 'readyz', 'metrics'].includes(l.route as string))).toEqual([]);
    } finally {
      s.child.kill('SIGTERM');
    }
    expect(await s.exit).toBe(0);
    // In the order of events, the command's own lines included, nothing on stderr.
    expect(s.out.map((l) => (l.msg === 'request' ? l.route : l.msg))).toEqual(['listening', 'manifest', 'base', 'shutting down', 'stopped']);
    expect(s.err).toEqual([]);
  });

  it('logs probes at debug with --log-level debug (or REGMETA_LOG_LEVEL), and only warnings and worse at warn', async () => {
    const debug = await serveLogged([], { REGMETA_LOG_LEVEL: 'debug' });
    try {
      const id = (await fetch(`${debug.url}/readyz`)).headers.get('x-request-id');
      await until('the probe line', () => debug.out.some((l) => l.requestId === id));
      expect(debug.out.find((l) => l.requestId === id)).toMatchObject({ level: 'debug', route: 'readyz', status: 200 });
    } finally {
      debug.child.kill('SIGTERM');
    }
    expect(await debug.exit).toBe(0);

    // At warn even the listening line is left out: the port is chosen here, and probed until it answers.
    const port = await freePort();
    const quiet = spawn(process.execPath, [BIN, 'serve', '--listen', `127.0.0.1:${port}`, '--data', dataDir(), '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    quiet.stdout.on('data', (chunk) => (output += chunk));
    quiet.stderr.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => quiet.once('exit', resolve));
    while (!(await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok, () => false))) await new Promise((resolve) => setTimeout(resolve, 20));
    quiet.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toBe('');
  });

  it('logs a server fault once, on stderr at error, with its stack and the request id the client got', async () => {
    const s = await serveLogged();
    try {
      rmSync(path.join(s.data, 'uploads'), { recursive: true });
      writeFileSync(path.join(s.data, 'uploads'), 'in the way');
      const res = await fetch(`${s.url}/v2/faulty/app/blobs/uploads/`, { method: 'POST' });
      expect(res.status).toBe(500);
      const requestId = res.headers.get('x-request-id')!;
      await until('the fault line', () => s.err.length > 0);
      await until('the request line', () => s.out.some((l) => l.requestId === requestId));
      expect(s.err).toHaveLength(1);
      expect(s.err[0]).toMatchObject({ level: 'error', requestId, msg: expect.stringContaining('ENOTDIR') });
      expect((s.err[0].err as { stack: string; code: string }).code).toBe('ENOTDIR');
      expect((s.err[0].err as { stack: string }).stack).toMatch(/\n\s+at /);
      expect(s.out.find((l) => l.requestId === requestId)).toMatchObject({ level: 'info', route: 'uploadStart', status: 500 });
    } finally {
      s.child.kill('SIGTERM');
    }
    expect(await s.exit).toBe(0);
    expect(s.err).toHaveLength(1);
  });
});

describe('the log of regmeta serve on a terminal', () => {
  it('is one readable line per request, colored, not JSON', async () => {
    const data = dataDir();
    // util-linux script: the command's stdout and stderr are a pseudo-terminal.
    const child = spawn('script', ['-qec', `${process.execPath} ${BIN} serve --listen 127.0.0.1:0 --data ${data}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    const plain = () => output.replace(/\x1b\[[0-9;]*m/g, '').replace(/\r/g, '');
    try {
      await until('the listening line', () => /listening url=\S+ port=\d+/.test(plain()));
      const port = Number(/ port=(\d+)/.exec(plain())![1]);
      const res = await fetch(`http://127.0.0.1:${port}/v2/nothing/here/tags/list`, { headers: { 'User-Agent': 'tty test' } });
      expect(res.status).toBe(404);
      const id = res.headers.get('x-request-id')!;
      await until('the request line', () => plain().includes(`id=${id}`));
      const line = plain().split('\n').find((l) => l.includes(`id=${id}`))!;
      expect(line).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} INFO  GET tags /v2/nothing/here/tags/list 404 \\d+B [\\d.]+ms - 127\\.0\\.0\\.1 "tty test" id=${id}$`));
      expect(output).toContain('\x1b[32mINFO ');
      expect(output).not.toContain('{"level"');
    } finally {
      child.kill('SIGTERM');
    }
    await exited;
  });
});

describe('--log-level and --min-free-disk', () => {
  const config = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseServeArgs(argv, env)!.config;

  it('are flags, environment variables and config keys like every option, and refuse a bad value', () => {
    expect(config([])).toMatchObject({ logLevel: 'info', minFreeDisk: 1024 ** 3 });
    expect(config(['--log-level', 'debug', '--min-free-disk', '10GiB'])).toMatchObject({ logLevel: 'debug', minFreeDisk: 10 * 1024 ** 3 });
    expect(config([], { REGMETA_LOG_LEVEL: 'error', REGMETA_MIN_FREE_DISK: '0' })).toMatchObject({ logLevel: 'error', minFreeDisk: 0 });
    const file = path.join(dataDir(), 'regmeta.yaml');
    writeFileSync(file, 'logLevel: trace\nminFreeDisk: 512MiB\n');
    expect(config(['--config', file])).toMatchObject({ logLevel: 'trace', minFreeDisk: 512 * 1024 ** 2 });
    expect(() => config(['--log-level', 'verbose'])).toThrow(/^--log-level: expected one of trace, debug, info, warn, error, fatal, silent, got "verbose"$/);
    expect(() => config([], { REGMETA_MIN_FREE_DISK: '1GB' })).toThrow(/^REGMETA_MIN_FREE_DISK: expected a size/);
  });
});
