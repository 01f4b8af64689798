// The password-check benchmark: how much a
// flood of wrong passwords slows everyone else down.
//
// How it measures, and why:
// - The registry runs in this process on loopback with an htpasswd of cost-10
//   bcrypt entries (a realistic cost: tens of ms per check in pure JS).
// - The legitimate client sends GET /v2/ every 10 ms for 5 s on its own keep-alive
//   connection with credentials the server has already verified (cached), so
//   its latency is what any request pays while the server is busy.
// - The flood is 32 clients on a thread of their own, each on its own
//   keep-alive connection, sending GET /v2/ with a wrong password for a real
//   user back to back.
// - Every client is on loopback, so they share one address: the row with the
//   failure limit lifted shows what the password checks themselves cost; the
//   row with the default limits shows what the limiter leaves of the flood.
// - The last row floods with requests carrying no credentials, answered 401
//   without any password check: what a flood of cheap requests costs by its
//   volume alone, to read the 429 row against.
// - A phase takes at least 5 samples, so against a server that takes seconds
//   per request it runs longer than 5 s.
// - Progress goes to stderr, and only on a terminal; the table goes to stdout.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import bcrypt from 'bcryptjs';
import { openStore } from 'regmeta';
import { closeRegistry, createRegistry, type RegistryOptions } from 'regmeta/server';
import { formatNumber, formatRatio, markdownTable, median, progress, progressDone } from './lib.js';

const COST = 10;
const FLOOD_CLIENTS = 32;
const PHASE_MS = 5000;
const INTERVAL_MS = 10;
const MIN_SAMPLES = 5;
const WARMUP_MS = 1000;

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const LEGIT = basic('legit', 'legit-pw');
const WRONG = basic('victim', 'not-the-password');

/** One GET /v2/ on `agent`; resolves with the status and the milliseconds it took. */
function get(url: string, agent: Agent, authorization: string): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  return new Promise((done, fail) => {
    const req = request(`${url}/v2/`, { agent, headers: { Authorization: authorization } }, (res) => {
      res.resume();
      res.on('end', () => done({ status: res.statusCode ?? 0, ms: performance.now() - started }));
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end();
  });
}

/**
 * Legitimate requests, one every INTERVAL_MS, for `duration` ms (and at
 * least MIN_SAMPLES, for a server that takes seconds to answer).
 * @throws Error if one is refused.
 */
async function sample(url: string, label: string, duration: number): Promise<number[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const times: number[] = [];
  const until = performance.now() + duration;
  try {
    while (times.length < MIN_SAMPLES || performance.now() < until) {
      const { status, ms } = await get(url, agent, LEGIT);
      if (status !== 200) throw new Error(`the legitimate request answered ${status}`);
      times.push(ms);
      progress(`${label}: ${times.length} samples`);
      await new Promise((resolve) => setTimeout(resolve, INTERVAL_MS));
    }
  } finally {
    agent.destroy();
  }
  return times;
}

// The flood runs on its own thread, as an attacker runs on their own
// machine: on the event loop it would slow the server down by its own work.
// Plain JavaScript in a string, so the thread needs no TypeScript loader.
const FLOOD_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const { Agent, request } = require('node:http');
const { url, clients, authorization } = workerData;
let running = true;
const statuses = {};
parentPort.on('message', () => { running = false; });
const get = (agent) => new Promise((done) => {
  const req = request(url + '/v2/', { agent, headers: authorization ? { Authorization: authorization } : {} }, (res) => {
    res.resume();
    res.on('end', () => done(res.statusCode));
    res.on('error', () => done(0));
  });
  req.on('error', () => done(0));
  req.end();
});
Promise.all(Array.from({ length: clients }, async () => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  while (running) {
    const status = await get(agent);
    statuses[status] = (statuses[status] ?? 0) + 1;
  }
  agent.destroy();
})).then(() => parentPort.postMessage(statuses));
`;

/**
 * Starts FLOOD_CLIENTS clients sending `authorization` (none when undefined);
 * stop() ends them and returns how many of each status they got.
 */
function flood(url: string, authorization: string | undefined): { stop: () => Promise<Record<string, number>> } {
  const worker = new Worker(FLOOD_CODE, { eval: true, workerData: { url, clients: FLOOD_CLIENTS, authorization } });
  const result = new Promise<Record<string, number>>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return {
    async stop() {
      worker.postMessage('stop');
      const statuses = await result;
      await worker.terminate();
      return statuses;
    },
  };
}

async function measure(
  label: string,
  options: Omit<RegistryOptions, 'store' | 'dataDir'>,
  authorization: string | undefined,
  dir: string,
): Promise<string[]> {
  const dataDir = mkdtempSync(path.join(dir, 'data-'));
  const store = openStore(path.join(dataDir, 'metadata.db'), { durability: 'normal' });
  const server: Server = createRegistry({ store, dataDir, ...options });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    // The first request puts the credentials in the cache.
    await sample(url, `${label}, warm-up`, WARMUP_MS);
    const idle = median(await sample(url, `${label}, idle`, PHASE_MS));
    const attack = flood(url, authorization);
    await new Promise((resolve) => setTimeout(resolve, WARMUP_MS));
    const busy = await sample(url, `${label}, flood`, PHASE_MS);
    const statuses = await attack.stop();
    progressDone();
    const answers = Object.entries(statuses).map(([status, n]) => `${n}× ${status}`).join(', ');
    return [label, String(busy.length), formatNumber(idle), formatNumber(median(busy)), formatRatio(median(busy) / idle), answers];
  } finally {
    await closeRegistry(server, 2000);
    store.close();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'regmeta-bench-auth-'));
  try {
    const htpasswd = path.join(dir, 'htpasswd');
    writeFileSync(htpasswd, `legit:${bcrypt.hashSync('legit-pw', COST)}\nvictim:${bcrypt.hashSync('victim-pw', COST)}\n`);
    const rows = [
      await measure('wrong passwords, failure limit lifted', { htpasswd, maxFailedLoginsPerAddress: 0 }, WRONG, dir),
      await measure('wrong passwords, default limits', { htpasswd }, WRONG, dir),
      await measure('no credentials (no password check)', { htpasswd }, undefined, dir),
    ];
    console.log(`Legitimate request: GET /v2/ with cached credentials every ${INTERVAL_MS} ms; entries at bcrypt cost ${COST}.\n`);
    console.log(
      markdownTable(['flood of 32 clients', 'flood samples', 'idle median ms', 'flood median ms', 'flood / idle', 'flood answers'], rows, ['l', 'r', 'r', 'r', 'r', 'l']),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
