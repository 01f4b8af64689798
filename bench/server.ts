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

import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { DISTRIBUTION_BIN, startDistribution, startOurs, stopAll, type Peer } from './peers.js';
import { formatNumber, formatRatio, markdownTable, median, progress, progressDone } from './lib.js';

const TAGS = 10_000;
const POPULATE_CONCURRENCY = 4;
const BIG = 'bench/big';
const PUTS = 'bench/put';
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';
const DATA_PARENT = process.env.REGMETA_BENCH_DIR ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
const SAMPLES = { put: 200, get: 300, list: 30, page: 100, delete: 40 };

interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A registry under test with its own keep-alive connection pool. */
interface Target {
  name: string;
  peer: Peer;
  agent: Agent;
  /** Manifest digests of bench/big by tag number, for DELETE. */
  digests: string[];
}

function send(target: Target, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer): Promise<Response> {
  const url = new URL(path, target.peer.url);
  return new Promise((done, fail) => {
    const req = request(url, { method, agent: target.agent, headers: body ? { ...headers, 'Content-Length': String(body.length) } : headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end(body);
  });
}

/** Sends and checks the status. @throws Error naming the registry, request and answer otherwise. */
async function expectStatus(target: Target, status: number, method: string, path: string, headers?: Record<string, string>, body?: Buffer): Promise<Response> {
  const res = await send(target, method, path, headers, body);
  if (res.status !== status) {
    throw new Error(`${target.name}: ${method} ${path} answered ${res.status}, not ${status}: ${res.body.toString().slice(0, 500)}`);
  }
  return res;
}

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Pushes a blob in the two-step way every registry supports (POST, then PUT ?digest=). */
async function pushBlob(target: Target, repo: string, data: Buffer): Promise<void> {
  const started = await expectStatus(target, 202, 'POST', `/v2/${repo}/blobs/uploads/`);
  const location = new URL(String(started.headers.location), target.peer.url);
  location.searchParams.set('digest', sha256(data));
  await expectStatus(target, 201, 'PUT', location.pathname + location.search, { 'Content-Type': 'application/octet-stream' }, data);
}

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

async function putManifest(target: Target, repo: string, tag: string, bytes: Buffer): Promise<void> {
  await expectStatus(target, 201, 'PUT', `/v2/${repo}/manifests/${tag}`, { 'Content-Type': MANIFEST_TYPE }, bytes);
}

async function populate(target: Target): Promise<void> {
  for (const repo of [BIG, PUTS]) {
    await pushBlob(target, repo, config);
    await pushBlob(target, repo, layer);
  }
  let next = 0;
  const worker = async () => {
    while (next < TAGS) {
      const i = next++;
      const bytes = manifest(`big ${i}`);
      target.digests[i] = sha256(bytes);
      await putManifest(target, BIG, tagName(i), bytes);
      if (i % 250 === 0) progress(`populating ${BIG}: ${target.name} at ${i}/${TAGS} tags`);
    }
  };
  // Separate connections so that the workers really overlap.
  await Promise.all(Array.from({ length: POPULATE_CONCURRENCY }, worker));
}

interface Row {
  label: string;
  samples: number;
  /** Runs sample `i` against `target`. */
  run: (target: Target, i: number) => Promise<void>;
}

async function measure(targets: Target[], row: Row): Promise<number[][]> {
  const times = targets.map(() => [] as number[]);
  for (let i = 0; i < row.samples; i++) {
    progress(`${row.label}: ${i + 1}/${row.samples}`);
    const order = i % 2 === 0 ? [0, 1] : [1, 0];
    for (const t of order) {
      const start = performance.now();
      await row.run(targets[t], i);
      times[t].push(performance.now() - start);
    }
  }
  return times;
}

async function main(): Promise<void> {
  const began = Date.now();
  progress('starting registries');
  const [ours, distribution] = await Promise.all([startOurs({ parentDir: DATA_PARENT }), startDistribution({ parentDir: DATA_PARENT })]);
  const target = (name: string, peer: Peer): Target => ({ name, peer, agent: new Agent({ keepAlive: true, maxSockets: POPULATE_CONCURRENCY }), digests: [] });
  const targets = [target('ours', ours), target('distribution', distribution)];
  try {
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

    const middle = tagName(TAGS / 2);
    const rows: Row[] = [
      {
        label: 'manifest PUT by tag',
        samples: SAMPLES.put,
        run: (t, i) => putManifest(t, PUTS, `p${i}`, manifest(`put ${i}`)),
      },
      {
        label: 'manifest GET by tag',
        samples: SAMPLES.get,
        // Spread over the repository, the same tag on both sides.
        run: async (t, i) => void (await expectStatus(t, 200, 'GET', `/v2/${BIG}/manifests/${tagName((i * 7919) % TAGS)}`, { Accept: MANIFEST_TYPE })),
      },
      {
        label: `tag list, ${TAGS} tags (full)`,
        samples: SAMPLES.list,
        run: async (t) => void (await expectStatus(t, 200, 'GET', `/v2/${BIG}/tags/list`)),
      },
      {
        label: 'tag list, n=100 from the middle',
        samples: SAMPLES.page,
        run: async (t) => void (await expectStatus(t, 200, 'GET', `/v2/${BIG}/tags/list?n=100&last=${middle}`)),
      },
      {
        label: `manifest DELETE by digest, ${TAGS} tags`,
        samples: SAMPLES.delete,
        // Tags from the top down, clear of the page listed above.
        run: async (t, i) => void (await expectStatus(t, 202, 'DELETE', `/v2/${BIG}/manifests/${t.digests[TAGS - 1 - i]}`)),
      },
    ];

    // What the paginated row means for each registry: distribution 2.8 ignores n and last.
    const pageSizes = await Promise.all(
      targets.map(async (t) => (JSON.parse((await expectStatus(t, 200, 'GET', `/v2/${BIG}/tags/list?n=100&last=${middle}`)).body.toString()) as { tags: string[] }).tags.length),
    );

    const table: string[][] = [];
    for (const row of rows) {
      const [oursTimes, theirTimes] = await measure(targets, row);
      const a = median(oursTimes);
      const b = median(theirTimes);
      table.push([row.label, String(row.samples), formatNumber(a), formatNumber(b), formatRatio(a / b)]);
    }
    progressDone();
    console.log(markdownTable(['operation (median ms)', 'samples', 'ours', 'distribution', 'ours / distribution'], table));
    console.log();
    console.log(
      `Loopback, one keep-alive connection each, samples interleaved, data in ${DATA_PARENT}; distribution ${distributionVersion()}. ` +
        `The n=100 page answered ${pageSizes[0]} tags (ours) and ${pageSizes[1]} (distribution). ` +
        `Populating ${TAGS} tags (${POPULATE_CONCURRENCY} connections each, both at once) took ${populateSeconds[0]} s (ours) and ${populateSeconds[1]} s (distribution); ` +
        `the run took ${Math.round((Date.now() - began) / 1000)} s.`,
    );
  } finally {
    for (const t of targets) t.agent.destroy();
    await stopAll();
  }
}

function distributionVersion(): string {
  const run = spawnSync(DISTRIBUTION_BIN, ['--version'], { encoding: 'utf8' });
  return run.stdout.trim().split(' ').pop() || 'unknown';
}

main().catch(async (error) => {
  progressDone();
  console.error(error instanceof Error ? error.message : error);
  await stopAll();
  process.exitCode = 1;
});
