// The memory benchmark: our compiled server (`regmeta serve`, a child
// process, with htpasswd) over one repository with 100,000 tags, and with
// BENCH_BASELINE=<dir> our server as built in another checkout beside it on a
// copy of the same data. It reports each server's memory at start, after
// listing every tag, after 10,000 manifest GETs, and then after each of
// several consecutive rounds of a sustained mixed load (bench/load-mix.ts:
// 200 keep-alive connections from 8 loopback addresses, pulls, pushes, tag
// lists, 404s and 401s), so a reader sees whether memory levels off:
//
// - RSS and RssAnon from /proc/<pid>/status: RssAnon is the heap and
//   buffers, what a leak grows; the rest is mapped files, mostly the
//   database's memory map, which grows with the pages requests touch (and
//   with the database, which the pushes grow) up to its size.
// - V8's heap in use and the memory outside it (Buffers), from the server's
//   own /metrics (nodejs_heap_size_used_bytes, nodejs_external_memory_bytes).
// - RSS during a round is the median of samples every 2 s; the rest is read
//   a few seconds after the round, the server idle.
//
// With a baseline the two servers take turns, round by round (which goes
// first alternates), so each has the machine to itself while loaded.
//
//   npm run bench:memory                          # 5 rounds of 60 s
//   BENCH_MEMORY_ROUNDS=3 BENCH_MEMORY_SECONDS=30 npm run bench:memory
//   BENCH_BASELINE=../main npm run bench:memory   # a built checkout beside ours
//
// The repository is written through the store's API straight into the data
// directory before the servers start (HTTP would take minutes for 100,000
// manifests). Data on tmpfs unless REGMETA_BENCH_DIR says otherwise.

import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { MediaType, digestOf, openStore } from 'regmeta';
import { DirectoryBlobStore } from '../src/blobstore/fs/directory.js';
import { expectStatus, sha256, target, type Target } from './client.js';
import { formatNumber, markdownTable, median, progress, progressDone } from './lib.js';
import { mixedRound, type MixFixture, type MixOptions } from './load-mix.js';
import { OTHER, otherVersion, startOurs, stopAll, type Peer } from './peers.js';

const TAGS = Number(process.env.BENCH_MEMORY_TAGS ?? 100_000);
const GETS = 10_000;
const ROUNDS = Number(process.env.BENCH_MEMORY_ROUNDS ?? 5);
const ROUND_SECONDS = Number(process.env.BENCH_MEMORY_SECONDS ?? 60);
const CONNECTIONS = Number(process.env.BENCH_MEMORY_CONNECTIONS ?? 200);
const ADDRESSES = 8;
const SAMPLE_EVERY = 2000;
// Long enough for the last responses to close and the log to be written.
const SETTLE_MS = 3000;
const REPO = 'bench/memory';
const PUSH_REPOS = Array.from({ length: 20 }, (_, i) => `bench/push-${i}`);
const USER = 'bench';
const PASSWORD = 'bench-password';
const AUTHORIZATION = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
const DATA_PARENT = process.env.REGMETA_BENCH_DIR ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
if (!(ROUNDS >= 1 && ROUND_SECONDS > 0 && CONNECTIONS >= 1)) throw new Error('BENCH_MEMORY_ROUNDS, _SECONDS and _CONNECTIONS must be positive');

const tagName = (i: number) => `t${String(i).padStart(6, '0')}`;

/** One server under test. */
interface Side {
  name: string;
  peer: Peer;
  target: Target;
}

/** What one reading of a server's memory says, in MiB. */
interface Reading {
  rss: number;
  anon: number;
  heap: number;
  external: number;
  database: number;
}

/** RSS and RssAnon of a process, in MiB, from /proc/<pid>/status. */
function proc(pid: number): { rss: number; anon: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, anon: kib('RssAnon') / 1024 };
}

/** The server's memory from /proc and its heap and external memory from its /metrics. */
async function reading(side: Side): Promise<Reading> {
  const res = await expectStatus(side.target, 200, 'GET', '/metrics', { Authorization: AUTHORIZATION });
  const text = res.body.toString();
  const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN) / 1024 ** 2;
  return {
    ...proc(side.peer.pid),
    heap: metric('nodejs_heap_size_used_bytes'),
    external: metric('nodejs_external_memory_bytes'),
    database: statSync(join(side.peer.dataDir, 'metadata.db')).size / 1024 ** 2,
  };
}

/** Writes TAGS manifests, each tagged, a 1 MiB layer they all reference, and the push repositories' config, into `dataDir`. */
async function populate(dataDir: string): Promise<MixFixture> {
  const store = openStore(join(dataDir, 'metadata.db'), { durability: 'normal' });
  const blobs = new DirectoryBlobStore(dataDir);
  try {
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    const layer = randomBytes(1 << 20);
    const link = async (repos: string[], bytes: Buffer) => {
      const staged = await blobs.put(sha256(bytes), Readable.from([bytes]));
      // The first link places the file; the others link a blob the store has.
      repos.forEach((repo, i) => store.linkBlob(repo, { digest: sha256(bytes), size: bytes.length }, undefined, i === 0 ? { place: staged.place } : {}));
      await staged.discard();
    };
    await link([REPO, ...PUSH_REPOS], config);
    await link([REPO], layer);
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
    return { repo: REPO, tags: TAGS, tagName, layer: sha256(layer), pushRepos: PUSH_REPOS, config: { digest: sha256(config), size: config.length } };
  } finally {
    store.close();
  }
}

/** Lists every tag, page by page through Link. @returns how many. */
async function listAll(t: Target): Promise<number> {
  let next: string | undefined = `/v2/${REPO}/tags/list`;
  let count = 0;
  while (next !== undefined) {
    const res = await expectStatus(t, 200, 'GET', next, { Authorization: AUTHORIZATION });
    count += (JSON.parse(res.body.toString()) as { tags: string[] }).tags.length;
    next = /^<([^>]+)>/.exec(String(res.headers.link ?? ''))?.[1];
  }
  return count;
}

/** One round of the mixed load on `side`, its RSS sampled meanwhile. @returns the median RSS during it, and what the round did. */
async function loadRound(side: Side, fixture: MixFixture, round: number): Promise<{ during: number; requests: number; pushes: number; unexpected: string }> {
  const samples: number[] = [];
  const began = Date.now();
  const timer = setInterval(() => {
    samples.push(proc(side.peer.pid).rss);
    progress(`round ${round + 1}/${ROUNDS}, ${side.name}: ${Math.round((Date.now() - began) / 1000)}/${ROUND_SECONDS} s, RSS ${formatNumber(samples.at(-1)!)} MiB`);
  }, SAMPLE_EVERY);
  const options: MixOptions = { connections: CONNECTIONS, addresses: ADDRESSES, seconds: ROUND_SECONDS, authorization: AUTHORIZATION };
  try {
    const result = await mixedRound(side.peer.url, fixture, options, round);
    const unexpected = result.unexpected === 0 ? '' : `${result.unexpected} unexpected (first: ${result.firstUnexpected})`;
    return { during: median(samples.length > 0 ? samples : [proc(side.peer.pid).rss]), requests: result.requests, pushes: result.pushes, unexpected };
  } finally {
    clearInterval(timer);
  }
}

async function startSide(name: string, dir: string, htpasswd: string, root?: string): Promise<Side> {
  const peer = await startOurs({ parentDir: DATA_PARENT, dataDir: dir, root, htpasswd, args: ['--admin', USER] });
  return { name, peer, target: target(name, peer.url, 4) };
}

const cells = (r: Reading, during?: number) => [during === undefined ? '' : formatNumber(during), formatNumber(r.rss), formatNumber(r.anon), formatNumber(r.heap), formatNumber(r.external), formatNumber(r.database)];

/** The table's rows: a label, then each side's cells. */
class Rows {
  readonly rows: string[][] = [];
  constructor(readonly sides: Side[]) {}

  /** Runs `per` on each side in turn (it returns a reading), and adds the row. */
  async add(label: string, per: (side: Side) => Promise<Reading>, during: (number | undefined)[] = []): Promise<void> {
    const readings: Reading[] = [];
    for (const side of this.sides) readings.push(await per(side));
    this.rows.push([label, ...readings.flatMap((r, i) => cells(r, during[i]))]);
  }
}

/** The rows before the load: started, after listing every tag, after GETS manifest GETs. */
async function warmUp(rows: Rows): Promise<void> {
  await rows.add('started', reading);
  await rows.add(`after listing all ${TAGS} tags`, async (side) => {
    progress(`${side.name}: listing every tag`);
    const listed = await listAll(side.target);
    if (listed !== TAGS) throw new Error(`${side.name} listed ${listed} tags, not ${TAGS}`);
    return reading(side);
  });
  await rows.add(`after ${GETS} manifest GETs`, async (side) => {
    progress(`${side.name}: ${GETS} manifest GETs`);
    const headers = { Accept: MediaType.OciManifest, Authorization: AUTHORIZATION };
    for (let i = 0; i < GETS; i++) await expectStatus(side.target, 200, 'GET', `/v2/${REPO}/manifests/${tagName((i * 7919) % TAGS)}`, headers);
    return reading(side);
  });
}

/** The rounds, a row after each. @returns what each side's rounds did, and notes of unexpected answers. */
async function rounds(rows: Rows, fixture: MixFixture): Promise<{ requests: Map<Side, string[]>; notes: string[] }> {
  const { sides } = rows;
  const notes: string[] = [];
  const requests = new Map<Side, string[]>(sides.map((side) => [side, []]));
  for (let r = 0; r < ROUNDS; r++) {
    const during = new Map<Side, number>();
    for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
      const result = await loadRound(side, fixture, r);
      during.set(side, result.during);
      requests.get(side)!.push(`${formatNumber(result.requests / 1000)}k (${formatNumber(result.pushes / 1000)}k pushes)`);
      if (result.unexpected) notes.push(`round ${r + 1}, ${side.name}: ${result.unexpected}`);
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    }
    await rows.add(`after round ${r + 1}`, reading, sides.map((side) => during.get(side)));
  }
  return { requests, notes };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(DATA_PARENT, 'regmeta-bench-memory-'));
  try {
    const populateStart = Date.now();
    const fixture = await populate(join(dir, 'ours'));
    const populateSeconds = Math.round((Date.now() - populateStart) / 1000);
    const htpasswd = join(dir, 'htpasswd');
    writeFileSync(htpasswd, `${USER}:${bcrypt.hashSync(PASSWORD, 10)}\n`);
    const sides = [await startSide('ours', join(dir, 'ours'), htpasswd)];
    if (OTHER.root !== undefined) {
      cpSync(join(dir, 'ours'), join(dir, 'baseline'), { recursive: true });
      sides.push(await startSide('baseline', join(dir, 'baseline'), htpasswd, OTHER.root));
    }
    const rows = new Rows(sides);
    await warmUp(rows);
    const { requests, notes } = await rounds(rows, fixture);
    progressDone();
    const columns = ['RSS during', 'RSS', 'RssAnon', 'heap used', 'external', 'metadata.db'];
    const headers = ['server memory (MiB)', ...sides.flatMap((side) => columns.map((c) => (sides.length > 1 ? `${side.name} ${c}` : c)))];
    console.log(markdownTable(headers, rows.rows));
    console.log();
    console.log(
      `${TAGS} tags in one repository (populated through the store in ${populateSeconds} s), data in ${DATA_PARENT}, htpasswd on. ` +
        `Each round: ${CONNECTIONS} keep-alive connections from ${ADDRESSES} loopback addresses for ${ROUND_SECONDS} s, back to back ` +
        '(manifest GETs and HEADs, blob GETs and HEADs, tag list and catalog pages, chunked blob pushes each with a manifest PUT under a new tag, 404s, 401s). ' +
        `RSS during: the median of samples every ${SAMPLE_EVERY / 1000} s of the round; the rest read ${SETTLE_MS / 1000} s after it, idle ` +
        '(heap used and external from the server\'s /metrics; metadata.db: the file\'s size, which the pushes grow). ' +
        `Requests per round: ${sides.map((side) => `${side.name} ${requests.get(side)!.join(', ')}`).join('; ')}.` +
        (sides.length > 1 ? ` The servers take turns, round by round (which goes first alternates). ${otherVersion('baseline')}.` : ''),
    );
    for (const note of notes) console.log(`- ${note}`);
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
