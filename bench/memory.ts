// The memory benchmark: our compiled server (`regmeta serve`, a
// child process) over one repository with 100,000 tags. It reports the
// server's RSS and its anonymous part (RssAnon: the heap and buffers, what
// a leak grows; the rest is mapped files such as the code and the
// database's memory map) at start, after listing every tag, after 10,000
// manifest GETs, and then every 10 s of a steady pull load (manifest GETs
// by tag and 1 MiB blob GETs, 4 keep-alive connections back to back).
//
//   npm run bench:memory                     # 5 minutes of load
//   BENCH_MEMORY_SECONDS=30 npm run bench:memory
//
// The repository is written through the store's API straight into the data
// directory before the server starts (HTTP would take minutes for 100,000
// manifests). Data on tmpfs unless REGMETA_BENCH_DIR says otherwise.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { MediaType, digestOf, openStore } from 'regmeta';
import { DirectoryBlobStore } from '../src/blobstore/index.js';
import { expectStatus, sha256, target, type Target } from './client.js';
import { formatNumber, markdownTable, median, progress, progressDone } from './lib.js';
import { startOurs, stopAll } from './peers.js';

const TAGS = Number(process.env.BENCH_MEMORY_TAGS ?? 100_000);
const GETS = 10_000;
const LOAD_SECONDS = Number(process.env.BENCH_MEMORY_SECONDS ?? 300);
const SAMPLE_EVERY = 10_000;
const CLIENTS = 4;
const REPO = 'bench/memory';
const DATA_PARENT = process.env.REGMETA_BENCH_DIR ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());

const tagName = (i: number) => `t${String(i).padStart(6, '0')}`;

/** RSS and RssAnon of a process, in MiB, from /proc/<pid>/status. */
function memory(pid: number): { rss: number; anon: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, anon: kib('RssAnon') / 1024 };
}

/** Writes TAGS manifests, each tagged, and a 1 MiB layer they all reference, into `dataDir`. @returns the layer's digest. */
async function populate(dataDir: string): Promise<string> {
  const store = openStore(join(dataDir, 'metadata.db'), { durability: 'normal' });
  const blobs = new DirectoryBlobStore(dataDir);
  try {
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    const layer = randomBytes(1 << 20);
    for (const bytes of [config, layer]) {
      const staged = await blobs.put(sha256(bytes), Readable.from([bytes]));
      store.linkBlob(REPO, { digest: sha256(bytes), size: bytes.length }, undefined, { place: staged.place });
      await staged.discard();
    }
    for (let i = 0; i < TAGS; i++) {
      const payload = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.OciManifest,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
          annotations: { 'bench.label': `memory ${i}` },
        }),
      );
      store.putManifest(REPO, digestOf(payload), { mediaType: MediaType.OciManifest, payload }, undefined, { tag: tagName(i) });
      if (i % 1000 === 0) progress(`populating: ${i}/${TAGS} tags`);
    }
    return sha256(layer);
  } finally {
    store.close();
  }
}

/** Lists every tag, page by page through Link. @returns how many. */
async function listAll(t: Target): Promise<number> {
  let next: string | undefined = `/v2/${REPO}/tags/list`;
  let count = 0;
  while (next !== undefined) {
    const res = await expectStatus(t, 200, 'GET', next);
    count += (JSON.parse(res.body.toString()) as { tags: string[] }).tags.length;
    next = /^<([^>]+)>/.exec(String(res.headers.link ?? ''))?.[1];
  }
  return count;
}

const ACCEPT = { Accept: MediaType.OciManifest };

/** Runs the pull load for `seconds`, sampling the server's memory every 10 s. */
async function steadyLoad(t: Target, pid: number, layer: string, seconds: number): Promise<{ at: number; rss: number; anon: number; requests: number }[]> {
  const samples: { at: number; rss: number; anon: number; requests: number }[] = [];
  const began = Date.now();
  const deadline = began + seconds * 1000;
  let requests = 0;
  const client = async (k: number) => {
    for (let i = k; Date.now() < deadline; i += CLIENTS) {
      await expectStatus(t, 200, 'GET', `/v2/${REPO}/manifests/${tagName((i * 7919) % TAGS)}`, ACCEPT);
      if (i % 10 === 0) await expectStatus(t, 200, 'GET', `/v2/${REPO}/blobs/${layer}`);
      requests++;
    }
  };
  const timer = setInterval(() => {
    samples.push({ at: Math.round((Date.now() - began) / 1000), ...memory(pid), requests });
    progress(`steady load: ${samples.at(-1)!.at}/${seconds} s, RSS ${formatNumber(samples.at(-1)!.rss)} MiB`);
  }, SAMPLE_EVERY);
  try {
    await Promise.all(Array.from({ length: CLIENTS }, (_, k) => client(k)));
  } finally {
    clearInterval(timer);
  }
  samples.push({ at: seconds, ...memory(pid), requests });
  return samples;
}

/**
 * Growth over the load, as the median of the last third of the samples
 * against that of the first third: single samples swing with the garbage
 * collector's sawtooth, a leak moves the medians.
 */
function growth(load: { rss: number; anon: number }[]): string {
  const third = Math.max(1, Math.floor(load.length / 3));
  const first = load.slice(0, third);
  const last = load.slice(-third);
  const m = (values: number[]) => formatNumber(median(values));
  const range = (values: number[]) => `${formatNumber(Math.min(...values))}–${formatNumber(Math.max(...values))}`;
  return (
    `Median of the first third of the samples against the last third: RSS ${m(first.map((s) => s.rss))} → ${m(last.map((s) => s.rss))} MiB, ` +
    `RssAnon ${m(first.map((s) => s.anon))} → ${m(last.map((s) => s.anon))} MiB (RssAnon over the whole load: ${range(load.map((s) => s.anon))} MiB).`
  );
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(DATA_PARENT, 'regmeta-bench-memory-'));
  try {
    const populateStart = Date.now();
    const layer = await populate(join(dir, 'data'));
    const populateSeconds = Math.round((Date.now() - populateStart) / 1000);
    progress('starting the server');
    const peer = await startOurs({ parentDir: DATA_PARENT, dataDir: join(dir, 'data') });
    const t = target('ours', peer.url, CLIENTS);
    const rows: string[][] = [];
    const row = (label: string) => {
      const m = memory(peer.pid);
      rows.push([label, formatNumber(m.rss), formatNumber(m.anon)]);
    };
    row('started');
    const listed = await listAll(t);
    if (listed !== TAGS) throw new Error(`listed ${listed} tags, not ${TAGS}`);
    row(`after listing all ${TAGS} tags`);
    for (let i = 0; i < GETS; i++) await expectStatus(t, 200, 'GET', `/v2/${REPO}/manifests/${tagName((i * 7919) % TAGS)}`, ACCEPT);
    row(`after ${GETS} manifest GETs`);
    const load = await steadyLoad(t, peer.pid, layer, LOAD_SECONDS);
    // The table shows a sample a minute (and the last); the growth uses them all.
    for (const s of load.filter((s, i) => s.at % 60 === 0 || i === load.length - 1)) {
      rows.push([`load, ${s.at} s (${s.requests} pulls)`, formatNumber(s.rss), formatNumber(s.anon)]);
    }
    progressDone();
    console.log(markdownTable(['server memory (MiB)', 'RSS', 'RssAnon'], rows));
    console.log();
    console.log(
      `${TAGS} tags in one repository (populated through the store in ${populateSeconds} s), data in ${DATA_PARENT}; ` +
        `steady load: ${CLIENTS} keep-alive connections, manifest GETs by tag and a 1 MiB blob GET every tenth, for ${LOAD_SECONDS} s, sampled every ${SAMPLE_EVERY / 1000} s. ` +
        growth(load),
    );
    t.agent.destroy();
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch(async (error) => {
  progressDone();
  console.error(error instanceof Error ? error.stack : error);
  await stopAll();
  process.exitCode = 1;
});
