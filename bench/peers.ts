// Starts registries as real child processes on loopback for tests and the
// server bench: our server (the compiled `regmeta serve`) and the CNCF
// distribution registry from Debian's docker-registry package. Every peer is
// tracked so that stopAll() (and, as a last resort, process exit) kills it.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DISTRIBUTION_BIN = '/usr/bin/docker-registry';

/** A registry running as a child process. */
export interface Peer {
  /** 'ours' or 'distribution'. */
  kind: string;
  /** host:port, as registry clients name it (127.0.0.1:<port>). */
  host: string;
  /** http://host:port */
  url: string;
  /** The temporary directory holding everything of the peer; removed by stop(). */
  dir: string;
  /** Where the registry keeps its data (inside dir). */
  dataDir: string;
  pid: number;
  /** The tail (up to 1 MiB) of the peer's stdout and stderr, for diagnostics. */
  output(): string;
  /** Kills the process (SIGTERM, then SIGKILL after 5 s), waits for it, removes dir. */
  stop(): Promise<void>;
}

export interface PeerOptions {
  /** An htpasswd file (bcrypt) to require basic auth with. */
  htpasswd?: string;
  /** Extra command-line arguments (ours only). */
  args?: string[];
  /** Where to make the peer's temporary directory (default: os.tmpdir()). */
  parentDir?: string;
  /** A data directory prepared beforehand (ours only), used instead of a fresh one; stop() leaves it. */
  dataDir?: string;
  /** The checkout of regmeta to run (ours only; default this one): built, with its own dist/. */
  root?: string;
  /** Environment variables added to this process's for the peer (ours only), e.g. S3 credentials. */
  env?: Record<string, string>;
}

/** Distribution's s3 storage driver on an S3-compatible server (credentials in the driver's config). */
export interface DistributionS3 {
  /** http://host:port of the S3 server. */
  endpoint: string;
  bucket: string;
  accessKey: string;
  secretKey: string;
  /** Its root inside the bucket; two registries given the same one share their data. */
  rootDirectory: string;
  /** Whether a blob GET answers 307 to a pre-signed URL (distribution's default with s3) or streams the blob. */
  redirect: boolean;
}

/** Distribution's `auth: token:` section: it accepts bearer tokens (JWTs) issued by `issuer` for `service`, signed by a key certified by `rootCertBundle`. */
export interface DistributionToken {
  /** The token service's URL, sent to clients in the Bearer challenge. */
  realm: string;
  issuer: string;
  service: string;
  /** A PEM file of the certificates a token's signing chain (its `x5c` header) must lead to. */
  rootCertBundle: string;
}

/** Distribution's `proxy:` section: a pull-through cache of `remoteurl`, with credentials for it. */
export interface DistributionProxy {
  remoteurl: string;
  username?: string;
  password?: string;
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

/** The last `limit` bytes of a file, '' when it is missing. */
function tail(file: string, limit = 1 << 20): string {
  try {
    const size = statSync(file).size;
    const fd = openSync(file, 'r');
    try {
      const length = Math.min(size, limit);
      const buffer = Buffer.alloc(length);
      readSync(fd, buffer, 0, length, size - length);
      return buffer.toString();
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

interface Launched {
  child: ChildProcess;
  output: () => string;
  exited: Promise<void>;
  peer: (host: string) => Peer;
}

/**
 * Spawns `command` with stdout and stderr going to a file in `dir`, not to a
 * pipe: a chatty request log then costs the parent (a test or the bench,
 * which is also the client being timed) nothing.
 */
function launch(kind: string, dir: string, dataDir: string, command: string, args: string[], cwd = dir, env: NodeJS.ProcessEnv = process.env): Launched {
  const logFile = join(dir, 'output.log');
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, { cwd, env, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  let spawnError = '';
  const output = () => tail(logFile) + spawnError;
  const exited = new Promise<void>((done) => {
    child.once('exit', () => done());
    // A spawn failure (ENOENT) emits 'error' and perhaps no 'exit'.
    child.once('error', (error) => {
      spawnError = `spawn failed: ${error.message}\n`;
      done();
    });
  });
  let gone = false;
  void exited.then(() => (gone = true));
  const kill = async () => {
    if (!gone) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const peer = (host: string): Peer => {
    const self: Peer = {
      kind,
      host,
      url: `http://${host}`,
      dir,
      dataDir,
      pid: child.pid!,
      output,
      stop: async () => {
        live.delete(self);
        await kill();
      },
    };
    live.add(self);
    return self;
  };
  return { child, output, exited, peer };
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
 * Starts our server (`regmeta serve`, the compiled bin, as users run it) on
 * 127.0.0.1 port 0 with a fresh data directory and waits until it answers.
 * @throws when the build is missing, the server exits early, or prints no address.
 */
export async function startOurs(options: PeerOptions = {}): Promise<Peer> {
  const root = options.root ?? ROOT;
  const entry = join(root, 'bin', 'regmeta.js');
  if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) throw new Error(`${root}/dist is not built: run npm run build there`);
  const dir = mkdtempSync(join(options.parentDir ?? tmpdir(), 'regmeta-ours-'));
  const dataDir = options.dataDir ?? join(dir, 'data');
  const args = [entry, 'serve', '--listen', '127.0.0.1:0', '--data', dataDir];
  if (options.htpasswd) args.push('--htpasswd', options.htpasswd);
  args.push(...(options.args ?? []));
  // node itself rather than npx: one process, so killing it leaves nothing behind.
  const launched = launch('ours', dir, dataDir, process.execPath, args, root, { ...process.env, ...options.env });
  let exited = false;
  void launched.exited.then(() => (exited = true));
  let host: string | undefined;
  const deadline = Date.now() + 30_000;
  while (!host) {
    const match = /127\.0\.0\.1:([1-9]\d*)/.exec(launched.output());
    if (match) host = `127.0.0.1:${match[1]}`;
    else if (exited || Date.now() > deadline) {
      const why = exited ? `exited (code ${launched.child.exitCode}, signal ${launched.child.signalCode})` : 'printed no address within 30 s';
      const output = launched.output();
      await launched.peer('').stop();
      throw new Error(`our server ${why}:\n${output}`);
    } else await new Promise((r) => setTimeout(r, 20));
  }
  const started = launched.peer(host);
  await waitUntilUp(started.url, launched.exited, launched.output).catch(async (error) => {
    await started.stop();
    throw error;
  });
  return started;
}

/**
 * What the server bench compares ours with: CNCF distribution, or, with
 * BENCH_BASELINE=<dir>, our server as built in another checkout of regmeta
 * (`dir`, with its own dist/ and node_modules), so that a change is measured
 * against the code before it side by side, samples interleaved, in one run.
 */
export const OTHER: { name: string; root?: string } =
  process.env.BENCH_BASELINE ? { name: 'baseline', root: resolve(process.env.BENCH_BASELINE) } : { name: 'distribution' };

/** Starts OTHER. @throws what startOurs or startDistribution throw. */
export function startOther(options: Pick<PeerOptions, 'parentDir'> = {}): Promise<Peer> {
  return OTHER.root === undefined ? startDistribution(options) : startOurs({ ...options, root: OTHER.root });
}

/** A version for the bench's notes: distribution's, or the baseline checkout's commit (default: OTHER's). */
export function otherVersion(kind: 'distribution' | 'baseline' = OTHER.root === undefined ? 'distribution' : 'baseline'): string {
  if (kind === 'distribution') {
    const run = spawnSync(DISTRIBUTION_BIN, ['--version'], { encoding: 'utf8' });
    return `distribution ${run.stdout.trim().split(' ').pop() || 'unknown'}`;
  }
  const root = resolve(process.env.BENCH_BASELINE ?? '');
  const run = spawnSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  return `baseline: regmeta in ${root}${run.status === 0 ? ` at ${run.stdout.trim()}` : ''}`;
}

/** The storage section of distribution's config: a directory in `dataDir`, or the s3 driver. */
function distributionStorage(dataDir: string, s3?: DistributionS3): string[] {
  if (s3 === undefined) return ['  filesystem:', `    rootdirectory: ${dataDir}`];
  return [
    '  s3:',
    // A regionendpoint makes distribution 2.8 address the bucket by path, as s3rver needs.
    `    regionendpoint: ${s3.endpoint}`,
    `    bucket: ${s3.bucket}`,
    `    accesskey: ${s3.accessKey}`,
    `    secretkey: ${s3.secretKey}`,
    '    region: us-east-1',
    `    secure: ${s3.endpoint.startsWith('https:')}`,
    '    v4auth: true',
    `    rootdirectory: ${s3.rootDirectory}`,
    '  redirect:',
    `    disable: ${!s3.redirect}`,
  ];
}

/** The auth and proxy sections of distribution's config: basic auth from an htpasswd file or bearer tokens, and pull-through mode. */
function distributionAccess(options: DistributionOptions): string[] {
  const lines: string[] = [];
  if (options.htpasswd && options.token) throw new Error('startDistribution: htpasswd or token, not both');
  if (options.htpasswd) lines.push('auth:', '  htpasswd:', '    realm: regmeta-test', `    path: ${options.htpasswd}`);
  if (options.token) {
    const { realm, issuer, service, rootCertBundle } = options.token;
    lines.push('auth:', '  token:', `    realm: ${realm}`, `    service: ${service}`, `    issuer: ${issuer}`, `    rootcertbundle: ${rootCertBundle}`);
  }
  if (options.proxy) {
    const { remoteurl, username, password } = options.proxy;
    lines.push('proxy:', `  remoteurl: ${remoteurl}`);
    // JSON strings are YAML strings: a password with ':' or '#' stays whole.
    if (username !== undefined) lines.push(`  username: ${JSON.stringify(username)}`, `  password: ${JSON.stringify(password ?? '')}`);
  }
  return lines;
}

/** What startDistribution takes. */
export type DistributionOptions = Pick<PeerOptions, 'htpasswd' | 'parentDir'> & {
  s3?: DistributionS3;
  token?: DistributionToken;
  proxy?: DistributionProxy;
};

/**
 * Starts Debian's docker-registry (CNCF distribution) on a free loopback port
 * with filesystem storage in a fresh temporary directory (or its s3 driver,
 * `options.s3`) and deletes enabled; with basic auth from `options.htpasswd`
 * or bearer tokens from `options.token` when given, and as a pull-through
 * cache of `options.proxy.remoteurl` when given.
 * @throws when the binary is missing or the registry does not come up.
 */
export async function startDistribution(options: DistributionOptions = {}): Promise<Peer> {
  if (!existsSync(DISTRIBUTION_BIN)) throw new Error(`${DISTRIBUTION_BIN} is missing: apt-get install docker-registry`);
  const dir = mkdtempSync(join(options.parentDir ?? tmpdir(), 'regmeta-distribution-'));
  const dataDir = join(dir, 'storage');
  const port = await freePort();
  const config = [
    'version: 0.1',
    // Logging stays at distribution's defaults (info, access log on): ours logs every request too.
    'storage:',
    ...distributionStorage(dataDir, options.s3),
    '  delete:',
    '    enabled: true',
    // The in-memory blob descriptor cache is distribution's default deployment.
    '  cache:',
    '    blobdescriptor: inmemory',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    ...distributionAccess(options),
    '',
  ].join('\n');
  writeFileSync(join(dir, 'config.yml'), config);
  // With AWS_CA_BUNDLE set, the AWS SDK for Go that distribution 2.8 links panics at start
  // ("unable to load custom CA bundle, HTTPClient's transport unsupported type"): its own client has no CA to add.
  const env = { ...process.env };
  delete env.AWS_CA_BUNDLE;
  const launched = launch('distribution', dir, dataDir, DISTRIBUTION_BIN, ['serve', join(dir, 'config.yml')], dir, env);
  const started = launched.peer(`127.0.0.1:${port}`);
  await waitUntilUp(started.url, launched.exited, launched.output).catch(async (error) => {
    await started.stop();
    throw error;
  });
  return started;
}
