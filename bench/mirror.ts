// The mirror benchmark: pulls through regmeta's pull-through cache (a
// `regmeta serve --mirror up=<upstream>`) and through distribution 2.8 in
// proxy mode, against pulls straight from the upstream (a distribution with
// the image pushed into it) and of the same image pushed into each.
//
// How it measures, and why:
// - The client is this process: a pull is the manifest (with an Accept
//   header), then the config and layers, three at a time, every body read
//   to its end and counted (bench/pull.ts). The first pull through each
//   cache checks every digest; timed pulls only count, so that hashing in
//   the client does not flatten the ratios.
// - A cold sample starts a fresh cache (regmeta with a new data directory,
//   or a new distribution proxy) and pulls a small image through it first,
//   untimed: the process is warm and connected to the upstream, as a
//   long-running mirror is, and only the image is new to it.
// - The upstream's bytes are what its access log says its GETs carried
//   over the sample, divided by the image's size (manifest and blobs); the
//   sample ends once the cache has kept every blob (distribution's proxy
//   fetches each once more to keep it, and may finish after its client).
// - The cold-rate row is the cold row with every side, the straight pull
//   too, reaching the upstream through one throttle (bench/throttle.ts) at
//   a public registry's speed: loopback's upstream, answering from the page
//   cache, would otherwise time the cache's CPU, not what its client waits.
// - Samples of a row rotate which side goes first; a cell is the median.
// - Everything keeps its data on tmpfs (/dev/shm) unless REGMETA_BENCH_DIR
//   names another directory.
// - Progress goes to stderr, and only on a terminal; the table to stdout.

import { existsSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { timed } from './blobs.js';
import { processCpu } from './client.js';
import { formatNumber, formatRatio, markdownTable, median, progress, progressDone } from './lib.js';
import { otherVersion, startDistribution, startOurs, stopAll, type Peer } from './peers.js';
import { distributionHolds, logMark, makeImage, pullImage, puller, pushImage, servedSince, type Image } from './pull.js';
import { startThrottle } from './throttle.js';

const MiB = 1 << 20;
const SIZE = Number(process.env.BENCH_MIRROR_MIB ?? 256) * MiB;
const LAYERS = Number(process.env.BENCH_MIRROR_LAYERS ?? 4);
const OVERRIDE = process.env.BENCH_MIRROR_SAMPLES === undefined ? undefined : Number(process.env.BENCH_MIRROR_SAMPLES);
const SAMPLES = { cold: 7, warm: 15, concurrent: 5, coldRate: 5 };
const samples = (n: number) => OVERRIDE ?? n;
const PARALLEL = 8;
const ONLY = (process.env.BENCH_ONLY ?? 'cold,warm,concurrent,cold-rate').split(',');
/** The upstream's rate on the cold-rate row, in MB/s: a well-connected pull from a public registry. */
const UPSTREAM_MBPS = Number(process.env.BENCH_MIRROR_UPSTREAM_MBPS ?? 100);
const DATA_PARENT = process.env.REGMETA_BENCH_DIR ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
/** Where the upstream appears in regmeta's namespace. */
const PREFIX = 'up';
const REPO = 'bench/image';
const WARMUP_REPO = 'bench/warmup';
const TAG = 'v1';

/** One sample of one side: seconds, the CPU seconds of the cache in between (NaN for none), and the upstream's bytes per image. */
interface Sample {
  seconds: number;
  cpu: number;
  upstream: number;
}

/** A row's side: takes one sample. */
type Side = () => Promise<Sample>;

interface Setting {
  upstream: Peer;
  image: Image;
  warmup: Image;
}

/** A cache under test: regmeta's mirror or distribution's proxy, with the names the upstream's repositories take in it. */
interface Cache {
  target: ReturnType<typeof puller>;
  name: (repo: string) => string;
  /** Resolves once the cache is done with what a cold pull brought (it may keep fetching after its answers). */
  kept?: (image: Image) => Promise<void>;
  stop: () => Promise<void>;
}

async function regmetaMirror(upstream: Peer): Promise<Cache> {
  const peer = await startOurs({ parentDir: DATA_PARENT, args: ['--mirror', `${PREFIX}=${upstream.url}`] });
  const target = puller('regmeta mirror', peer.url, peer.pid);
  return { target, name: (repo) => `${PREFIX}/${repo}`, stop: () => (target.agent.destroy(), peer.stop()) };
}

async function distributionProxy(upstream: Peer): Promise<Cache> {
  const peer = await startDistribution({ parentDir: DATA_PARENT, proxy: { remoteurl: upstream.url } });
  const target = puller('distribution proxy', peer.url, peer.pid);
  const kept = (image: Image) => distributionHolds(peer.dataDir, image.blobs);
  return { target, name: (repo) => repo, kept, stop: () => (target.agent.destroy(), peer.stop()) };
}

/** Runs `pull` against `cache`, timed, with the cache's CPU and the upstream's bytes over it. */
async function sample(setting: Setting, cache: Cache, pull: () => Promise<unknown>, cold: boolean): Promise<Sample> {
  const mark = logMark(setting.upstream.dir);
  const pid = cache.target.pid;
  const before = pid === undefined ? NaN : processCpu(pid);
  const seconds = await timed(pull);
  const cpu = pid === undefined ? NaN : processCpu(pid) - before;
  if (cold) await cache.kept?.(setting.image);
  const upstream = (await servedSince(mark, cold ? setting.image.blobs : [])) / setting.image.size;
  return { seconds, cpu, upstream };
}

/** `count` pulls of the image from `cache` at once. */
const pulls = (cache: Cache, image: Image, count: number) => () =>
  Promise.all(Array.from({ length: count }, () => pullImage(cache.target, cache.name(REPO), TAG, image)));

/** A cold side: a fresh cache per sample, warmed up with the small image, then `count` pulls of the image at once. */
function cold(setting: Setting, start: (upstream: Peer) => Promise<Cache>, count: number): Side {
  return async () => {
    const cache = await start(setting.upstream);
    try {
      await pullImage(cache.target, cache.name(WARMUP_REPO), TAG, setting.warmup, true);
      return await sample(setting, cache, pulls(cache, setting.image, count), true);
    } finally {
      await cache.stop();
    }
  };
}

/** The upstream itself as a cache of its own content: the baseline of cold pulls. */
function direct(setting: Setting): Cache {
  const target = puller('upstream', setting.upstream.url, setting.upstream.pid);
  return { target, name: (repo) => repo, stop: async () => target.agent.destroy() };
}

/** Takes every side's samples in turn, the order rotating. @returns each side's samples. */
async function measure(label: string, count: number, sides: Side[]): Promise<Sample[][]> {
  const taken = sides.map(() => [] as Sample[]);
  for (let i = 0; i < count; i++) {
    progress(`${label}: ${i + 1}/${count}`);
    for (let k = 0; k < sides.length; k++) {
      const s = (i + k) % sides.length;
      taken[s].push(await sides[s]());
    }
  }
  return taken;
}

const seconds = (taken: Sample[]) => median(taken.map((s) => s.seconds));

/** The upstream's bytes per image: the median, and the largest when it differs. */
function upstreamCell(taken: Sample[]): string {
  const middle = median(taken.map((s) => s.upstream));
  const most = Math.max(...taken.map((s) => s.upstream));
  return most - middle > 0.005 ? `${formatRatio(middle)} (max ${formatRatio(most)})` : formatRatio(middle);
}

/** A row: the mirror and its baseline, the proxy and its baseline (each of the four a side's samples). */
function row(label: string, count: number, [mirror, mirrorBase, proxy, proxyBase]: Sample[][]): string[] {
  const [m, mb, p, pb] = [mirror, mirrorBase, proxy, proxyBase].map(seconds);
  const n = formatNumber;
  const cpu = (taken: Sample[]) => n(median(taken.map((s) => s.cpu)));
  return [label, String(count), n(m), n(mb), formatRatio(m / mb), n(p), n(pb), formatRatio(p / pb), formatRatio(m / p), upstreamCell(mirror), upstreamCell(proxy), cpu(mirror), cpu(proxy)];
}

async function coldRow(setting: Setting): Promise<string[]> {
  const count = samples(SAMPLES.cold);
  const upstream = direct(setting);
  const straight: Side = () => sample(setting, upstream, pulls(upstream, setting.image, 1), true);
  const [mirror, proxy, base] = await measure('cold pulls', count, [cold(setting, regmetaMirror, 1), cold(setting, distributionProxy, 1), straight]);
  await upstream.stop();
  return row(`cold pull (baseline: straight from the upstream)`, count, [mirror, base, proxy, base]);
}

/** Cold pulls as on coldRow, with every side reaching the upstream through one throttle (bench/throttle.ts). */
async function coldRateRow(setting: Setting): Promise<string[]> {
  const count = samples(SAMPLES.coldRate);
  const throttle = await startThrottle(setting.upstream.url, UPSTREAM_MBPS * 1e6);
  try {
    const slow = { ...setting, upstream: { ...setting.upstream, url: throttle.url } };
    const upstream = direct(slow);
    const straight: Side = () => sample(slow, upstream, pulls(upstream, slow.image, 1), true);
    const [mirror, proxy, base] = await measure('cold pulls at network speed', count, [cold(slow, regmetaMirror, 1), cold(slow, distributionProxy, 1), straight]);
    await upstream.stop();
    return row(`cold pull, the upstream at ${formatNumber(UPSTREAM_MBPS)} MB/s (baseline: straight from it)`, count, [mirror, base, proxy, base]);
  } finally {
    await throttle.stop();
  }
}

async function concurrentRow(setting: Setting): Promise<string[]> {
  const count = samples(SAMPLES.concurrent);
  const upstream = direct(setting);
  const straight: Side = () => sample(setting, upstream, pulls(upstream, setting.image, PARALLEL), true);
  const sides = [cold(setting, regmetaMirror, PARALLEL), cold(setting, distributionProxy, PARALLEL), straight];
  const [mirror, proxy, base] = await measure('concurrent cold pulls', count, sides);
  await upstream.stop();
  return row(`${PARALLEL} concurrent cold pulls of one image (baseline: ${PARALLEL} straight from the upstream)`, count, [mirror, base, proxy, base]);
}

/**
 * Warm pulls: one regmeta mirror and one proxy, each having pulled the
 * image once (checked); regmeta also holds it pushed under `local/`, the
 * upstream is the proxy's pushed counterpart.
 */
async function warmRow(setting: Setting, data: Buffer[]): Promise<string[]> {
  const count = samples(SAMPLES.warm);
  const [mirror, proxy] = await Promise.all([regmetaMirror(setting.upstream), distributionProxy(setting.upstream)]);
  const upstream = direct(setting);
  try {
    progress('warm pulls: the first pull through each cache, checked');
    for (const cache of [mirror, proxy]) await pullImage(cache.target, cache.name(REPO), TAG, setting.image, true);
    await pushImage(mirror.target, 'local/image', TAG, setting.image, data);
    const pushed: Cache = { ...mirror, name: () => 'local/image' };
    await pullImage(pushed.target, 'local/image', TAG, setting.image, true);
    const side = (cache: Cache): Side => () => sample(setting, cache, pulls(cache, setting.image, 1), false);
    const taken = await measure('warm pulls', count, [side(mirror), side(pushed), side(proxy), side(upstream)]);
    return row('warm pull (baselines: the image pushed into regmeta, into distribution)', count, taken);
  } finally {
    await Promise.all([mirror.stop(), proxy.stop(), upstream.stop()]);
  }
}

async function main(): Promise<void> {
  const began = Date.now();
  const load = loadavg();
  progress(`writing ${SIZE / MiB} MiB of random layers`);
  const { image, data } = makeImage(SIZE, LAYERS);
  const { image: warmup, data: warmupData } = makeImage(2 * MiB, 2);
  const upstream = await startDistribution({ parentDir: DATA_PARENT });
  try {
    const pusher = puller('upstream', upstream.url);
    progress('pushing the image into the upstream');
    await pushImage(pusher, REPO, TAG, image, data);
    await pushImage(pusher, WARMUP_REPO, TAG, warmup, warmupData);
    // Into the page cache, and checked: from here on the upstream serves from memory.
    await pullImage(pusher, REPO, TAG, image, true);
    pusher.agent.destroy();
    const setting = { upstream, image, warmup };
    const rows: string[][] = [];
    if (ONLY.includes('cold')) rows.push(await coldRow(setting));
    if (ONLY.includes('warm')) rows.push(await warmRow(setting, data));
    if (ONLY.includes('concurrent')) rows.push(await concurrentRow(setting));
    if (ONLY.includes('cold-rate')) rows.push(await coldRateRow(setting));
    progressDone();
    const headers = ['pull (median s)', 'samples', 'regmeta mirror', 'its baseline', 'mirror / baseline', 'distribution proxy', 'its baseline',
      'proxy / baseline', 'mirror / proxy', 'upstream bytes / image, mirror', 'upstream bytes / image, proxy', 'mirror CPU s', 'proxy CPU s'];
    console.log(markdownTable(headers, rows));
    const sizes = image.blobs.slice(1).map((b) => formatNumber(b.size / MiB)).join(' + ');
    console.log(
      `\nLoopback; the image: ${formatNumber(image.size / MiB)} MiB, a config and ${LAYERS} random layers (${sizes} MiB), a Docker schema 2 manifest; ` +
        `the upstream and distribution's proxy: ${otherVersion('distribution')}; data in ${DATA_PARENT}. The client: this process, blobs 3 at a time, ` +
        `${PARALLEL} such pulls at once on the concurrent row. A cold sample starts a fresh cache and pulls a 2 MiB image through it untimed first. ` +
        `Upstream bytes: what the upstream's access log says its GETs carried during the sample, per image (manifest and blobs). ` +
        `On the cold-rate row every side reaches the upstream through one throttle sending its answers at ${formatNumber(UPSTREAM_MBPS)} MB/s in all. ` +
        `CPU s: the cache process's user+system time per sample (from /proc). Load average at the start: ${load.map((l) => l.toFixed(1)).join(', ')}.`,
    );
    console.log(`The run took ${Math.round((Date.now() - began) / 1000)} s.`);
  } finally {
    await upstream.stop();
  }
}

main().catch(async (error) => {
  progressDone();
  console.error(error instanceof Error ? error.stack : error);
  await stopAll();
  process.exitCode = 1;
});
