// The blob rows of the server benchmark: big transfers against our
// server, distribution and a floor, samples interleaved, medians in seconds.
//
// How it measures, and why:
// - Pulls go to a second pair of registries with their data on disk
//   (REGMETA_BENCH_BLOB_DIR, else the system's temporary directory), as
//   registries keep blobs. Every blob is pulled once from each registry
//   before timing, so both serve from the page cache: the rows compare what
//   the servers do, not what the disk does.
// - curl is the client for the big transfers (-o /dev/null): a client that
//   costs the same against every server and is not the bench's own event
//   loop. A single pull's time is curl's time_total; 8 concurrent pulls are 8
//   curl processes, timed from the first spawn to the last exit.
// - The pull floor is a bare node:http server writing 1 MiB pieces of a
//   buffer in memory with backpressure: what Node moves over loopback with
//   no file to read.
// - Pushes go to the registries on tmpfs (the metadata pair), where fsync is
//   free, and to the pair on disk. They have two floors: the same node:http
//   server taking the same requests and only hashing the bodies (what this
//   stack spends to take a blob, with no file to write), and sha256 of the
//   same bytes in this process: a push must hash every byte once, so it
//   cannot go faster. The monolithic push is a POST and a PUT of the file
//   with curl -T; the chunked one, 8 MiB PATCHes with Content-Range from
//   this process's memory, then a PUT with the digest.

import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectStatus, location, processCpu, pushBlob, sha256, target, type Target } from './client.js';
import { startFloor } from './floor.js';
import { formatNumber, formatRatio, markdownTable, median, progress, progressDone } from './lib.js';
import { OTHER, startOther, startOurs } from './peers.js';

const MiB = 1 << 20;
const GiB = 1 << 30;
const BIG_SIZE = Number(process.env.BENCH_BLOB_MIB ?? 1024) * MiB;
const PARALLEL = 8;
const SLICE = BIG_SIZE / PARALLEL;
const RANGE = [BIG_SIZE / 2 - BIG_SIZE / 8, BIG_SIZE / 2 + BIG_SIZE / 8 - 1];
const CHUNK = 8 * MiB;
const REPO = 'bench/blobs';
const UPLOADS = '/v2/bench/push/blobs/uploads/';
const FLOOR_UPLOADS = '/sink/uploads/';
const BLOB_PARENT = process.env.REGMETA_BENCH_BLOB_DIR ?? tmpdir();
const OVERRIDE = process.env.BENCH_BLOB_SAMPLES === undefined ? undefined : Number(process.env.BENCH_BLOB_SAMPLES);
const SAMPLES = { pull: 9, range: 9, parallel: 7, push: 5, pushDisk: 3 };
const samples = (n: number) => OVERRIDE ?? n;

/** One side of a row: runs a sample and answers its time in seconds; `cpu` reads the CPU seconds its server (or this process) has used so far. */
export interface Side {
  run: () => Promise<number>;
  cpu: () => number;
}

const ownCpu = () => {
  const used = process.cpuUsage();
  return (used.user + used.system) / 1e6;
};
export const side = (pid: number | undefined, run: () => Promise<number>): Side => ({ run, cpu: pid === undefined ? ownCpu : () => processCpu(pid) });

interface CurlResult {
  code: number;
  size: number;
  seconds: number;
}

/** Runs curl with `args` plus the status, size and time it reports. @throws Error when curl fails. */
export function curl(args: string[]): Promise<CurlResult> {
  return new Promise((done, fail) => {
    const child = spawn('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_total}', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('error', fail);
    child.once('close', (status) => {
      const [code, size, seconds] = out.trim().split(' ').map(Number);
      if (status !== 0 || !Number.isFinite(seconds)) return fail(new Error(`curl ${args.join(' ')} failed: ${out}`));
      done({ code, size, seconds });
    });
  });
}

/** A GET by curl that must answer `status` with `size` bytes. @returns curl's time_total. */
async function pull(url: string, status: number, size: number, range?: number[]): Promise<number> {
  const result = await curl([...(range ? ['-r', `${range[0]}-${range[1]}`] : []), url]);
  if (result.code !== status || result.size !== size) throw new Error(`GET ${url}: ${result.code} with ${result.size} bytes, not ${status} with ${size}`);
  return result.seconds;
}

/** Wall-clock seconds of `fn`. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return (performance.now() - start) / 1000;
}

/** A monolithic push: POST, then the file with curl -T as one PUT ?digest=. */
export async function pushMonolithic(t: Target, file: string, digest: string, uploads = UPLOADS): Promise<void> {
  const started = await expectStatus(t, 202, 'POST', uploads);
  const put = location(t, started);
  put.searchParams.set('digest', digest);
  const result = await curl(['-T', file, '-H', 'Content-Type: application/octet-stream', '-H', 'Expect:', put.href]);
  if (result.code !== 201) throw new Error(`${t.name}: the monolithic PUT answered ${result.code}`);
}

/** A chunked push: POST, 8 MiB PATCHes with Content-Range, each to the Location the last answer gave, then PUT ?digest=. */
export async function pushChunked(t: Target, data: Buffer, digest: string, uploads = UPLOADS): Promise<void> {
  let next = location(t, await expectStatus(t, 202, 'POST', uploads));
  for (let start = 0; start < data.length; start += CHUNK) {
    const chunk = data.subarray(start, Math.min(start + CHUNK, data.length));
    const headers = { 'Content-Type': 'application/octet-stream', 'Content-Range': `${start}-${start + chunk.length - 1}` };
    next = location(t, await expectStatus(t, 202, 'PATCH', next.pathname + next.search, headers, chunk));
  }
  next.searchParams.set('digest', digest);
  await expectStatus(t, 201, 'PUT', next.pathname + next.search);
}

/** Hashing `data` with node:crypto alone, in 1 MiB updates: the floor of a push. */
function hashOnly(data: Buffer): number {
  const start = performance.now();
  const hash = createHash('sha256');
  for (let i = 0; i < data.length; i += MiB) hash.update(data.subarray(i, i + MiB));
  hash.digest();
  return (performance.now() - start) / 1000;
}

/** Runs every sample on each side in turn, the order rotating. @returns each side's median seconds and median CPU seconds. */
export async function measure(label: string, count: number, sides: Side[]): Promise<{ seconds: number; cpu: number }[]> {
  const times = sides.map(() => [] as number[]);
  const cpu = sides.map(() => [] as number[]);
  for (let i = 0; i < count; i++) {
    progress(`${label}: ${i + 1}/${count}`);
    for (let k = 0; k < sides.length; k++) {
      const s = (i + k) % sides.length;
      const before = sides[s].cpu();
      times[s].push(await sides[s].run());
      cpu[s].push(sides[s].cpu() - before);
    }
  }
  return sides.map((_, s) => ({ seconds: median(times[s]), cpu: median(cpu[s]) }));
}

interface Source {
  data: Buffer;
  file: string;
  digest: string;
  slices: string[];
}

/** 1 GiB of random bytes, in memory and in a file on disk, with its digest and those of its eight slices. */
function makeSource(dir: string): Source {
  progress(`writing ${BIG_SIZE / MiB} MiB of random bytes`);
  const data = Buffer.allocUnsafe(BIG_SIZE);
  for (let i = 0; i < BIG_SIZE; i += 64 * MiB) randomFillSync(data, i, Math.min(64 * MiB, BIG_SIZE - i));
  const file = join(dir, 'big.bin');
  writeFileSync(file, data);
  const slices = Array.from({ length: PARALLEL }, (_, i) => sha256(data.subarray(i * SLICE, (i + 1) * SLICE)));
  return { data, file, digest: sha256(data), slices };
}

export interface BlobBench {
  /** Our server and the other (distribution, or BENCH_BASELINE) with their data on tmpfs, for the push rows. */
  ours: Target;
  other: Target;
  tmpfs: string;
}

type Measured = { seconds: number; cpu: number }[];

/** A table row: ours, the other registry and the node:http floor, and for a push the time of sha256 alone. */
function cells(label: string, count: number, [a, b, f, h]: Measured): string[] {
  const n = formatNumber;
  const r = formatRatio;
  return [label, String(count), n(a.seconds), n(b.seconds), n(f.seconds), h ? n(h.seconds) : '—', r(a.seconds / b.seconds), r(a.seconds / f.seconds), h ? r(a.seconds / h.seconds) : '—', n(a.cpu), n(b.cpu), n(f.cpu), r(a.cpu / f.cpu)];
}

interface Setting {
  source: Source;
  disk: Target[];
  floor: Target;
}

const blobUrl = (t: Target, digest: string) => `${t.url}/v2/${REPO}/blobs/${digest}`;

/** The pull rows, from the registries on disk, each blob read once before. */
async function pullRows({ source, disk, floor }: Setting): Promise<string[][]> {
  const all = (t: Target) => Promise.all(source.slices.map((digest) => pull(blobUrl(t, digest), 200, SLICE)));
  const floorAll = () => Promise.all(source.slices.map(() => pull(`${floor.url}/bytes/${SLICE}`, 200, SLICE)));
  // Into the page cache: from here on both serve from memory.
  for (const t of disk) {
    progress(`reading the blobs once from ${t.name}`);
    await pull(blobUrl(t, source.digest), 200, BIG_SIZE);
    await all(t);
  }
  const [ours, other] = disk;
  const rangeBytes = RANGE[1] - RANGE[0] + 1;
  const whole = (t: Target) => side(t.pid, () => pull(blobUrl(t, source.digest), 200, BIG_SIZE));
  const part = (t: Target) => side(t.pid, () => pull(blobUrl(t, source.digest), 206, rangeBytes, RANGE));
  const many = (t: Target) => side(t.pid, () => timed(() => all(t)));
  return [
    cells(`blob pull ${BIG_SIZE / MiB} MiB`, samples(SAMPLES.pull),
      await measure('pull', samples(SAMPLES.pull), [whole(ours), whole(other), side(floor.pid, () => pull(`${floor.url}/bytes/${BIG_SIZE}`, 200, BIG_SIZE))])),
    cells(`blob pull Range, ${rangeBytes / MiB} MiB from the middle`, samples(SAMPLES.range),
      await measure('range', samples(SAMPLES.range), [part(ours), part(other), side(floor.pid, () => pull(`${floor.url}/bytes/${rangeBytes}`, 200, rangeBytes))])),
    cells(`${PARALLEL} concurrent pulls of ${SLICE / MiB} MiB`, samples(SAMPLES.parallel),
      await measure('concurrent pulls', samples(SAMPLES.parallel), [many(ours), many(other), side(floor.pid, () => timed(floorAll))])),
  ];
}

/** The push rows: into the tmpfs pair and into the pair on disk, against the floor's sink and sha256 alone. */
async function pushRows({ source, disk, floor }: Setting, tmpfs: Target[]): Promise<string[][]> {
  const size = `${BIG_SIZE / MiB} MiB`;
  const hash = side(undefined, async () => hashOnly(source.data));
  const monolithic = (t: Target, uploads?: string) => side(t.pid, () => timed(() => pushMonolithic(t, source.file, source.digest, uploads)));
  const chunked = (t: Target, uploads?: string) => side(t.pid, () => timed(() => pushChunked(t, source.data, source.digest, uploads)));
  const rows: [string, number, Side[]][] = [
    [`blob push ${size} monolithic, tmpfs`, SAMPLES.push, [monolithic(tmpfs[0]), monolithic(tmpfs[1]), monolithic(floor, FLOOR_UPLOADS), hash]],
    [`blob push ${size} in 8 MiB PATCHes, tmpfs`, SAMPLES.push, [chunked(tmpfs[0]), chunked(tmpfs[1]), chunked(floor, FLOOR_UPLOADS), hash]],
    [`blob push ${size} monolithic, disk`, SAMPLES.pushDisk, [monolithic(disk[0]), monolithic(disk[1]), monolithic(floor, FLOOR_UPLOADS), hash]],
  ];
  const table: string[][] = [];
  for (const [label, count, sides] of rows) table.push(cells(label, samples(count), await measure(label, samples(count), sides)));
  return table;
}

/**
 * The blob rows as a markdown table with its notes.
 * @throws Error when a registry answers otherwise than expected.
 */
export async function blobRows(tmpfsPair: BlobBench): Promise<string> {
  const dir = mkdtempSync(join(BLOB_PARENT, 'regmeta-bench-blobs-'));
  const source = makeSource(dir);
  const [oursPeer, otherPeer, floorPeer] = await Promise.all([startOurs({ parentDir: BLOB_PARENT }), startOther({ parentDir: BLOB_PARENT }), startFloor({})]);
  const disk = [target('ours', oursPeer.url, 1, oursPeer.pid), target(OTHER.name, otherPeer.url, 1, otherPeer.pid)];
  const floor = target('floor', floorPeer.url, 1, floorPeer.pid);
  try {
    for (const t of disk) {
      progress(`pushing the blobs to ${t.name} (data on disk)`);
      await pushBlob(t, REPO, source.data, source.digest);
      for (let i = 0; i < PARALLEL; i++) await pushBlob(t, REPO, source.data.subarray(i * SLICE, (i + 1) * SLICE), source.slices[i]);
    }
    const setting = { source, disk, floor };
    const table = [...(await pullRows(setting)), ...(await pushRows(setting, [tmpfsPair.ours, tmpfsPair.other]))];
    progressDone();
    const name = OTHER.name;
    const headers = ['blob transfer (median s)', 'samples', 'ours', name, 'node:http floor', 'sha256 alone', `ours / ${name}`, 'ours / floor', 'ours / sha256'];
    return [
      markdownTable([...headers, 'ours CPU s', `${name} CPU s`, 'floor CPU s', 'CPU ours / floor'], table),
      '',
      `Loopback, curl ${curlVersion()} as the client for pulls and monolithic pushes; pulls from data on disk in ${BLOB_PARENT}, each blob read once before ` +
        `timing so that both registries serve from the page cache; pushes into ${tmpfsPair.tmpfs} (tmpfs) and into ${BLOB_PARENT} (disk, fsync included). ` +
        `The node:http floor: for pulls a bare node:http server writing as many bytes from memory in 1 MiB pieces; for pushes the same server taking the ` +
        `same requests and hashing the bodies, with no file to write. sha256 alone: the same bytes hashed with node:crypto in this process. ` +
        `CPU s: the median of the server process's user+system time per sample (every thread, from /proc; this process's for sha256 alone).`,
    ].join('\n');
  } finally {
    await Promise.all([oursPeer.stop(), otherPeer.stop(), floorPeer.stop()]);
    for (const t of [...disk, floor]) t.agent.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function curlVersion(): string {
  return spawnSync('curl', ['--version'], { encoding: 'utf8' }).stdout.split(' ')[1] ?? 'unknown';
}
