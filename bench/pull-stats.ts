// The pull rows with pull statistics on and off, side by side in one run:
// regmeta on SQLite and on PostgreSQL (one replica), each twice, once with
// `--no-pulls-stats`. Statistics on count each pull in memory and write a
// batch every 5 s (the default): the rows show what that costs a pull, the
// batches written while the rows ran included.

import { backendsCpu } from './sides.js';
import { expectStatus, processCpu, pushBlob, sha256, target, targetCpu, type Target } from './client.js';
import { formatNumber, formatRatio, markdownTable, median, progress, progressDone } from './lib.js';
import { startOurs, type Peer } from './peers.js';
import { BENCH_SETTINGS, startPostgres } from './postgres.js';
import { CONFIG_BLOB, LAYER_BLOB, manifest, MANIFEST_TYPE, putManifest } from './workload.js';

const REPO = 'bench/pulled';
const TAGS = 1_000;
const WARMUP = 1_000;
const tagName = (i: number) => `t${String(i).padStart(4, '0')}`;
const digests = Array.from({ length: TAGS }, (_, i) => sha256(manifest(`pulled ${i}`)));
const spread = (i: number) => (i * 7919) % TAGS;
const ACCEPT = { Accept: MANIFEST_TYPE };

interface PullRow {
  label: string;
  method: string;
  path: (i: number) => string;
}

const ROWS: PullRow[] = [
  { label: 'manifest GET by tag', method: 'GET', path: (i) => `/v2/${REPO}/manifests/${tagName(spread(i))}` },
  { label: 'manifest HEAD by tag', method: 'HEAD', path: (i) => `/v2/${REPO}/manifests/${tagName(spread(i))}` },
  { label: 'manifest GET by digest', method: 'GET', path: (i) => `/v2/${REPO}/manifests/${digests[spread(i)]}` },
];

async function populate(t: Target): Promise<void> {
  await pushBlob(t, REPO, CONFIG_BLOB);
  await pushBlob(t, REPO, LAYER_BLOB);
  for (let i = 0; i < TAGS; i++) await putManifest(t, REPO, tagName(i), manifest(`pulled ${i}`));
}

/** Each target's times (ms) and CPU µs per sample (its process, and its database's backends) over `samples` of `row`, interleaved, the order rotating. */
async function measure(targets: Target[], row: PullRow, samples: number): Promise<{ ms: number; cpu: number }[]> {
  for (let i = 0; i < WARMUP; i++) for (const t of targets) await expectStatus(t, 200, row.method, row.path(i), ACCEPT);
  const times = targets.map(() => [] as number[]);
  const before = targets.map(targetCpu);
  for (let i = 0; i < samples; i++) {
    progress(`pull statistics, ${row.label}: ${i + 1}/${samples}`);
    for (let k = 0; k < targets.length; k++) {
      const t = (i + k) % targets.length;
      const start = performance.now();
      await expectStatus(targets[t], 200, row.method, row.path(i), ACCEPT);
      times[t].push(performance.now() - start);
    }
  }
  return targets.map((t, k) => {
    const after = targetCpu(t);
    return { ms: median(times[k]), cpu: ((after.server + after.database - before[k].server - before[k].database) * 1e6) / samples };
  });
}

/** The batches a server wrote so far, from its metrics. */
async function batchesWritten(t: Target): Promise<number> {
  const text = (await expectStatus(t, 200, 'GET', '/metrics')).body.toString();
  const line = text.split('\n').find((l) => l.startsWith('regmeta_pull_flushes_total{result="written"}'));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

/** The pull rows, statistics on and off, on SQLite and on PostgreSQL: the table and its note. */
export async function pullStatsTable(options: { parentDir: string; samples: number }): Promise<string> {
  const peers: Peer[] = [];
  const pg = await startPostgres({ settings: BENCH_SETTINGS, parentDir: options.parentDir });
  try {
    const start = async (name: string, args: string[], database?: string) => {
      const peer = await startOurs({ parentDir: options.parentDir, args: database === undefined ? args : [...args, '--database', database] });
      peers.push(peer);
      const t = target(name, peer.url, 1, peer.pid);
      if (database !== undefined) {
        const db = new URL(database).pathname.slice(1);
        t.cpu = () => ({ server: processCpu(peer.pid), database: backendsCpu(pg.pid, db) });
      }
      return t;
    };
    const off = ['--no-pulls-stats'];
    const targets = [
      await start('SQLite off', off),
      await start('SQLite on', []),
      await start('PG ×1 off', off, await pg.createDatabase()),
      await start('PG ×1 on', [], await pg.createDatabase()),
    ];
    await Promise.all(targets.map(populate));
    const rows: string[][] = [];
    for (const row of ROWS) {
      const [sqliteOff, sqliteOn, pgOff, pgOn] = await measure(targets, row, options.samples);
      rows.push([
        row.label,
        String(options.samples),
        ...[sqliteOff, sqliteOn].map((m) => formatNumber(m.ms)),
        formatRatio(sqliteOn.ms / sqliteOff.ms),
        ...[pgOff, pgOn].map((m) => formatNumber(m.ms)),
        formatRatio(pgOn.ms / pgOff.ms),
        ...[sqliteOff, sqliteOn, pgOff, pgOn].map((m) => formatNumber(m.cpu)),
      ]);
    }
    progressDone();
    const batches = await Promise.all([targets[1], targets[3]].map(batchesWritten));
    for (const t of targets) t.agent.destroy();
    const table = markdownTable(
      ['pull (median ms)', 'samples', 'SQLite off', 'SQLite on', 'on / off', 'PG ×1 off', 'PG ×1 on', 'on / off', 'CPU µs: SQLite off', 'SQLite on', 'PG off', 'PG on'],
      rows,
    );
    return [
      table,
      '',
      `Pull statistics off (--no-pulls-stats) and on (the default: counted in memory, a batch written every 5 s), ${TAGS} tags in ${REPO}, ` +
        `samples interleaved over the four servers, one keep-alive connection each, after ${WARMUP} unmeasured rounds per row. ` +
        `CPU µs: user+system per pull of the regmeta process and, on PostgreSQL, of its backends. ` +
        `Batches written while the rows ran: ${batches[0]} (SQLite), ${batches[1]} (PostgreSQL). PostgreSQL ${pg.version}, data in ${options.parentDir}.`,
    ].join('\n');
  } finally {
    await Promise.all(peers.map((p) => p.stop()));
    await pg.stop();
  }
}
