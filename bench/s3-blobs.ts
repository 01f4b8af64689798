// The S3 rows of the server benchmark: regmeta with its blobs in a
// directory, regmeta with its blobs in S3, and distribution 2.8 with its s3
// driver, the two S3 registries on one S3 server (bench/s3rver.cjs), in one
// run, samples interleaved, medians side by side.
//
// How it measures, and why:
// - Everything on tmpfs (the bench's data parent), the S3 server's objects
//   too: the rows compare what the registries do, not a disk. The S3 server
//   is one Node process (s3rver) that both S3 registries go through alike.
// - curl is the client for the big transfers, as in bench/blobs.ts (whose
//   push and pull helpers these rows use): a monolithic push is a POST and a
//   PUT of the file (curl -T); the chunked push 8 MiB PATCHes from this
//   process's memory, then a PUT; 8 concurrent pushes or pulls are 8 curl
//   processes, timed from the first spawn to the last exit.
// - Every push sample pushes blobs no registry has seen (a counter in the
//   first bytes of each), so that no registry can skip the write for a
//   digest it already holds; after each sample their files and objects are
//   removed, untimed, so that tmpfs holds one sample's blobs at a time.
// - Streamed pulls: distribution with `redirect: disable`; regmeta without
//   --storage-redirect. The redirect rows go to a second process of each on
//   the same data: regmeta with --storage-redirect (one data directory,
//   SQLite, two processes), distribution with redirects (its default on s3).
//   "307 only" is the registry's whole part of such a pull; "followed" is
//   the pull as a client sees it (curl -L), the bytes coming from S3.
// - Small requests (blob HEAD, the 307) go one at a time over a keep-alive
//   connection per registry; their CPU column is the registry's µs per request.
// - CPU s: the median of the registry process's user+system time per sample
//   (from /proc; 10 ms ticks), never the S3 server's.
// - BENCH_S3_MIB makes the big blob smaller (default 1024: 1 GiB, slices of
//   an eighth), BENCH_S3_SAMPLES sets every big row's sample count; progress
//   goes to stderr on a terminal.

import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { curl, curlVersion, measure, pushChunked, pushMonolithic, side, timed, type Side } from './blobs.js';
import { expectStatus, processCpu, pushBlob, sha256, target, type Target } from './client.js';
import { formatNumber, formatRatio, markdownTable, median, progress, progressDone } from './lib.js';
import { otherVersion, startDistribution, startOurs, type Peer } from './peers.js';
import { startBenchS3, type BenchS3 } from './s3-server.js';

const MiB = 1 << 20;
const BIG_SIZE = Number(process.env.BENCH_S3_MIB ?? 1024) * MiB;
const PARALLEL = 8;
const SLICE = BIG_SIZE / PARALLEL;
const OVERRIDE = process.env.BENCH_S3_SAMPLES === undefined ? undefined : Number(process.env.BENCH_S3_SAMPLES);
const SAMPLES = { pull: 5, parallelPull: 5, push: 3, parallelPush: 3, redirectPull: 5, head: 500, redirect: 500 };
const samples = (n: number) => OVERRIDE ?? n;
const REPO = 'bench/s3';
const UPLOADS = `/v2/${REPO}/blobs/uploads/`;
const NAMES = ['regmeta fs', 'regmeta s3', 'distribution s3'] as const;

/** The registries of the S3 rows: [fs, s3, distribution] stream; [s3, distribution] redirect. */
interface Registries {
  streamed: [Target, Target, Target];
  redirected: [Target, Target];
  /** Where each keeps its blobs as files (the fs data directory, the S3 server's directory). */
  roots: string[];
}

/** The bytes pushed: the big blob in memory and as a file, and its eight slices as files. */
interface Source {
  data: Buffer;
  file: string;
  sliceFiles: string[];
  digest: string;
  slices: string[];
}

function makeSource(dir: string): Source {
  progress(`writing ${BIG_SIZE / MiB} MiB of random bytes`);
  const data = Buffer.allocUnsafe(BIG_SIZE);
  for (let i = 0; i < BIG_SIZE; i += 64 * MiB) randomFillSync(data, i, Math.min(64 * MiB, BIG_SIZE - i));
  const source = { data, file: join(dir, 'big.bin'), sliceFiles: Array.from({ length: PARALLEL }, (_, i) => join(dir, `slice-${i}.bin`)), digest: '', slices: [] as string[] };
  writeFileSync(source.file, data);
  source.sliceFiles.forEach((file, i) => writeFileSync(file, data.subarray(i * SLICE, (i + 1) * SLICE)));
  digests(source);
  return source;
}

function digests(source: Source): void {
  source.digest = sha256(source.data);
  source.slices = source.sliceFiles.map((_, i) => sha256(source.data.subarray(i * SLICE, (i + 1) * SLICE)));
}

let generation = 0;

/** New bytes for the next push sample: a counter at the start of each slice, in memory and in the files. */
function freshen(source: Source): void {
  generation++;
  const stamp = Buffer.alloc(8);
  stamp.writeBigUInt64BE(BigInt(generation));
  const patch = (file: string, position: number) => {
    const fd = openSync(file, 'r+');
    try {
      writeSync(fd, stamp, 0, stamp.length, position);
    } finally {
      closeSync(fd);
    }
  };
  for (let i = 0; i < PARALLEL; i++) {
    stamp.copy(source.data, i * SLICE);
    patch(source.file, i * SLICE);
    patch(source.sliceFiles[i], 0);
  }
  digests(source);
}

/** Removes every file and directory under `roots` whose name holds one of `digests`' hex: the blobs of a push sample. */
function removeBlobs(roots: string[], digestList: string[]): void {
  const hexes = digestList.map((digest) => digest.slice('sha256:'.length));
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (hexes.some((hex) => entry.name.includes(hex))) rmSync(path, { recursive: true, force: true });
      else if (entry.isDirectory()) walk(path);
    }
  };
  for (const root of roots) walk(root);
}

/** A GET by curl (following redirects with `follow`) that must end in 200 with `size` bytes. @returns curl's time_total. */
async function pull(url: string, size: number, follow = false): Promise<number> {
  const result = await curl([...(follow ? ['-L'] : []), url]);
  if (result.code !== 200 || result.size !== size) throw new Error(`GET ${url}: ${result.code} with ${result.size} bytes, not 200 with ${size}`);
  return result.seconds;
}

const blobUrl = (t: Target, digest: string) => `${t.url}/v2/${REPO}/blobs/${digest}`;
const concurrently = (run: (i: number) => Promise<unknown>) => timed(() => Promise.all(Array.from({ length: PARALLEL }, (_, i) => run(i))));

type Measured = { seconds: number; cpu: number }[];

/** A big row: each column's median seconds (or — where a registry has no such row), the ratios, the CPU seconds. */
function bigCells(label: string, count: number, m: (Measured[number] | undefined)[]): string[] {
  const n = (x?: number) => (x === undefined ? '—' : formatNumber(x));
  // A CPU time under one 10 ms tick reads as 0: no ratio to it.
  const r = (a?: number, b?: number) => (a === undefined || b === undefined || b === 0 ? '—' : formatRatio(a / b));
  const [fs, s3, dist] = m;
  return [label, String(count), n(fs?.seconds), n(s3?.seconds), n(dist?.seconds), r(s3?.seconds, fs?.seconds), r(s3?.seconds, dist?.seconds), n(fs?.cpu), n(s3?.cpu), n(dist?.cpu), r(s3?.cpu, dist?.cpu)];
}

/** Pull rows: the blobs pushed once beforehand, each read once untimed. */
async function pullRows(r: Registries, source: Source): Promise<string[][]> {
  const [fs, s3, dist] = r.streamed;
  for (const t of [...r.streamed, ...r.redirected]) {
    progress(`reading the blobs once from ${t.name}`);
    await pull(blobUrl(t, source.digest), BIG_SIZE, true);
  }
  const whole = (t: Target, follow = false) => side(t.pid, () => pull(blobUrl(t, source.digest), BIG_SIZE, follow));
  const many = (t: Target) => side(t.pid, () => concurrently((i) => pull(blobUrl(t, source.slices[i]), SLICE)));
  const size = `${BIG_SIZE / MiB} MiB`;
  const rows: string[][] = [];
  rows.push(bigCells(`blob pull ${size}`, samples(SAMPLES.pull), await measure('pull', samples(SAMPLES.pull), [whole(fs), whole(s3), whole(dist)])));
  rows.push(bigCells(`${PARALLEL} concurrent pulls of ${SLICE / MiB} MiB`, samples(SAMPLES.parallelPull), await measure('concurrent pulls', samples(SAMPLES.parallelPull), [many(fs), many(s3), many(dist)])));
  const [s3r, distr] = r.redirected;
  const followed = await measure('pull with redirect', samples(SAMPLES.redirectPull), [whole(s3r, true), whole(distr, true)]);
  rows.push(bigCells(`blob pull ${size} with redirect, followed (curl -L)`, samples(SAMPLES.redirectPull), [undefined, ...followed]));
  return rows;
}

/** Push rows: new blobs each sample, removed after it. */
async function pushRows(r: Registries, source: Source): Promise<string[][]> {
  const all = (run: (t: Target) => Promise<unknown>) => r.streamed.map((t) => side(t.pid, () => timed(() => run(t))));
  // Each side in a sample gets its own blobs: freshened before, removed after, untimed.
  const fresh = (sides: Side[]): Side[] =>
    sides.map((s) => ({
      cpu: s.cpu,
      run: async () => {
        freshen(source);
        try {
          return await s.run();
        } finally {
          removeBlobs(r.roots, [source.digest, ...source.slices]);
        }
      },
    }));
  const size = `${BIG_SIZE / MiB} MiB`;
  const rows: [string, number, Side[]][] = [
    [`blob push ${size} monolithic (POST, PUT)`, SAMPLES.push, all((t) => pushMonolithic(t, source.file, source.digest, UPLOADS))],
    [`blob push ${size} in 8 MiB PATCHes`, SAMPLES.push, all((t) => pushChunked(t, source.data, source.digest, UPLOADS))],
    [`${PARALLEL} concurrent pushes of ${SLICE / MiB} MiB`, SAMPLES.parallelPush, all((t) => concurrently((i) => pushMonolithic(t, source.sliceFiles[i], source.slices[i], UPLOADS)))],
  ];
  const table: string[][] = [];
  for (const [label, count, sides] of rows) table.push(bigCells(label, samples(count), await measure(label, samples(count), fresh(sides))));
  return table;
}

/** A small request over keep-alive, `count` times on each target in turn: median ms and CPU µs per request of each. */
async function small(label: string, count: number, targets: Target[], run: (t: Target) => Promise<unknown>): Promise<{ ms: number; cpu: number }[]> {
  for (let i = 0; i < Math.min(count, 100); i++) for (const t of targets) await run(t);
  const times = targets.map(() => [] as number[]);
  const before = targets.map((t) => processCpu(t.pid!));
  for (let i = 0; i < count; i++) {
    if (i % 50 === 0) progress(`${label}: ${i + 1}/${count}`);
    for (let k = 0; k < targets.length; k++) {
      const t = (i + k) % targets.length;
      const start = performance.now();
      await run(targets[t]);
      times[t].push(performance.now() - start);
    }
  }
  return targets.map((t, k) => ({ ms: median(times[k]), cpu: ((processCpu(t.pid!) - before[k]) * 1e6) / count }));
}

/** Blob HEAD and the redirect's 307, of blob `digest`. */
async function smallRows(r: Registries, digest: string): Promise<string[][]> {
  const head = (t: Target) => expectStatus(t, 200, 'HEAD', `/v2/${REPO}/blobs/${digest}`);
  const redirect = async (t: Target) => {
    const res = await expectStatus(t, 307, 'GET', `/v2/${REPO}/blobs/${digest}`);
    if (typeof res.headers.location !== 'string') throw new Error(`${t.name}: a 307 without a Location`);
  };
  const n = formatNumber;
  const heads = await small('blob HEAD', SAMPLES.head, r.streamed, head);
  const redirects = await small('blob GET answered 307', SAMPLES.redirect, r.redirected, redirect);
  const cells = (label: string, count: number, [fs, s3, dist]: ({ ms: number; cpu: number } | undefined)[]) => [
    label,
    String(count),
    fs ? n(fs.ms) : '—',
    n(s3!.ms),
    n(dist!.ms),
    fs ? formatRatio(s3!.ms / fs.ms) : '—',
    formatRatio(s3!.ms / dist!.ms),
    fs ? n(fs.cpu) : '—',
    n(s3!.cpu),
    n(dist!.cpu),
    formatRatio(s3!.cpu / dist!.cpu),
  ];
  return [cells('blob HEAD', SAMPLES.head, heads), cells('blob GET with redirect: the 307 only', SAMPLES.redirect, [undefined, ...redirects])];
}

/** Starts the five registries on one S3 server. */
async function startRegistries(parentDir: string, s3: BenchS3): Promise<{ peers: Peer[]; registries: Registries }> {
  const storage = `s3://${s3.bucket}/regmeta?endpoint=${encodeURIComponent(s3.endpoint)}&forcePathStyle=true`;
  const peers: Peer[] = [];
  try {
    const fs = await startOurs({ parentDir });
    peers.push(fs);
    const ours = await startOurs({ parentDir, env: s3.env, args: ['--storage', storage] });
    peers.push(ours);
    // The same data directory (SQLite) and bucket prefix: the second process only adds redirects.
    peers.push(await startOurs({ parentDir, dataDir: ours.dataDir, env: s3.env, args: ['--storage', storage, '--storage-redirect'] }));
    const driver = { endpoint: s3.endpoint, bucket: s3.bucket, accessKey: s3.accessKey, secretKey: s3.secretKey, rootDirectory: '/distribution' };
    peers.push(await startDistribution({ parentDir, s3: { ...driver, redirect: false } }));
    peers.push(await startDistribution({ parentDir, s3: { ...driver, redirect: true } }));
  } catch (error) {
    await Promise.all(peers.map((peer) => peer.stop()));
    throw error;
  }
  const t = (k: number, name: string) => target(name, peers[k].url, 1, peers[k].pid);
  return {
    peers,
    registries: {
      streamed: [t(0, NAMES[0]), t(1, NAMES[1]), t(3, NAMES[2])],
      redirected: [t(2, `${NAMES[1]} redirect`), t(4, `${NAMES[2]} redirect`)],
      roots: [peers[0].dataDir, s3.dir],
    },
  };
}

/**
 * The S3 rows as markdown tables with their notes.
 * @throws Error when a registry answers otherwise than expected.
 */
export async function s3Rows(options: { parentDir: string }): Promise<string> {
  const dir = mkdtempSync(join(options.parentDir, 'regmeta-bench-s3-source-'));
  let s3: BenchS3 | undefined;
  let peers: Peer[] = [];
  try {
    progress('starting the S3 server and the registries');
    s3 = await startBenchS3(options.parentDir);
    const started = await startRegistries(options.parentDir, s3);
    peers = started.peers;
    const r = started.registries;
    const source = makeSource(dir);
    // The pulled blobs: the streamed fs registry holds its own; the S3 ones share a bucket per kind.
    for (const t of [r.streamed[0], r.streamed[1], r.streamed[2]]) {
      progress(`pushing the blobs to ${t.name}`);
      await pushBlob(t, REPO, source.data, source.digest);
      for (let i = 0; i < PARALLEL; i++) await pushBlob(t, REPO, source.data.subarray(i * SLICE, (i + 1) * SLICE), source.slices[i]);
    }
    const pulled = source.digest;
    const big = [...(await pullRows(r, source)), ...(await pushRows(r, source))];
    const smallTable = await smallRows(r, pulled);
    progressDone();
    const cols = [...NAMES, 'regmeta s3 / fs', 'regmeta s3 / distribution s3'];
    const cpu = (unit: string) => [...NAMES.map((name) => `${name} CPU ${unit}`), 'CPU regmeta s3 / distribution s3'];
    return [
      markdownTable(['S3 blob transfer (median s)', 'samples', ...cols, ...cpu('s')], big),
      '',
      markdownTable(['S3 small request (median ms)', 'samples', ...cols, ...cpu('µs')], smallTable),
      '',
      `Loopback; one S3 server (s3rver 4.0.4 under Node ${process.versions.node}, patched as bench/s3rver.cjs says) with its objects in ${options.parentDir} (tmpfs), ` +
        `for both regmeta s3 (SQLite metadata, --storage s3://…) and ${otherVersion('distribution')} (s3 driver, its defaults, redirect disabled for the streamed rows); ` +
        `regmeta fs keeps its blobs in a directory on the same tmpfs. curl ${curlVersion()} for the transfers; each push sample pushes new blobs. ` +
        `The redirect rows: regmeta serve --storage-redirect and distribution with redirects on, each a second process on the same data. ` +
        `CPU: the registry process's user+system time (s per sample, µs per small request), not the S3 server's.`,
    ].join('\n');
  } finally {
    await Promise.all(peers.map((peer) => peer.stop()));
    await s3?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
