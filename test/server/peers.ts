// Starts registries as real child processes on loopback for tests and the
// server bench: our server (src/server/main.ts under tsx) and the CNCF
// distribution registry from Debian's docker-registry package. Every peer is
// tracked so that stopAll() (and, as a last resort, process exit) kills it.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DISTRIBUTION_BIN = '/usr/bin/docker-registry';

/** A registry running as a child process. */
export interface Peer {
  /** 'ours' or 'distribution'. */
  kind: string;
  /** host:port, as registry clients name it (127.0.0.1:<port>). */
  host: string;
  /** http://host:port */
  url: string;
  /** The temporary directory holding the peer's data; removed by stop(). */
  dataDir: string;
  pid: number;
  /** The peer's stdout and stderr so far (the last 1 MiB), for diagnostics. */
  output(): string;
  /** Kills the process (SIGTERM, then SIGKILL after 5 s), waits for it, removes dataDir. */
  stop(): Promise<void>;
}

export interface PeerOptions {
  /** An htpasswd file (bcrypt) to require basic auth with. */
  htpasswd?: string;
  /** Extra command-line arguments (ours only). */
  args?: string[];
  /** Where to make the peer's temporary data directory (default: os.tmpdir()). */
  parentDir?: string;
}

const live = new Set<Peer>();

process.on('exit', () => {
  for (const peer of live) {
    try {
      process.kill(peer.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Stops every peer still running. */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((peer) => peer.stop()));
}

/** Whether a program is on this machine; a test needing it should fail loudly, not skip. */
export function haveProgram(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
}

/** A TCP port free on 127.0.0.1 right now (for peers that cannot listen on port 0). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

function track(kind: string, child: ChildProcess, dataDir: string): { peer: (host: string) => Peer; output: () => string; exited: Promise<void> } {
  let output = '';
  const append = (chunk: Buffer) => {
    output += chunk.toString();
    // Trim only at 2 MiB so that a chatty request log costs amortized O(1) per chunk.
    if (output.length > 2 << 20) output = output.slice(-(1 << 20));
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exited = new Promise<void>((done) => {
    if (child.exitCode !== null || child.signalCode !== null) done();
    child.once('exit', () => done());
    // A spawn failure (ENOENT) emits 'error' and perhaps no 'exit'.
    child.once('error', (error) => {
      append(Buffer.from(`spawn failed: ${error.message}\n`));
      done();
    });
  });
  const peer = (host: string): Peer => {
    const self: Peer = {
      kind,
      host,
      url: `http://${host}`,
      dataDir,
      pid: child.pid!,
      output: () => output,
      stop: async () => {
        live.delete(self);
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(timer);
        }
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
    live.add(self);
    return self;
  };
  return { peer, output: () => output, exited };
}

/** Polls GET /v2/ until the registry answers (any status: 401 means it is up too). */
async function waitUntilUp(url: string, exited: Promise<void>, describe: () => string): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (gone) throw new Error(`registry exited before answering:\n${describe()}`);
    try {
      await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`registry did not answer on ${url} within 30 s:\n${describe()}`);
}

/**
 * Starts our server (src/server/main.ts) on 127.0.0.1 port 0 with a fresh data
 * directory and waits until it answers.
 * @throws when the server is missing, exits early, or prints no address.
 */
export async function startOurs(options: PeerOptions = {}): Promise<Peer> {
  const entry = join(ROOT, 'src', 'server', 'main.ts');
  if (!existsSync(entry)) throw new Error(`${entry} does not exist yet`);
  const dataDir = mkdtempSync(join(options.parentDir ?? tmpdir(), 'regmeta-peer-'));
  const args = ['--import', 'tsx', entry, '--listen', '127.0.0.1:0', '--data', dataDir];
  if (options.htpasswd) args.push('--htpasswd', options.htpasswd);
  args.push(...(options.args ?? []));
  // node --import tsx rather than npx tsx: one process, so killing it leaves nothing behind.
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const { peer, output, exited } = track('ours', child, dataDir);
  let host: string;
  try {
    host = await new Promise<string>((found, fail) => {
      const timer = setTimeout(() => fail(new Error(`our server printed no address within 30 s:\n${output()}`)), 30_000);
      const look = () => {
        const match = /127\.0\.0\.1:([1-9]\d*)/.exec(output());
        if (match) {
          clearTimeout(timer);
          found(`127.0.0.1:${match[1]}`);
        }
      };
      child.stdout!.on('data', look);
      child.stderr!.on('data', look);
      void exited.then(() => {
        clearTimeout(timer);
        fail(new Error(`our server exited (code ${child.exitCode}, signal ${child.signalCode}):\n${output()}`));
      });
    });
  } catch (error) {
    child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  const started = peer(host);
  await waitUntilUp(started.url, exited, output).catch(async (error) => {
    await started.stop();
    throw error;
  });
  return started;
}

/**
 * Starts Debian's docker-registry (CNCF distribution) on a free loopback port
 * with filesystem storage in a fresh temporary directory and deletes enabled,
 * and basic auth from `options.htpasswd` when given.
 * @throws when the binary is missing or the registry does not come up.
 */
export async function startDistribution(options: Pick<PeerOptions, 'htpasswd' | 'parentDir'> = {}): Promise<Peer> {
  if (!existsSync(DISTRIBUTION_BIN)) throw new Error(`${DISTRIBUTION_BIN} is missing: apt-get install docker-registry`);
  const dataDir = mkdtempSync(join(options.parentDir ?? tmpdir(), 'regmeta-distribution-'));
  const port = await freePort();
  const config = [
    'version: 0.1',
    // Logging stays at distribution's defaults (info, access log on): ours logs every request too.
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dataDir, 'storage')}`,
    '  delete:',
    '    enabled: true',
    // The in-memory blob descriptor cache is distribution's default deployment.
    '  cache:',
    '    blobdescriptor: inmemory',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    ...(options.htpasswd ? ['auth:', '  htpasswd:', '    realm: regmeta-test', `    path: ${options.htpasswd}`] : []),
    '',
  ].join('\n');
  writeFileSync(join(dataDir, 'config.yml'), config);
  const child = spawn(DISTRIBUTION_BIN, ['serve', join(dataDir, 'config.yml')], { cwd: dataDir, stdio: ['ignore', 'pipe', 'pipe'] });
  const { peer, output, exited } = track('distribution', child, dataDir);
  const started = peer(`127.0.0.1:${port}`);
  await waitUntilUp(started.url, exited, output).catch(async (error) => {
    await started.stop();
    throw error;
  });
  return started;
}
