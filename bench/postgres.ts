// A real PostgreSQL server for the tests and the benches, started by the
// process itself: initdb into a temporary directory and pg_ctl on a free
// loopback port, stopped (and the directory removed) at the end. Here in
// bench/ because benches must not import test/ while tests may import bench/
// (test/store/postgres/server.ts re-exports it). Debian's postgresql package provides the
// binaries (/usr/lib/postgresql/<version>/bin, newest version found); .ci/run
// installs it when missing. PostgreSQL refuses to run as root, so as root
// (as CI runs) the server runs as the `postgres` user the package creates.

import { execFile, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import postgres from 'postgres';

/** A running server: its superuser URL, new empty databases on demand, and its end. */
export interface PostgresServer {
  /** The URL of the server's `postgres` database, as its superuser. */
  url: string;
  /** Creates a new empty database and returns its URL. */
  createDatabase(): Promise<string>;
  /** The server's major version, as Debian's directory names it. */
  version: string;
  /** The postmaster's process id (its backends are its children); a restart changes it. */
  readonly pid: number;
  /**
   * SIGKILLs the postmaster, as a crash or the OOM killer would: its
   * connections drop, and its backends exit once they notice.
   */
  kill(): void;
  /**
   * Starts the server again, on the same port and data, after kill(): crash
   * recovery runs first. Resolves once it takes connections.
   * @throws Error when it has not started within a minute.
   */
  restart(): Promise<void>;
  /**
   * Stops (SIGSTOP) or continues (SIGCONT) the postmaster and its backends:
   * a server that keeps its connections open and answers nothing, as a
   * frozen machine or a network that drops packets looks to its clients.
   */
  freeze(): void;
  thaw(): void;
  /** Stops the server and removes its directory. Stopping twice is harmless. */
  stop(): Promise<void>;
}

const SUPERUSER = 'postgres';

/** The bin directory of the newest PostgreSQL that Debian's packages installed. */
function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v)) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const bin = join(root, version, 'bin');
    if (existsSync(join(bin, 'pg_ctl'))) return bin;
  }
  throw new Error(`no PostgreSQL under ${root}: install Debian's postgresql package (.ci/run does)`);
}

/** The uid and gid to run the server as: the `postgres` user when we are root, else ourselves. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith(`${SUPERUSER}:`));
  if (line === undefined) throw new Error('running as root, and no postgres user to run PostgreSQL as (Debian\'s postgresql package creates it)');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** As run(), without blocking the event loop meanwhile; rejects with its output when it fails. */
function runAsync(bin: string, args: string[], as: { uid: number; gid: number } | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { encoding: 'utf8', uid: as?.uid, gid: as?.gid, cwd: '/' }, (error, stdout, stderr) =>
      error ? reject(new Error(`${bin} ${args.join(' ')} failed (${error.code ?? error.signal}): ${stdout}${stderr}`)) : resolve(),
    );
  });
}

/** The process `pid` and its children, from /proc. */
function withChildren(pid: number): number[] {
  const children = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      try {
        // The fields after the command's closing parenthesis: state, then the parent's pid.
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
  return [pid, ...children];
}

function signalAll(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // exited meanwhile
    }
  }
}

/** Runs a PostgreSQL binary, as the server's user; throws with its output when it fails. */
function run(bin: string, args: string[], as: { uid: number; gid: number } | undefined): void {
  const result = spawnSync(bin, args, { encoding: 'utf8', uid: as?.uid, gid: as?.gid, cwd: '/' });
  if (result.status !== 0) {
    throw new Error(`${bin} ${args.join(' ')} failed (${result.status ?? result.signal}): ${result.stdout}${result.stderr}`);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Settings for tests: speed, not durability (the data dies with the test). The default. */
export const TEST_SETTINGS: readonly string[] = [
  'fsync=off',
  'synchronous_commit=off',
  'full_page_writes=off',
  'shared_buffers=16MB',
  'max_connections=200',
  // Deadlocks are found (and retried) in a tenth of the default second.
  'deadlock_timeout=100ms',
  'log_min_messages=warning',
];

/**
 * Settings for benchmarks: as the server would be run on this machine (2
 * cores, ~23 GB, data on tmpfs or SSD) for a registry whose metadata is far
 * smaller than memory. Durability is PostgreSQL's default, which matches
 * regmeta's SQLite store as `regmeta serve` runs it (synchronous = FULL in
 * WAL mode: the log is synced at every commit, no acknowledged write lost):
 * fsync, synchronous_commit and full_page_writes stay on.
 */
export const BENCH_SETTINGS: readonly string[] = [
  // The whole working set in PostgreSQL's own cache (the usual 25%-of-RAM rule would be ~6 GB; 512 MB holds these databases many times).
  'shared_buffers=512MB',
  'effective_cache_size=4GB',
  'work_mem=16MB',
  'maintenance_work_mem=256MB',
  'wal_buffers=16MB',
  // No forced checkpoint in the middle of a run (the default 1 GB is filled by populating).
  'max_wal_size=4GB',
  'checkpoint_completion_target=0.9',
  // Storage without seeks (tmpfs here, SSD in a deployment).
  'random_page_cost=1.1',
  'effective_io_concurrency=200',
  'max_connections=200',
  'log_min_messages=warning',
];

/** How to start the server. */
export interface PostgresOptions {
  /** `name=value` settings passed with -c (default TEST_SETTINGS). */
  settings?: readonly string[];
  /** Where to make the server's directory (default /tmp as root, else the system's temporary directory). */
  parentDir?: string;
}

/**
 * Starts a PostgreSQL server of its own in a temporary directory, on a free
 * port of 127.0.0.1, with trust authentication for its superuser.
 * @throws Error when PostgreSQL is not installed or does not start.
 */
export async function startPostgres(options: PostgresOptions = {}): Promise<PostgresServer> {
  const bin = binDir();
  const as = serverUser();
  const settings = options.settings ?? TEST_SETTINGS;
  // As root, under /tmp: the postgres user must be able to reach the directory (a TMPDIR under /root it cannot).
  const dir = mkdtempSync(join(options.parentDir ?? (as ? '/tmp' : tmpdir()), 'regmeta-pg-'));
  if (as) chownSync(dir, as.uid, as.gid);
  const data = join(dir, 'data');
  run(join(bin, 'initdb'), ['-D', data, '-U', SUPERUSER, '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'], as);
  let port = 0;
  let flags = '';
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    flags = [`-p ${port}`, '-c listen_addresses=127.0.0.1', `-c unix_socket_directories=${dir}`, ...settings.map((s) => `-c ${s}`)].join(' ');
    try {
      run(join(bin, 'pg_ctl'), ['start', '-w', '-t', '60', '-D', data, '-l', join(dir, 'log'), '-o', flags], as);
      break;
    } catch (error) {
      // Another process may have taken the port between freePort and the start.
      if (attempt === 3) {
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }
  let stopped = false;
  const stopNow = () => {
    if (stopped) return;
    stopped = true;
    spawnSync(join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'immediate', '-w'], { uid: as?.uid, gid: as?.gid, cwd: '/' });
    rmSync(dir, { recursive: true, force: true });
  };
  // A test run that dies without stop() must not leave a server behind.
  process.once('exit', stopNow);
  const url = `postgres://${SUPERUSER}@127.0.0.1:${port}/postgres`;
  let databases = 0;
  const postmaster = () => Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  let pid = postmaster();
  return {
    url,
    version: basename(dirname(bin)),
    get pid() {
      return pid;
    },
    kill() {
      process.kill(pid, 'SIGKILL');
    },
    async restart() {
      // The killed server's backends hold its shared memory until they exit: until then a start fails.
      const deadline = Date.now() + 60_000;
      for (;;) {
        try {
          await runAsync(join(bin, 'pg_ctl'), ['start', '-w', '-t', '60', '-D', data, '-l', join(dir, 'log'), '-o', flags], as);
          break;
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
      pid = postmaster();
    },
    freeze() {
      signalAll(withChildren(pid), 'SIGSTOP');
    },
    thaw() {
      signalAll(withChildren(pid), 'SIGCONT');
    },
    async createDatabase() {
      const name = `regmeta_${process.pid}_${++databases}`;
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      try {
        // The name is made here of digits and letters: safe as an identifier.
        await sql.unsafe(`CREATE DATABASE ${name}`);
      } finally {
        await sql.end();
      }
      return `postgres://${SUPERUSER}@127.0.0.1:${port}/${name}`;
    },
    async stop() {
      process.removeListener('exit', stopNow);
      stopNow();
    },
  };
}

