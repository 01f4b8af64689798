// The server benchmark (issue 3, Performance): the same HTTP workload against
// our server and against the CNCF distribution registry (Debian's
// docker-registry), both started here as child processes on loopback with
// filesystem storage and deletes enabled, in one run.
//
// How it measures, and why:
// - One keep-alive connection per registry, requests one at a time: the
//   figure is the latency of one request as a client sees it, with no
//   connection setup in it.
// - Each repository with 10,000 tags is populated over HTTP, as a client
//   would: its config and layer blobs are pushed once, then 10,000 distinct
//   manifests (an annotation numbers them) are PUT by tag.
// - Samples alternate between the registries (which one goes first alternates
//   too), so machine noise hits both alike; a row is the median of its samples.
// - DELETE by digest removes a different manifest (and so its one tag) each
//   sample; the repository keeps ~10,000 tags throughout.
// - Both keep their data on tmpfs (/dev/shm) unless REGMETA_BENCH_DIR names
//   another directory: on a shared disk the figures would mostly measure other
//   processes' I/O, and deleting distribution's ~100,000 small files takes
//   minutes on a disk mounted with discard. Both registries fsync, so tmpfs
//   leaves that cost out of both alike.
// - Progress goes to stderr, and only on a terminal; the table goes to stdout.

import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { blobRows } from './blobs.js';
import { expectStatus, processCpu, pushBlob, sha256, target, type Target } from './client.js';
import { canned, startFloor, type Floor } from './floor.js';
import { OTHER, otherVersion, startOther, startOurs, stopAll } from './peers.js';
import { formatNumber, formatRatio, markdownTable, median, progress, progressDone } from './lib.js';

const TAGS = 10_000;
const POPULATE_CONCURRENCY = 4;
const BIG = 'bench/big';
const PUTS = 'bench/put';
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';
const DATA_PARENT = process.env.REGMETA_BENCH_DIR ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
// Enough GETs, HEADs and pages that the server's CPU time over a row (10 ms ticks) is known within a few per cent.
// BENCH_SCALE multiplies them all: more samples narrow the comparison of two close versions (BENCH_BASELINE).
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
if (!(SCALE > 0 && SCALE <= 20)) throw new Error(`BENCH_SCALE must be a number in (0, 20], not ${process.env.BENCH_SCALE}`);
const SAMPLES = { put: 200, get: 2000, list: 30, page: 1000, delete: 40 };
for (const key of Object.keys(SAMPLES) as (keyof typeof SAMPLES)[]) SAMPLES[key] = Math.round(SAMPLES[key] * SCALE);
const WARMUP = 1000;
/** BENCH_ONLY=metadata or blobs runs one half of the bench. */
const ONLY = process.env.BENCH_ONLY ?? '';

/** Manifest digests of bench/big by tag number, per target, for DELETE. */
const digests = new Map<Target, string[]>();

// The same blobs on both registries, so both store the same bytes.
const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(Buffer.alloc(0))] } }));
const layer = randomBytes(2048);

function manifest(label: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
      annotations: { 'bench.label': label },
    }),
  );
}

const tagName = (i: number) => `t${String(i).padStart(5, '0')}`;

async function putManifest(t: Target, repo: string, tag: string, bytes: Buffer): Promise<void> {
  await expectStatus(t, 201, 'PUT', `/v2/${repo}/manifests/${tag}`, { 'Content-Type': MANIFEST_TYPE }, bytes);
}

async function populate(t: Target): Promise<void> {
  for (const repo of [BIG, PUTS]) {
    await pushBlob(t, repo, config);
    await pushBlob(t, repo, layer);
  }
  const list: string[] = [];
  digests.set(t, list);
  let next = 0;
  const worker = async () => {
    while (next < TAGS) {
      const i = next++;
      const bytes = manifest(`big ${i}`);
      list[i] = sha256(bytes);
      await putManifest(t, BIG, tagName(i), bytes);
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

/**
 * Runs every sample on each target in turn, the order rotating so that each
 * goes first as often. @returns each target's times (ms) and the CPU time
 * its server spent over the row per sample (µs; NaN without a pid).
 */
async function measure(targets: Target[], row: Row): Promise<{ times: number[]; cpu: number }[]> {
  if (row.floor) {
    // Unmeasured rounds first: V8 compiles a server's hot path on background
    // threads during its first few thousand requests, and that CPU time would
    // land on the first row measured (the floor's, whose process is fresh).
    for (let i = 0; i < Math.min(row.samples, WARMUP); i++) for (const t of targets) await row.run(t, i);
  }
  const times = targets.map(() => [] as number[]);
  const cpuBefore = targets.map((t) => (t.pid === undefined ? NaN : processCpu(t.pid)));
  for (let i = 0; i < row.samples; i++) {
    progress(`${row.label}: ${i + 1}/${row.samples}`);
    for (let k = 0; k < targets.length; k++) {
      const t = (i + k) % targets.length;
      const start = performance.now();
      await row.run(targets[t], i);
      times[t].push(performance.now() - start);
    }
  }
  return targets.map((t, k) => ({ times: times[k], cpu: t.pid === undefined ? NaN : ((processCpu(t.pid) - cpuBefore[k]) * 1e6) / row.samples }));
}

const ACCEPT = { Accept: MANIFEST_TYPE };
const byTag = (i: number) => `/v2/${BIG}/manifests/${tagName((i * 7919) % TAGS)}`;

function rows(): Row[] {
  const middle = tagName(TAGS / 2);
  const page = `/v2/${BIG}/tags/list?n=100&last=${middle}`;
  return [
    { label: 'manifest PUT by tag', samples: SAMPLES.put, run: (t, i) => putManifest(t, PUTS, `p${i}`, manifest(`put ${i}`)) },
    {
      label: 'manifest GET by tag',
      samples: SAMPLES.get,
      // Spread over the repository, the same tag on every side.
      floor: (i) => ({ method: 'GET', path: byTag(i), headers: ACCEPT }),
      run: async (t, i) => void (await expectStatus(t, 200, 'GET', byTag(i), ACCEPT)),
    },
    {
      label: 'manifest HEAD by tag',
      samples: SAMPLES.get,
      floor: (i) => ({ method: 'HEAD', path: byTag(i), headers: ACCEPT }),
      run: async (t, i) => void (await expectStatus(t, 200, 'HEAD', byTag(i), ACCEPT)),
    },
    { label: `tag list, ${TAGS} tags (full)`, samples: SAMPLES.list, run: async (t) => void (await expectStatus(t, 200, 'GET', `/v2/${BIG}/tags/list`)) },
    {
      label: 'tag list, n=100 from the middle',
      samples: SAMPLES.page,
      floor: () => ({ method: 'GET', path: page }),
      run: async (t) => void (await expectStatus(t, 200, 'GET', page)),
    },
    {
      label: `manifest DELETE by digest, ${TAGS} tags`,
      samples: SAMPLES.delete,
      // Tags from the top down, clear of the page listed above.
      run: async (t, i) => void (await expectStatus(t, 202, 'DELETE', `/v2/${BIG}/manifests/${digests.get(t)![TAGS - 1 - i]}`)),
    },
  ];
}

/**
 * What the floor is to answer: our answers to every request the floor rows
 * send. `other` gets the same requests when it is another build of ours
 * (BENCH_BASELINE), so that both enter the rows equally warm: an A/A run showed
 * the side that alone answered them ~5% off the other on some rows.
 */
async function captureFloor(ours: Target, other: Target, all: Row[]): Promise<Record<string, ReturnType<typeof canned>>> {
  const answers: Record<string, ReturnType<typeof canned>> = {};
  for (const row of all) {
    for (let i = 0; i < row.samples && row.floor; i++) {
      const { method, path, headers } = row.floor(i);
      if (`${method} ${path}` in answers) continue;
      answers[`${method} ${path}`] = canned(await expectStatus(ours, 200, method, path, headers));
      if (OTHER.root !== undefined) await expectStatus(other, 200, method, path, headers);
    }
  }
  return answers;
}

/** The metadata rows: populates both registries, starts the floor, measures. */
async function metadataTable(ours: Target, other: Target): Promise<string> {
  const targets = [ours, other];
  const name = OTHER.name;
  // Populated side by side: nothing is measured yet, and it halves the wait.
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
    floor = await startFloor(await captureFloor(ours, other, all));
    const floorTarget = target('floor', floor.url, 1, floor.pid);
    const table: string[][] = [];
    for (const row of all) {
      const [a, b, f] = await measure(row.floor ? [...targets, floorTarget] : targets, row);
      const [ta, tb] = [median(a.times), median(b.times)];
      const floorCells = f ? [formatNumber(median(f.times)), formatRatio(ta / median(f.times))] : ['—', '—'];
      const cpuCells = [formatNumber(a.cpu), formatNumber(b.cpu), formatRatio(a.cpu / b.cpu), f ? formatNumber(f.cpu) : '—', f ? formatRatio(a.cpu / f.cpu) : '—'];
      table.push([row.label, String(row.samples), formatNumber(ta), formatNumber(tb), formatRatio(ta / tb), ...floorCells, ...cpuCells]);
    }
    floorTarget.agent.destroy();
    progressDone();
    return [
      markdownTable(['operation (median ms)', 'samples', 'ours', name, `ours / ${name}`, 'node:http floor', 'ours / floor', 'ours CPU µs', `${name} CPU µs`, `CPU ours / ${name}`, 'floor CPU µs', 'CPU ours / floor'], table),
      '',
      `Loopback, one keep-alive connection each, samples interleaved, data in ${DATA_PARENT}; ${otherVersion()}. ` +
        `The floor is a bare node:http server answering the bytes and headers our server answered. CPU µs: the server process's user+system time over the row (from /proc, 10 ms ticks) per sample. ` +
        `The n=100 page answered ${pageSizes[0]} tags (ours) and ${pageSizes[1]} (${name}). ` +
        `Populating ${TAGS} tags (${POPULATE_CONCURRENCY} connections each, both at once) took ${populateSeconds[0]} s (ours) and ${populateSeconds[1]} s (${name}).`,
    ].join('\n');
  } finally {
    await floor?.stop();
  }
}

async function main(): Promise<void> {
  const began = Date.now();
  progress('starting registries');
  const [ours, other] = await Promise.all([startOurs({ parentDir: DATA_PARENT }), startOther({ parentDir: DATA_PARENT })]);
  const targets = [target('ours', ours.url, POPULATE_CONCURRENCY, ours.pid), target(OTHER.name, other.url, POPULATE_CONCURRENCY, other.pid)];
  try {
    if (ONLY !== 'blobs') console.log(`${await metadataTable(targets[0], targets[1])}\n`);
    if (ONLY !== 'metadata') console.log(`${await blobRows({ ours: targets[0], other: targets[1], tmpfs: DATA_PARENT })}\n`);
    console.log(`The run took ${Math.round((Date.now() - began) / 1000)} s.`);
  } finally {
    for (const t of targets) t.agent.destroy();
    await stopAll();
  }
}

main().catch(async (error) => {
  progressDone();
  console.error(error instanceof Error ? error.stack : error);
  await stopAll();
  process.exitCode = 1;
});
