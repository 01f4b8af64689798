// The upload-session benchmark: what it costs that a
// chunked upload's sha256 state cannot follow it to another process (Node's
// Hash cannot be exported), so a process that takes up a session without it
// hashes the committed bytes again from the session's file.
//
// How it measures, and why:
// - Two real `regmeta serve` processes share one SQLite file and one data
//   directory (REGMETA_BENCH_BLOB_DIR, else the system's temporary
//   directory): the same sharing as replicas on PostgreSQL, without a
//   database server's own cost in the numbers.
// - One blob of 256 MiB (REGMETA_BENCH_UPLOAD_MIB), pushed as a POST, four
//   PATCHes of a quarter each with Content-Range, and a PUT with the digest,
//   from this process's memory, each on a connection of its own. Rows:
//   - one process: every request to A: the hash is fed as bytes arrive, never re-read;
//   - resumed once: the first half to A, the rest and the PUT to B (B
//     hashes the first 128 MiB again, once);
//   - alternating: each request to the other process than the last (each
//     PATCH and the PUT hash everything committed so far again: the worst case);
//   - sha256 of the file: the finished blob's file read back in 1 MiB pieces
//     and hashed, as a re-hash reads a session's file (from the page cache):
//     what taking up a session of that size costs at most;
//   - sha256 alone: node:crypto over the same bytes in memory, the floor any
//     push pays.
// - Runs of the three upload rows are interleaved, RUNS times (5), and each
//   row's median is reported, with its ratio to one process and to sha256 alone.
// - Progress goes to stderr, and only on a terminal; the table goes to stdout.

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { formatNumber, formatRatio, markdownTable, median, progress, progressDone } from './lib.js';

const MIB = 1024 * 1024;
const SIZE = Number(process.env.REGMETA_BENCH_UPLOAD_MIB ?? 256) * MIB;
const CHUNKS = 4;
const RUNS = 5;
const BIN = resolve(import.meta.dirname, '../bin/regmeta.js');

interface Server {
  url: string;
  child: ChildProcess;
}

/** `regmeta serve` on `data`, resolved once it prints its port. */
function serve(data: string): Promise<Server> {
  const child = spawn(process.execPath, [BIN, 'serve', '--listen', '127.0.0.1:0', '--data', data], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((done, fail) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += String(chunk);
      const match = /"port":(\d+)/.exec(out);
      if (match) {
        child.stdout!.removeAllListeners('data');
        // The request log stays on: a refused request is what a failed run needs explained.
        child.stdout!.on('data', (more: Buffer) => {
          for (const line of String(more).split('\n')) if (/"status":[45]\d\d/.test(line)) process.stderr.write(`${line}\n`);
        });
        done({ url: `http://127.0.0.1:${match[1]}`, child });
      }
    });
    child.once('exit', (code) => fail(new Error(`regmeta serve exited (${code}): ${out}`)));
  });
}

/**
 * One request on a connection of its own: a keep-alive connection that sat
 * idle while the other process worked may be closed by the server just as
 * the next PATCH (which no client retries) goes out on it.
 * @returns the status and the Location header.
 */
function send(method: string, url: string, headers: Record<string, string | number> = {}, body?: Buffer): Promise<{ status: number; location?: string }> {
  return new Promise((done, fail) => {
    const req = request(url, { method, agent: false, headers: { ...headers, 'Content-Length': body?.length ?? 0 } }, (res) => {
      res.resume();
      res.on('end', () => done({ status: res.statusCode ?? 0, location: res.headers.location }));
    });
    req.on('error', fail);
    req.end(body);
  });
}

/** One chunked upload of `blob`; request i goes to `route(i)` (POST is 0, the PATCHes 1..CHUNKS, the PUT CHUNKS + 1). @returns seconds. */
async function upload(blob: Buffer, digest: string, route: (i: number) => Server): Promise<number> {
  const started = performance.now();
  const { location } = await send('POST', `${route(0).url}/v2/bench/upload/blobs/uploads/`);
  const size = blob.length / CHUNKS;
  for (let i = 0; i < CHUNKS; i++) {
    const headers = { 'Content-Type': 'application/octet-stream', 'Content-Range': `${i * size}-${(i + 1) * size - 1}` };
    const { status } = await send('PATCH', `${route(i + 1).url}${location}`, headers, blob.subarray(i * size, (i + 1) * size));
    if (status !== 202) throw new Error(`PATCH ${i}: ${status}`);
  }
  const { status } = await send('PUT', `${route(CHUNKS + 1).url}${location}?digest=${digest}`);
  if (status !== 201) throw new Error(`PUT: ${status}`);
  return (performance.now() - started) / 1000;
}

async function hashFile(file: string): Promise<number> {
  const started = performance.now();
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: MIB })) hash.update(chunk as Buffer);
  hash.digest();
  return (performance.now() - started) / 1000;
}

function hashAlone(blob: Buffer): number {
  const started = performance.now();
  createHash('sha256').update(blob).digest();
  return (performance.now() - started) / 1000;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(process.env.REGMETA_BENCH_BLOB_DIR ?? tmpdir(), 'regmeta-bench-upload-'));
  const servers: Server[] = [];
  try {
    servers.push(await serve(dir), await serve(dir));
    const [a, b] = servers;
    const blob = randomFillSync(Buffer.alloc(SIZE));
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const rows: [string, (i: number) => Server][] = [
      ['one process', () => a],
      ['resumed once on another process', (i) => (i <= CHUNKS / 2 ? a : b)],
      ['alternating processes (every request)', (i) => (i % 2 === 0 ? a : b)],
    ];
    const samples = new Map<string, number[]>(rows.map(([name]) => [name, []]));
    samples.set('sha256 of the file read back (a re-hash of it all)', []);
    samples.set('sha256 alone (node:crypto, in memory)', []);
    const file = join(dir, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7));
    // A warm-up, untimed: both processes loaded, the page cache full.
    await upload(blob, digest, rows[2][1]);
    for (let run = 1; run <= RUNS; run++) {
      for (const [name, route] of rows) {
        progress(`run ${run}/${RUNS}: ${name}`);
        samples.get(name)!.push(await upload(blob, digest, route));
      }
      samples.get('sha256 of the file read back (a re-hash of it all)')!.push(await hashFile(file));
      samples.get('sha256 alone (node:crypto, in memory)')!.push(hashAlone(blob));
    }
    progressDone();
    const medians = new Map([...samples].map(([name, values]) => [name, median(values)]));
    const base = medians.get('one process')!;
    const floor = medians.get('sha256 alone (node:crypto, in memory)')!;
    const table = [...medians].map(([name, seconds]) => [
      name,
      formatNumber(seconds),
      formatNumber(SIZE / MIB / seconds),
      formatRatio(seconds / base),
      formatRatio(seconds / floor),
    ]);
    console.log(`Chunked upload of ${SIZE / MIB} MiB in ${CHUNKS} PATCHes + PUT, two regmeta serve processes on one SQLite file and data directory, median of ${RUNS}\n`);
    console.log(markdownTable(['row', 'seconds', 'MiB/s', 'vs one process', 'vs sha256 alone'], table));
  } finally {
    for (const server of servers) server.child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
