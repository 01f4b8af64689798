// The server bench's floor section: a minimal keep-alive client (one socket
// of node:net, requests written as raw bytes, one at a time, answers read by
// their Content-Length) against a bare node:http server answering the same
// status, headers and bytes (bench/floor-server.ts), and against `regmeta
// serve` on SQLite as it runs by default (request log on, written to a file;
// metrics on), and the BENCH_BASELINE checkout's when given. node:http's own
// client costs more per request than this one, and would hide part of the
// server's share.
//
// Per row, after an unmeasured round of every row: 200 warm-up requests on every target, then 2,000 measured, the
// targets interleaved request by request (which goes first rotates), so
// machine noise hits all alike. Reported: median and p90 latency, the ratio
// of medians to the floor's, and each server process's CPU per request.

import { connect, type Socket } from 'node:net';
import { pushBlob, send, sha256, target, processCpu, type Target } from './client.js';
import { canned, startFloor } from './floor.js';
import { formatNumber, formatRatio, markdownTable, median, progress, progressDone } from './lib.js';
import { otherVersion, startOurs, type Peer } from './peers.js';
import { CONFIG_BLOB, LAYER_BLOB, manifest, MANIFEST_TYPE, putManifest } from './workload.js';

const WARMUP = 200;
/** Requests of each row sent to every server before any row is measured. */
const PRELUDE = Number(process.env.PRELUDE ?? 4000);
const SAMPLES = 2000;
const TAGS = 1000;
const REPO = 'bench/floor';

/** One keep-alive connection that sends a request only once the previous answer is read whole. */
class RawClient {
  readonly #socket: Socket;
  #chunks: Buffer[] = [];
  #size = 0;
  #waiting: { head: boolean; done: (status: number) => void; fail: (error: Error) => void } | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (error) => this.#waiting?.fail(error));
    socket.on('close', () => this.#waiting?.fail(new Error('the server closed the connection')));
  }

  static open(url: string): Promise<RawClient> {
    const { hostname, port } = new URL(url);
    return new Promise((done, fail) => {
      const socket = connect(Number(port), hostname, () => done(new RawClient(socket)));
      socket.once('error', fail);
    });
  }

  /** Sends `request` (its bytes, head included) and resolves with the answer's status once all of it is read. */
  send(request: Buffer, head: boolean): Promise<number> {
    return new Promise((done, fail) => {
      this.#waiting = { head, done, fail };
      this.#socket.write(request);
    });
  }

  #onData(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    const waiting = this.#waiting;
    if (waiting === undefined) return;
    const data = this.#chunks.length === 1 ? chunk : Buffer.concat(this.#chunks, this.#size);
    const end = data.indexOf('\r\n\r\n');
    if (end === -1) return;
    const head = data.toString('latin1', 0, end);
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    const total = end + 4 + (waiting.head || length === null ? 0 : Number(length[1]));
    if (data.length < total) return;
    this.#chunks = [];
    this.#size = 0;
    this.#waiting = undefined;
    waiting.done(Number(head.slice(9, 12)));
  }

  close(): void {
    this.#socket.destroy();
  }
}

interface Side {
  name: string;
  client: RawClient;
  pid: number;
}

interface Row {
  label: string;
  method: 'GET' | 'HEAD';
  path: (i: number) => string;
  accept?: string;
}

const tagName = (i: number) => `t${String(i).padStart(4, '0')}`;
const spread = (i: number) => (i * 7919) % TAGS;
const digests = Array.from({ length: TAGS }, (_, i) => sha256(manifest(`floor ${i}`)));
const BLOB = sha256(CONFIG_BLOB);

const ROWS: Row[] = [
  { label: 'manifest GET by tag', method: 'GET', path: (i) => `/v2/${REPO}/manifests/${tagName(spread(i))}`, accept: MANIFEST_TYPE },
  { label: 'manifest HEAD by tag', method: 'HEAD', path: (i) => `/v2/${REPO}/manifests/${tagName(spread(i))}`, accept: MANIFEST_TYPE },
  { label: 'manifest GET by digest', method: 'GET', path: (i) => `/v2/${REPO}/manifests/${digests[spread(i)]}`, accept: MANIFEST_TYPE },
  { label: `blob GET (${CONFIG_BLOB.length} B)`, method: 'GET', path: () => `/v2/${REPO}/blobs/${BLOB}` },
];

/** The request's bytes as a client like curl sends them. */
function rawRequest(row: Row, i: number): Buffer {
  const accept = row.accept === undefined ? '' : `Accept: ${row.accept}\r\n`;
  return Buffer.from(`${row.method} ${row.path(i)} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: regmeta-bench\r\n${accept}\r\n`, 'latin1');
}

async function populate(t: Target): Promise<void> {
  await pushBlob(t, REPO, CONFIG_BLOB);
  await pushBlob(t, REPO, LAYER_BLOB);
  let next = 0;
  const worker = async () => {
    while (next < TAGS) {
      const i = next++;
      await putManifest(t, REPO, tagName(i), manifest(`floor ${i}`));
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}

/** The answers the floor replays: regmeta's to every request of every row. */
async function capture(t: Target): Promise<Record<string, ReturnType<typeof canned>>> {
  const answers: Record<string, ReturnType<typeof canned>> = {};
  for (const row of ROWS) {
    for (let i = 0; i < WARMUP + SAMPLES; i++) {
      const path = row.path(i);
      const key = `${row.method} ${path}`;
      if (key in answers) continue;
      const res = await send(t, row.method, path, row.accept === undefined ? {} : { Accept: row.accept });
      if (res.status !== 200) throw new Error(`${key} answered ${res.status}`);
      answers[key] = canned(res);
    }
  }
  return answers;
}

async function expect200(side: Side, request: Buffer, head: boolean): Promise<void> {
  const status = await side.client.send(request, head);
  if (status !== 200) throw new Error(`${side.name}: answered ${status}: ${request.toString('latin1').split('\r\n')[0]}`);
}

/** One row on every side: times (ms) and server CPU (µs) per request. */
async function measureRow(sides: Side[], row: Row): Promise<{ times: number[][]; cpu: number[] }> {
  const head = row.method === 'HEAD';
  const requests = Array.from({ length: WARMUP + SAMPLES }, (_, i) => rawRequest(row, i));
  for (let i = 0; i < WARMUP; i++) for (const side of sides) await expect200(side, requests[i], head);
  const times = sides.map(() => [] as number[]);
  const before = sides.map((side) => processCpu(side.pid));
  for (let i = 0; i < SAMPLES; i++) {
    if (i % 100 === 0) progress(`floor section, ${row.label}: ${i}/${SAMPLES}`);
    for (let k = 0; k < sides.length; k++) {
      const s = (i + k) % sides.length;
      const start = performance.now();
      await expect200(sides[s], requests[WARMUP + i], head);
      times[s].push(performance.now() - start);
    }
  }
  const cpu = sides.map((side, k) => ((processCpu(side.pid) - before[k]) * 1e6) / SAMPLES);
  return { times, cpu };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/**
 * The floor section: starts `regmeta serve` (and the baseline's when
 * BENCH_BASELINE names one), fills a repository of TAGS tags, starts the
 * floor with regmeta's answers, measures every row. @returns its tables.
 */
export async function keepAliveTable(options: { parentDir: string; baseline?: string }): Promise<string> {
  const peers: Peer[] = [];
  const clients: RawClient[] = [];
  let floor: Awaited<ReturnType<typeof startFloor>> | undefined;
  try {
    progress('floor section: starting');
    peers.push(await startOurs({ parentDir: options.parentDir }));
    if (options.baseline !== undefined) peers.push(await startOurs({ parentDir: options.parentDir, root: options.baseline }));
    const names = ['regmeta', ...(options.baseline === undefined ? [] : ['baseline'])];
    const targets = peers.map((peer, k) => target(names[k], peer.url, 4, peer.pid));
    progress(`floor section: populating ${TAGS} tags`);
    await Promise.all(targets.map(populate));
    const answers = await capture(targets[0]);
    for (const t of targets.slice(1)) await capture(t);
    for (const t of targets) t.agent.destroy();
    floor = await startFloor(answers);
    const urls = [floor.url, ...peers.map((peer) => peer.url)];
    const pids = [floor.pid, ...peers.map((peer) => peer.pid)];
    const sideNames = ['floor', ...names];
    const sides: Side[] = [];
    for (let k = 0; k < urls.length; k++) {
      const client = await RawClient.open(urls[k]);
      clients.push(client);
      sides.push({ name: sideNames[k], client, pid: pids[k] });
    }
    // Unmeasured first: V8 compiles each server's hot paths on background
    // threads during its first few thousand requests, which would land on
    // the first row (the floor's process is as fresh as ours).
    progress('floor section: warming up');
    for (const row of ROWS) for (let i = 0; i < PRELUDE; i++) for (const side of sides) await expect200(side, rawRequest(row, i), row.method === 'HEAD');
    const lines: string[][] = [];
    const cpuLines: string[][] = [];
    for (const row of ROWS) {
      const { times, cpu } = await measureRow(sides, row);
      const medians = times.map(median);
      lines.push([
        row.label,
        ...times.flatMap((t, k) => [formatNumber(medians[k]), formatNumber(percentile(t, 0.9))]),
        ...names.map((_, k) => formatRatio(medians[k + 1] / medians[0])),
      ]);
      cpuLines.push([row.label, ...cpu.map((c) => formatNumber(c)), ...names.map((_, k) => formatRatio(cpu[k + 1] / cpu[0]))]);
    }
    progressDone();
    return [
      markdownTable(
        ['minimal keep-alive client (ms)', ...sideNames.flatMap((n) => [`${n} median`, `${n} p90`]), ...names.map((n) => `${n} / floor`)],
        lines,
      ),
      '',
      markdownTable(['server CPU µs per request', ...sideNames, ...names.map((n) => `${n} / floor`)], cpuLines),
      '',
      `One node:net socket per server, requests one at a time, ${WARMUP} warm-up and ${SAMPLES} measured per row, interleaved; ` +
        `regmeta serve on SQLite with its defaults (request log on, to a file; metrics on), a repository of ${TAGS} tags; ` +
        `the floor a bare node:http server answering the status, headers and bytes regmeta answered` +
        `${options.baseline === undefined ? '' : `; ${otherVersion('baseline')}`}. CPU: user+system from /proc, 10 ms ticks.`,
    ].join('\n');
  } finally {
    for (const client of clients) client.close();
    await floor?.stop();
    for (const peer of peers) await peer.stop();
  }
}
