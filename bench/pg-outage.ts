// What replicas do while their PostgreSQL dies under push load, measured:
// REPLICAS `regmeta serve` replicas on one database and one blob directory,
// PUSHERS clients pushing small images (a config, a layer, a manifest under
// a tag of its own) round the replicas, and PostgreSQL's postmaster SIGKILLed
// and restarted DOWN_MS later, CYCLES times. A dead replica is not restarted.
//
//   npm run bench:pg-outage                                  (this checkout)
//   BENCH_BASELINE=<a built checkout> npm run bench:pg-outage (that build in place of this one)
//   BENCH_CYCLES=8 BENCH_DOWN_MS=5000 BENCH_REPLICAS=2 BENCH_PUSHERS=4 (the defaults)
//
// Reported: replica processes that died, the slowest answer while
// PostgreSQL was away and overall, what the answers during the outages were,
// the time from each restart (pg_ctl start returning) to each replica's first
// 201, and the acknowledged pushes that do not pull whole afterwards.

import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { markdownTable } from './lib.js';
import { startOurs, stopAll, type Peer } from './peers.js';
import { startPostgres, TEST_SETTINGS } from './postgres.js';

const CYCLES = Number(process.env.BENCH_CYCLES ?? 8);
const DOWN_MS = Number(process.env.BENCH_DOWN_MS ?? 5000);
const REPLICAS = Number(process.env.BENCH_REPLICAS ?? 2);
const PUSHERS = Number(process.env.BENCH_PUSHERS ?? 4);
/** A request with no answer by then counts as unanswered. */
const GIVE_UP_MS = 30_000;
const REPO = 'outage/app';
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

interface Seen {
  replica: number;
  what: string;
  status: number;
  retryAfter: boolean;
  start: number;
  end: number;
}

const seen: Seen[] = [];
const acked = new Map<string, { manifest: string; blobs: string[] }>();
let stopped = false;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sha256 = (data: string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

async function request(replicas: Peer[], replica: number, what: string, path: string, init: RequestInit = {}): Promise<number> {
  const s: Seen = { replica, what, status: 0, retryAfter: false, start: Date.now(), end: 0 };
  try {
    const res = await fetch(`${replicas[replica].url}${path}`, { ...init, signal: AbortSignal.timeout(GIVE_UP_MS) });
    await res.arrayBuffer();
    s.status = res.status;
    s.retryAfter = res.headers.has('retry-after');
  } catch {
    // refused (a dead replica), reset or unanswered: status 0
  }
  s.end = Date.now();
  seen.push(s);
  return s.status;
}

function image(seed: string): { manifest: string; blobs: string[] } {
  const config = JSON.stringify({ architecture: 'amd64', os: 'linux', seed });
  const layer = `the layer of ${seed}`;
  const descriptor = (mediaType: string, data: string) => ({ mediaType, digest: sha256(data), size: Buffer.byteLength(data) });
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST,
    config: descriptor('application/vnd.oci.image.config.v1+json', config),
    layers: [descriptor('application/vnd.oci.image.layer.v1.tar', layer)],
  });
  return { manifest, blobs: [config, layer] };
}

async function pusher(replicas: Peer[], id: number): Promise<void> {
  for (let n = 0; !stopped; n++) {
    const replica = (id + n) % replicas.length;
    const pushed = image(`pusher ${id} image ${n}`);
    let ok = true;
    for (const blob of pushed.blobs) {
      const post = { method: 'POST', body: blob, headers: { 'Content-Type': 'application/octet-stream' } };
      ok = (await request(replicas, replica, 'blob POST', `/v2/${REPO}/blobs/uploads/?digest=${sha256(blob)}`, post)) === 201;
      if (!ok) break;
    }
    const tag = `p${id}-${n}`;
    if (ok) ok = (await request(replicas, replica, 'manifest PUT', `/v2/${REPO}/manifests/${tag}`, { method: 'PUT', body: pushed.manifest, headers: { 'Content-Type': MANIFEST } })) === 201;
    if (ok) acked.set(tag, pushed);
    else await sleep(100);
  }
}

async function prober(replicas: Peer[], replica: number): Promise<void> {
  while (!stopped) {
    await Promise.all([
      request(replicas, replica, 'GET /healthz', '/healthz'),
      request(replicas, replica, 'GET /readyz', '/readyz'),
      request(replicas, replica, 'GET tags/list', `/v2/${REPO}/tags/list`),
    ]);
    await sleep(250);
  }
}

const alive = (peer: Peer) => {
  try {
    process.kill(peer.pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function pullsWhole(peer: Peer, tag: string, pushed: { manifest: string; blobs: string[] }): Promise<boolean> {
  const res = await fetch(`${peer.url}/v2/${REPO}/manifests/${tag}`, { headers: { Accept: MANIFEST } });
  if (res.status !== 200 || (await res.text()) !== pushed.manifest) return false;
  for (const blob of pushed.blobs) {
    const got = await fetch(`${peer.url}/v2/${REPO}/blobs/${sha256(blob)}`);
    if (got.status !== 200 || (await got.text()) !== blob) return false;
  }
  return true;
}

/** Prints what the run saw: deaths, the slowest answers, first writes, pushes lost, and the answers during the outages. */
async function report(build: string, replicas: Peer[], outages: { killed: number; restarted: number }[], firstWrites: string[][]): Promise<void> {
  const deaths = replicas.filter((p) => !alive(p));
  const during = seen.filter((s) => outages.some((o) => s.start >= o.killed && s.start < o.restarted));
  const slowest = (list: Seen[]) => Math.max(0, ...list.filter((s) => s.status !== 0).map((s) => s.end - s.start));
  const unanswered = seen.filter((s) => s.status === 0 && s.end - s.start >= GIVE_UP_MS - 100).length;
  const answers = new Map<string, number>();
  for (const s of during) {
    const key = `${s.what} ${s.status === 0 ? 'no answer' : s.status}${s.status === 503 && !s.retryAfter ? ' (no Retry-After)' : ''}`;
    answers.set(key, (answers.get(key) ?? 0) + 1);
  }
  let lost = 0;
  for (const [tag, pushed] of acked) for (const peer of replicas.filter(alive)) if (!(await pullsWhole(peer, tag, pushed))) lost++;
  for (const peer of deaths) console.log(`replica ${peer.url} died:\n${peer.output().slice(-1500)}\n`);

  console.log(`\n${build}: ${REPLICAS} replicas, ${PUSHERS} pushers, ${CYCLES} kills of PostgreSQL, each down ${DOWN_MS} ms\n`);
  console.log(markdownTable(['measure', 'value'], [
    ['replica processes that died', `${deaths.length} of ${REPLICAS}`],
    ['slowest answer while PostgreSQL was away (ms)', String(slowest(during))],
    ['slowest answer overall (ms)', String(slowest(seen))],
    [`requests unanswered after ${GIVE_UP_MS / 1000} s`, String(unanswered)],
    ['first 201 after each restart, per replica (ms)', firstWrites.map((w) => w.join('/')).join(', ')],
    ['pushes acknowledged; of them not pullable whole from a live replica', `${acked.size}; ${lost}`],
  ], ['l', 'r']));
  console.log('\nAnswers to requests sent while PostgreSQL was away:\n');
  console.log(markdownTable(['request answer', 'count'], [...answers].sort().map(([k, n]) => [k, String(n)]), ['l', 'r']));
}

async function main(): Promise<void> {
  const root = process.env.BENCH_BASELINE;
  // Commits wait for their WAL to reach the kernel, so that the kill loses no acknowledged one.
  const postgres = await startPostgres({ settings: TEST_SETTINGS.map((s) => (s.startsWith('synchronous_commit=') ? 'synchronous_commit=on' : s)) });
  const dataDir = mkdtempSync(join(tmpdir(), 'regmeta-outage-'));
  try {
    const database = await postgres.createDatabase();
    const replicas = await Promise.all(Array.from({ length: REPLICAS }, () => startOurs({ root, dataDir, args: ['--database', database] })));
    const running = Promise.all([
      ...Array.from({ length: PUSHERS }, (_, id) => pusher(replicas, id)),
      ...replicas.map((_, r) => prober(replicas, r)),
    ]);
    const outages: { killed: number; restarted: number }[] = [];
    const firstWrites: string[][] = [];
    const firstWrite = (r: number, since: number) => seen.find((s) => s.replica === r && s.status === 201 && s.end >= since)?.end;
    await sleep(2000);
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const killed = Date.now();
      postgres.kill();
      await sleep(DOWN_MS);
      await postgres.restart();
      const restarted = Date.now();
      outages.push({ killed, restarted });
      // Up to 20 s for every replica still alive to write again.
      while (Date.now() - restarted < 20_000 && !replicas.every((p, r) => !alive(p) || firstWrite(r, restarted) !== undefined)) await sleep(20);
      firstWrites.push(replicas.map((p, r) => {
        const first = firstWrite(r, restarted);
        return first !== undefined ? `${first - restarted}` : alive(p) ? '>20000' : 'dead';
      }));
      process.stderr.write(`cycle ${cycle + 1}: first 201 after the restart (ms): ${firstWrites.at(-1)!.join(' / ')}\n`);
      await sleep(1000 + Math.random() * 1000);
    }
    stopped = true;
    await running;

    await report(root ?? 'this checkout', replicas, outages, firstWrites);
  } finally {
    await stopAll();
    await postgres.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
