// The server benchmark: the same HTTP workload
// against regmeta on SQLite, regmeta on PostgreSQL with one replica and with
// two (requests round-robin over both), and the CNCF distribution registry
// (Debian's docker-registry), all started here as child processes on loopback
// with filesystem storage and deletes enabled, in one run (bench/sides.ts).
// BENCH_BASELINE=<dir> adds regmeta as built in another checkout (on SQLite).
// First, its floor section (bench/keepalive.ts): a minimal keep-alive client
// against regmeta on SQLite and a bare node:http server answering the same.
//
// How it measures, and why:
// - One keep-alive connection per registry, requests one at a time: the
//   figure is the latency of one request as a client sees it, with no
//   connection setup in it.
// - Each repository with 10,000 tags is populated over HTTP, as a client
//   would: its config and layer blobs are pushed once, then 10,000 distinct
//   manifests (an annotation numbers them) are PUT by tag.
// - Samples alternate between the registries (which one goes first rotates
//   too), so machine noise hits all alike; a row is the median of its samples.
// - DELETE by digest removes a different manifest (and so its one tag) each
//   sample; the repository keeps ~10,000 tags throughout.
// - All keep their data (PostgreSQL's too) on tmpfs (/dev/shm) unless REGMETA_BENCH_DIR names
//   another directory: on a shared disk the figures would mostly measure other
//   processes' I/O, and deleting distribution's ~100,000 small files takes
//   minutes on a disk mounted with discard. All of them fsync (SQLite at
//   synchronous=FULL, PostgreSQL at its defaults), so tmpfs leaves that cost
//   out of all alike.
// - Then throughput (bench/throughput.ts): concurrent clients, where replicas
//   could show what one process cannot.
// - Then the S3 rows (bench/s3-blobs.ts): regmeta with blobs in a directory
//   and in S3, and distribution with its s3 driver, on one S3 server.
// - Then the pull rows with pull statistics on and off (bench/pull-stats.ts),
//   on SQLite and on PostgreSQL, side by side.
// - Progress goes to stderr, and only on a terminal; the table goes to stdout.

import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { blobRows } from './blobs.js';
import { expectStatus, pushBlob, sha256, target, targetCpu, type Target } from './client.js';
import { canned, startFloor, type Floor } from './floor.js';
import { keepAliveTable } from './keepalive.js';
import { formatNumber, formatRatio, markdownTable, median, progress, progressDone } from './lib.js';
import { otherVersion, stopAll } from './peers.js';
import { BASELINE, DISTRIBUTION, PG1, PG2, SQLITE, startSides, type Sides } from './sides.js';
import { pullStatsTable } from './pull-stats.js';
import { s3Rows } from './s3-blobs.js';
import { throughputTable } from './throughput.js';
import { CONFIG_BLOB, LAYER_BLOB, manifest, MANIFEST_TYPE, putManifest } from './workload.js';

// BENCH_TAGS: a smaller repository for a quick try of the bench itself (its figures are not the bench's).
const TAGS = Number(process.env.BENCH_TAGS ?? 10_000);
const POPULATE_CONCURRENCY = 4;
const BIG = 'bench/big';
const PUTS = 'bench/put';
const DATA_PARENT = process.env.REGMETA_BENCH_DIR ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
// Enough GETs, HEADs and pages that the server's CPU time over a row (10 ms ticks) is known within a few per cent.
// BENCH_SCALE multiplies them all: more samples narrow the comparison of two close versions (BENCH_BASELINE).
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
if (!(SCALE > 0 && SCALE <= 20)) throw new Error(`BENCH_SCALE must be a number in (0, 20], not ${process.env.BENCH_SCALE}`);
const SAMPLES = { put: 200, get: 2000, list: 30, page: 1000, delete: 40, blob: 200 };
for (const key of Object.keys(SAMPLES) as (keyof typeof SAMPLES)[]) SAMPLES[key] = Math.round(SAMPLES[key] * SCALE);
const WARMUP = 1000;
/** BENCH_ONLY=floor, metadata, throughput, blobs, s3 or pulls (or several, comma-separated) runs those parts of the bench. */
const ONLY = (process.env.BENCH_ONLY ?? 'floor,metadata,throughput,blobs,s3,pulls').split(',');

const tagName = (i: number) => `t${String(i).padStart(5, '0')}`;
/** The digest of bench/big's manifest by tag number: the same bytes on every registry. */
const bigDigests = Array.from({ length: TAGS }, (_, i) => sha256(manifest(`big ${i}`)));
const layer = LAYER_BLOB;
/** A small blob of its own per sample (the same bytes on every registry): each upload links a new blob. */
const smallBlob = (i: number) => Buffer.concat([Buffer.from(`blob ${i}\n`), layer.subarray(0, 1024)]);

async function populate(t: Target): Promise<void> {
  for (const repo of [BIG, PUTS]) {
    await pushBlob(t, repo, CONFIG_BLOB);
    await pushBlob(t, repo, layer);
  }
  let next = 0;
  const worker = async () => {
    while (next < TAGS) {
      const i = next++;
      await putManifest(t, BIG, tagName(i), manifest(`big ${i}`));
      if (i % 250 === 0) progress(`populating ${BIG}: ${t.name} at ${i}/${TAGS} tags`);
    }
  };
  // Separate connections so that the workers really overlap.
  await Promise.all(Array.from({ length: POPULATE_CONCURRENCY }, worker));
}

interface Row {
  label: string;
  samples: number;
  /** The request of sample `i`, when the floor can answer it too (a GET or HEAD whose answer is captured from ours). */
  floor?: (i: number) => { method: string; path: string; headers?: Record<string, string> };
  /** Runs sample `i` against `t`. */
  run: (t: Target, i: number) => Promise<void>;
}

interface Measured {
  times: number[];
  /** CPU µs per sample of the target's own processes, and of the database server's backends serving it. */
  cpu: { server: number; database: number };
}

/**
 * Runs every sample on each target in turn, the order rotating so that each
 * goes first as often. @returns each target's times (ms) and the CPU time
 * its processes spent over the row per sample (µs; NaN without a pid).
 */
async function measure(targets: Target[], row: Row): Promise<Measured[]> {
  if (row.floor) {
    // Unmeasured rounds first: V8 compiles a server's hot path on background
    // threads during its first few thousand requests, and that CPU time would
    // land on the first row measured (the floor's, whose process is fresh).
    for (let i = 0; i < Math.min(row.samples, WARMUP); i++) for (const t of targets) await row.run(t, i);
  }
  const times = targets.map(() => [] as number[]);
  const before = targets.map(targetCpu);
  for (let i = 0; i < row.samples; i++) {
    progress(`${row.label}: ${i + 1}/${row.samples}`);
    for (let k = 0; k < targets.length; k++) {
      const t = (i + k) % targets.length;
      const start = performance.now();
      await row.run(targets[t], i);
      times[t].push(performance.now() - start);
    }
  }
  return targets.map((t, k) => {
    const after = targetCpu(t);
    const perSample = (a: number, b: number) => ((a - b) * 1e6) / row.samples;
    return { times: times[k], cpu: { server: perSample(after.server, before[k].server), database: perSample(after.database, before[k].database) } };
  });
}

const ACCEPT = { Accept: MANIFEST_TYPE };
const spread = (i: number) => (i * 7919) % TAGS;
const byTag = (i: number) => `/v2/${BIG}/manifests/${tagName(spread(i))}`;
const byDigest = (i: number) => `/v2/${BIG}/manifests/${bigDigests[spread(i)]}`;
const ok = (method: string, path: string, headers?: Record<string, string>) => async (t: Target) => void (await expectStatus(t, 200, method, path, headers));

function rows(): Row[] {
  const middle = tagName(TAGS / 2);
  const page = `/v2/${BIG}/tags/list?n=100&last=${middle}`;
  const blobHead = `/v2/${BIG}/blobs/${sha256(layer)}`;
  return [
    { label: 'manifest PUT by tag', samples: SAMPLES.put, run: (t, i) => putManifest(t, PUTS, `p${i}`, manifest(`put ${i}`)) },
    {
      label: 'manifest GET by tag',
      samples: SAMPLES.get,
      // Spread over the repository, the same tag on every side.
      floor: (i) => ({ method: 'GET', path: byTag(i), headers: ACCEPT }),
      run: (t, i) => ok('GET', byTag(i), ACCEPT)(t),
    },
    {
      label: 'manifest HEAD by tag',
      samples: SAMPLES.get,
      floor: (i) => ({ method: 'HEAD', path: byTag(i), headers: ACCEPT }),
      run: (t, i) => ok('HEAD', byTag(i), ACCEPT)(t),
    },
    {
      label: 'manifest GET by digest',
      samples: SAMPLES.get,
      floor: (i) => ({ method: 'GET', path: byDigest(i), headers: ACCEPT }),
      run: (t, i) => ok('GET', byDigest(i), ACCEPT)(t),
    },
    { label: `tag list, ${TAGS} tags (full)`, samples: SAMPLES.list, run: ok('GET', `/v2/${BIG}/tags/list`) },
    { label: 'tag list, n=100 from the middle', samples: SAMPLES.page, floor: () => ({ method: 'GET', path: page }), run: ok('GET', page) },
    { label: 'catalog', samples: SAMPLES.page, floor: () => ({ method: 'GET', path: '/v2/_catalog' }), run: ok('GET', '/v2/_catalog') },
    { label: 'blob HEAD', samples: SAMPLES.get, floor: () => ({ method: 'HEAD', path: blobHead }), run: ok('HEAD', blobHead) },
    { label: 'blob upload (POST, PUT) of 1 KiB', samples: SAMPLES.blob, run: async (t, i) => void (await pushBlob(t, PUTS, smallBlob(i))) },
    {
      label: `manifest DELETE by digest, ${TAGS} tags`,
      samples: SAMPLES.delete,
      // Tags from the top down, clear of the page listed above.
      run: async (t, i) => void (await expectStatus(t, 202, 'DELETE', `/v2/${BIG}/manifests/${bigDigests[TAGS - 1 - i]}`)),
    },
  ];
}

/**
 * What the floor is to answer: SQLite's answers to every request the floor
 * rows send. Every other side gets the same requests, so that all enter the
 * rows equally warm: an A/A run showed the side that alone answered them ~5%
 * off the other on some rows.
 */
async function captureFloor(sides: Sides, all: Row[]): Promise<Record<string, ReturnType<typeof canned>>> {
  const answers: Record<string, ReturnType<typeof canned>> = {};
  for (const row of all) {
    for (let i = 0; i < row.samples && row.floor; i++) {
      const { method, path, headers } = row.floor(i);
      if (`${method} ${path}` in answers) continue;
      answers[`${method} ${path}`] = canned(await expectStatus(sides.sqlite, 200, method, path, headers));
      for (const t of sides.targets) if (t !== sides.sqlite) await expectStatus(t, 200, method, path, headers);
    }
  }
  return answers;
}

/** The ratios the table shows, as [numerator, denominator] column names, those present. */
function ratioPairs(names: string[]): [string, string][] {
  const pairs: [string, string][] = [
    [SQLITE, DISTRIBUTION],
    [PG1, DISTRIBUTION],
    [PG2, DISTRIBUTION],
    [PG1, SQLITE],
    [PG2, SQLITE],
    [process.env.BENCH_BASELINE_ON === 'postgres' ? PG1 : SQLITE, BASELINE],
  ];
  return pairs.filter(([a, b]) => names.includes(a) && names.includes(b));
}

/** Both tables of the metadata rows: medians with their ratios, and CPU per sample. */
function tables(names: string[], withDatabase: boolean[], measured: { row: Row; sides: Measured[]; floor?: Measured }[]): string[] {
  const pairs = ratioPairs(names);
  const latency = measured.map(({ row, sides, floor }) => {
    const ms = new Map(names.map((name, k) => [name, median(sides[k].times)]));
    const f = floor ? median(floor.times) : NaN;
    return [
      row.label,
      String(row.samples),
      ...names.map((name) => formatNumber(ms.get(name)!)),
      ...pairs.map(([a, b]) => formatRatio(ms.get(a)! / ms.get(b)!)),
      floor ? formatNumber(f) : '—',
      floor ? formatRatio(ms.get(SQLITE)! / f) : '—',
    ];
  });
  const cpu = measured.map(({ row, sides, floor }) => [
    row.label,
    ...names.flatMap((name, k) => {
      const { server, database } = sides[k].cpu;
      return withDatabase[k] ? [formatNumber(server), formatNumber(database), formatNumber(server + database)] : [formatNumber(server)];
    }),
    floor ? formatNumber(floor.cpu.server) : '—',
  ]);
  const cpuHeaders = names.flatMap((name, k) => (withDatabase[k] ? [`${name} regmeta`, `${name} postgres`, `${name} total`] : [name]));
  return [
    markdownTable(['operation (median ms)', 'samples', ...names, ...pairs.map(([a, b]) => `${a} / ${b}`), 'node:http floor', `${SQLITE} / floor`], latency),
    markdownTable(['operation (CPU µs per request)', ...cpuHeaders, 'floor'], cpu),
  ];
}

/** The metadata rows: populates every registry, starts the floor, measures. */
async function metadataTable(sides: Sides): Promise<string> {
  const targets = sides.targets;
  const names = targets.map((t) => t.name);
  // Populated side by side: nothing is measured yet, and it shortens the wait.
  const populateSeconds = await Promise.all(
    targets.map(async (t) => {
      const start = Date.now();
      await populate(t);
      return ((Date.now() - start) / 1000).toFixed(0);
    }),
  );
  for (const t of targets) {
    const listed = await expectStatus(t, 200, 'GET', `/v2/${BIG}/tags/list`);
    const tags = (JSON.parse(listed.body.toString()) as { tags: string[] }).tags;
    if (tags.length !== TAGS) throw new Error(`${t.name}: ${BIG} lists ${tags.length} tags, not ${TAGS}`);
  }
  const all = rows();
  const page = all.find((row) => row.label.startsWith('tag list, n='))!.floor!(0).path;
  // What the paginated row means for each registry: distribution 2.8 ignores n and last.
  const pageSizes = await Promise.all(targets.map(async (t) => (JSON.parse((await expectStatus(t, 200, 'GET', page)).body.toString()) as { tags: string[] }).tags.length));
  let floor: Floor | undefined;
  try {
    floor = await startFloor(await captureFloor(sides, all));
    const floorTarget = target('floor', floor.url, 1, floor.pid);
    const measured: { row: Row; sides: Measured[]; floor?: Measured }[] = [];
    for (const row of all) {
      const results = await measure(row.floor ? [...targets, floorTarget] : targets, row);
      measured.push({ row, sides: results.slice(0, targets.length), floor: results[targets.length] });
    }
    floorTarget.agent.destroy();
    progressDone();
    const [latency, cpu] = tables(names, targets.map((t) => t.cpu !== undefined), measured);
    const each = (values: (string | number)[]) => names.map((name, k) => `${values[k]} (${name})`).join(', ');
    return [
      latency,
      '',
      cpu,
      '',
      `Loopback, one keep-alive connection per registry (per replica for ${PG2}, requests round-robin), samples interleaved, data in ${DATA_PARENT}; ` +
        `${otherVersion(DISTRIBUTION)}${sides.baseline ? `; ${otherVersion(BASELINE)} on ${process.env.BENCH_BASELINE_ON === 'postgres' ? 'PostgreSQL' : 'SQLite'}` : ''}. ${sides.postgresNote}. ` +
        `The floor is a bare node:http server answering the bytes and headers ${SQLITE} answered. CPU µs: user+system time per request over the row ` +
        `(from /proc, 10 ms ticks) of the registry's processes (both replicas for ${PG2}), and apart that of the PostgreSQL backends serving its database. ` +
        `The n=100 page answered ${each(pageSizes)} tags. ` +
        `Populating ${TAGS} tags (${POPULATE_CONCURRENCY} connections each, all at once) took ${each(populateSeconds.map((s) => `${s} s`))}.`,
    ].join('\n');
  } finally {
    await floor?.stop();
  }
}

async function main(): Promise<void> {
  const began = Date.now();
  progress('starting registries');
  const baselineOn = process.env.BENCH_BASELINE_ON ?? 'sqlite';
  if (baselineOn !== 'sqlite' && baselineOn !== 'postgres') throw new Error(`BENCH_BASELINE_ON must be sqlite or postgres, not ${baselineOn}`);
  // Before the other sides start: its servers run alone, on a repository of their own.
  if (ONLY.includes('floor')) {
    const baseline = baselineOn === 'sqlite' ? process.env.BENCH_BASELINE : undefined;
    console.log(`${await keepAliveTable({ parentDir: DATA_PARENT, baseline })}\n`);
  }
  if (ONLY.some((part) => part === 'metadata' || part === 'throughput' || part === 'blobs')) await sidesParts();
  // On registries of their own, after the others have stopped.
  if (ONLY.includes('s3')) console.log(`${await s3Rows({ parentDir: DATA_PARENT })}\n`);
  if (ONLY.includes('pulls')) console.log(`${await pullStatsTable({ parentDir: DATA_PARENT, samples: SAMPLES.get })}\n`);
  console.log(`The run took ${Math.round((Date.now() - began) / 1000)} s.`);
}

/** The parts measured on the sides (bench/sides.ts): metadata, throughput, blobs. */
async function sidesParts(): Promise<void> {
  const baselineOn = process.env.BENCH_BASELINE_ON === 'postgres' ? 'postgres' : 'sqlite';
  const sides = await startSides({ parentDir: DATA_PARENT, sockets: POPULATE_CONCURRENCY * 2, baseline: process.env.BENCH_BASELINE, baselineOn });
  try {
    if (ONLY.includes('metadata')) console.log(`${await metadataTable(sides)}\n`);
    if (ONLY.includes('throughput')) console.log(`${await throughputTable(sides.targets)}\n`);
    const other = sides.baseline ?? sides.distribution;
    if (ONLY.includes('blobs')) console.log(`${await blobRows({ ours: sides.sqlite, other, tmpfs: DATA_PARENT })}\n`);
  } finally {
    await sides.stop();
    await stopAll();
  }
}

main().catch(async (error) => {
  progressDone();
  console.error(error instanceof Error ? error.stack : error);
  await stopAll();
  process.exitCode = 1;
});
