// The registries the server bench compares, started side by side: regmeta on
// SQLite, regmeta on PostgreSQL with one replica and with two (two serve
// processes on one database and one blob directory), CNCF distribution, and,
// with BENCH_BASELINE=<dir>, regmeta as built in another checkout: on SQLite,
// or with BENCH_BASELINE_ON=postgres on a PostgreSQL database of its own
// (to measure a change of the PostgreSQL store against the code before it).
//
// Both PostgreSQL sides use one server (bench/postgres.ts, BENCH_SETTINGS),
// a database each. A side's CPU time counts its regmeta processes and, apart,
// the PostgreSQL backends serving its database: a request's cost on
// PostgreSQL is spread over two processes.

import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { processCpu, replicated, target, type Target } from './client.js';
import { startDistribution, startOurs, type Peer } from './peers.js';
import { BENCH_SETTINGS, startPostgres, type PostgresServer } from './postgres.js';

/** The registries of one run. */
export interface Sides {
  /** In column order: sqlite, pg ×1, pg ×2, distribution, then baseline when asked for. */
  targets: Target[];
  /** regmeta on SQLite: what the floor answers are captured from. */
  sqlite: Target;
  distribution: Target;
  baseline?: Target;
  /** What the notes say about the PostgreSQL server. */
  postgresNote: string;
  stop(): Promise<void>;
}

export const SQLITE = 'SQLite';
export const PG1 = 'PG ×1';
export const PG2 = 'PG ×2';
export const DISTRIBUTION = 'distribution';
export const BASELINE = 'baseline';

/**
 * The CPU seconds used so far by the backends of `database` on the server
 * whose postmaster is `postmaster`: its children whose process title names
 * the database ("postgres: <user> <database> <address> <state>").
 */
export function backendsCpu(postmaster: number, database: string): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) !== postmaster) continue;
      const title = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split(' ');
      if (title[2] === database) total += processCpu(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

/** `n` regmeta replicas on a new database of `pg` and one shared blob directory, as one round-robin target. */
async function startReplicas(name: string, pg: PostgresServer, n: number, parentDir: string, sockets: number): Promise<{ target: Target; peers: Peer[]; dir: string }> {
  const url = await pg.createDatabase();
  const database = new URL(url).pathname.slice(1);
  const dir = mkdtempSync(join(parentDir, 'regmeta-shared-'));
  const peers: Peer[] = [];
  // One at a time: the first migrates the new database (the others would wait on its advisory lock anyway).
  for (let i = 0; i < n; i++) peers.push(await startOurs({ parentDir, dataDir: join(dir, 'data'), args: ['--database', url] }));
  const members = peers.map((peer, i) => target(`${name} #${i + 1}`, peer.url, sockets, peer.pid));
  const side = n === 1 ? { ...members[0], name } : replicated(name, members);
  side.cpu = () => ({ server: peers.reduce((sum, peer) => sum + processCpu(peer.pid), 0), database: backendsCpu(pg.pid, database) });
  return { target: side, peers, dir };
}

/** Starts every side. @throws what startOurs, startDistribution or startPostgres throw (after stopping what had started). */
export async function startSides(options: { parentDir: string; sockets: number; baseline?: string; baselineOn?: 'sqlite' | 'postgres' }): Promise<Sides> {
  const { parentDir, sockets } = options;
  const stops: (() => Promise<void> | void)[] = [];
  const stop = async () => {
    for (const fn of stops.reverse()) await fn();
  };
  try {
    const pg = await startPostgres({ settings: BENCH_SETTINGS, parentDir });
    stops.push(() => pg.stop());
    const baselineArgs = options.baselineOn === 'postgres' ? ['--database', await pg.createDatabase()] : [];
    const [sqlitePeer, distributionPeer, baselinePeer] = await Promise.all([
      startOurs({ parentDir }),
      startDistribution({ parentDir }),
      options.baseline === undefined ? undefined : startOurs({ parentDir, root: options.baseline, args: baselineArgs }),
    ]);
    for (const peer of [sqlitePeer, distributionPeer, baselinePeer]) if (peer) stops.push(() => peer.stop());
    const one = await startReplicas(PG1, pg, 1, parentDir, sockets);
    const two = await startReplicas(PG2, pg, 2, parentDir, sockets);
    for (const { peers, dir } of [one, two]) {
      stops.push(async () => {
        await Promise.all(peers.map((peer) => peer.stop()));
        rmSync(dir, { recursive: true, force: true });
      });
    }
    const sqlite = target(SQLITE, sqlitePeer.url, sockets, sqlitePeer.pid);
    const distribution = target(DISTRIBUTION, distributionPeer.url, sockets, distributionPeer.pid);
    const baseline = baselinePeer && target(BASELINE, baselinePeer.url, sockets, baselinePeer.pid);
    if (baseline && baselineArgs.length > 0) {
      const database = new URL(baselineArgs[1]).pathname.slice(1);
      baseline.cpu = () => ({ server: processCpu(baselinePeer.pid), database: backendsCpu(pg.pid, database) });
    }
    const targets = [sqlite, one.target, two.target, distribution, ...(baseline ? [baseline] : [])];
    stops.push(() => {
      for (const t of targets) for (const member of t.replicas ?? [t]) member.agent.destroy();
    });
    const postgresNote = `PostgreSQL ${pg.version} on the same machine, data in ${parentDir}, settings: ${BENCH_SETTINGS.join(', ')}; fsync, synchronous_commit and full_page_writes at their defaults (on)`;
    return { targets, sqlite, distribution, baseline, postgresNote, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
