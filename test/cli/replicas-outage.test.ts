// PostgreSQL SIGKILLed and restarted, ten times, under a push load through
// two `regmeta serve` replicas: no replica dies, every request is answered
// within the bound (503 with Retry-After while the database is away, never
// 500), /healthz answers 200 throughout, writes succeed again on both
// replicas once the database is back, and every push a replica acknowledged
// pulls whole from both afterwards. And PostgreSQL frozen (SIGSTOP:
// connections open, nothing answered): /readyz still answers within its bound.

import { describe, expect, it } from 'vitest';
import { OCI_MANIFEST, sha256 } from '../server/helpers.js';
import { TEST_SETTINGS, type PostgresServer } from '../store/postgres/server.js';
import { makeImage, pullProblem, replicaSuite, until, type Image } from './replicas.js';
import type { Served } from './run.js';

// A commit is acknowledged once its WAL has reached the kernel, so that a
// killed server loses none (the test settings' synchronous_commit=off would
// lose the last few); fsync stays off, as the machine itself does not crash.
const suite = replicaSuite({ settings: TEST_SETTINGS.map((s) => (s.startsWith('synchronous_commit=') ? 'synchronous_commit=on' : s)) });

const REPO = 'outage/app';
const CYCLES = 10;
/** How long PostgreSQL stays dead in each cycle. */
const DOWN_MS = 3000;
/** Every request is answered within this: generous, on a loaded machine ("a few seconds" is the goal). */
const BOUND_MS = 15_000;
/** How long the replicas may take to write again once PostgreSQL is back, before the test gives up on a cycle. */
const RECOVERY_MS = 30_000;

/** One request and its answer: status 0 when none came (refused, reset, or not within the bound). */
interface Seen {
  replica: number;
  what: 'blob' | 'manifest' | 'healthz' | 'readyz' | 'tags';
  status: number;
  retryAfter: string | null;
  start: number;
  end: number;
  error?: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How many of each kind of answer: `readyz 503 without Retry-After: 12`, for a short failure message. */
function tally(seen: Seen[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of seen) {
    const key = `${s.what} ${s.status}${s.status === 503 && s.retryAfter === null ? ' without Retry-After' : ''}${s.error ? ` ${s.error}` : ''}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

class Traffic {
  readonly seen: Seen[] = [];
  /** Per pusher, the tags whose manifest was acknowledged (201), with their image. */
  readonly acked = new Map<string, Image>();
  stopped = false;

  constructor(readonly replicas: Served[]) {}

  /** Sends one request to a replica; its answer (body read) is recorded, whatever it is. */
  async request(replica: number, what: Seen['what'], path: string, init: RequestInit = {}): Promise<number> {
    const start = Date.now();
    const seen: Seen = { replica, what, status: 0, retryAfter: null, start, end: start };
    try {
      const res = await fetch(`${this.replicas[replica].url}${path}`, { ...init, signal: AbortSignal.timeout(BOUND_MS + 5000) });
      await res.arrayBuffer();
      seen.status = res.status;
      seen.retryAfter = res.headers.get('retry-after');
    } catch (error) {
      seen.error = String(error);
    }
    seen.end = Date.now();
    this.seen.push(seen);
    return seen.status;
  }

  /** Pushes image after image (its blobs, then its manifest under a tag of its own) until stopped. */
  async pusher(id: number, replica: number): Promise<void> {
    for (let n = 0; !this.stopped; n++) {
      const image = makeImage(`pusher ${id} image ${n}`);
      const tag = `p${id}-${n}`;
      let pushed = true;
      for (const bytes of image.blobs) {
        const post = { method: 'POST', body: bytes, headers: { 'Content-Type': 'application/octet-stream' } };
        if ((await this.request(replica, 'blob', `/v2/${REPO}/blobs/uploads/?digest=${sha256(bytes)}`, post)) !== 201) {
          pushed = false;
          break;
        }
      }
      if (pushed) {
        const put = { method: 'PUT', body: image.manifest, headers: { 'Content-Type': OCI_MANIFEST } };
        pushed = (await this.request(replica, 'manifest', `/v2/${REPO}/manifests/${tag}`, put)) === 201;
        if (pushed) this.acked.set(tag, image);
      }
      // A client that was refused tries again a little later.
      if (!pushed) await sleep(100);
    }
  }

  /** Asks a replica for /healthz, /readyz and a tag list, over and over, until stopped. */
  async prober(replica: number): Promise<void> {
    while (!this.stopped) {
      await Promise.all([
        this.request(replica, 'healthz', '/healthz'),
        this.request(replica, 'readyz', '/readyz'),
        this.request(replica, 'tags', `/v2/${REPO}/tags/list`),
      ]);
      await sleep(200);
    }
  }

  /** When `replica` first answered a write with 201 after `since`, or undefined. */
  firstWrite(replica: number, since: number): number | undefined {
    const ends = this.seen.filter((s) => s.replica === replica && s.status === 201 && s.end >= since).map((s) => s.end);
    return ends.length === 0 ? undefined : Math.min(...ends);
  }
}

/**
 * Kills PostgreSQL CYCLES times, each once both replicas write (after a
 * random moment of pushes), and restarts it DOWN_MS later; stops early when
 * the replicas do not write again. When it was away, and how long after
 * each restart each replica's first 201 came (undefined: none within RECOVERY_MS).
 */
async function outages(traffic: Traffic, postgres: PostgresServer) {
  const away: { killed: number; restarted: number }[] = [];
  const recovery: (number | undefined)[][] = [];
  const writing = (since: number) => () => [0, 1].every((r) => traffic.firstWrite(r, since) !== undefined);
  const wait = (since: number) => until(writing(since), 'writes on both replicas', RECOVERY_MS / 1000).then(() => true, () => false);
  let since = Date.now();
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    // The outcome of every cycle so far is asserted by the caller.
    if (!(await wait(since))) break;
    await sleep(Math.random() * 500);
    const killed = Date.now();
    postgres.kill();
    await sleep(DOWN_MS);
    await postgres.restart();
    since = Date.now();
    away.push({ killed, restarted: since });
    await wait(since);
    const restarted = since;
    recovery.push([0, 1].map((r) => {
      const first = traffic.firstWrite(r, restarted);
      return first === undefined ? undefined : first - restarted;
    }));
  }
  return { away, recovery };
}

describe('PostgreSQL killed under push load', () => {
  it(`${CYCLES} times: no replica dies, every request is answered (503 with Retry-After while it is away), every acknowledged push pulls`, { timeout: 240_000 }, async () => {
    const { all: replicas } = await suite.cluster(2);
    const traffic = new Traffic(replicas);
    const running = Promise.all([0, 1, 2, 3].map((id) => traffic.pusher(id, id % 2)).concat([0, 1].map((r) => traffic.prober(r))));
    let outcome: Awaited<ReturnType<typeof outages>>;
    try {
      outcome = await outages(traffic, suite.server());
    } finally {
      traffic.stopped = true;
      await running;
    }
    const { away, recovery } = outcome;

    const deaths = replicas.filter((r) => r.child.exitCode !== null || r.child.signalCode !== null);
    const during = (s: Seen) => away.some((o) => s.start >= o.killed && s.start < o.restarted);
    const slowest = Math.max(...traffic.seen.map((s) => s.end - s.start));
    const slowestInOutage = Math.max(...traffic.seen.filter(during).map((s) => s.end - s.start));
    console.info(
      `${traffic.seen.length} requests, ${traffic.acked.size} pushes acknowledged; slowest answer ${slowest} ms (${slowestInOutage} ms while PostgreSQL was away); ` +
        `first write after each restart (ms): ${recovery.map((r) => r.map((ms) => ms ?? 'none').join('/')).join(', ')}`,
    );

    expect(deaths.map((r) => r.stderr().slice(-2000))).toEqual([]);
    expect(tally(traffic.seen.filter((s) => s.status === 0))).toEqual({});
    expect(slowest).toBeLessThan(BOUND_MS);
    expect(tally(traffic.seen.filter((s) => s.what === 'healthz' && s.status !== 200))).toEqual({});
    // A database away is 503 with Retry-After; never 500.
    expect(tally(traffic.seen.filter((s) => s.status >= 500 && (s.status !== 503 || s.retryAfter === null)))).toEqual({});
    const inOutage = traffic.seen.filter(during);
    for (const what of ['blob', 'readyz', 'tags'] as const) {
      expect(inOutage.filter((s) => s.what === what && s.status === 503).length, `${what} answered 503 during the outages`).toBeGreaterThan(0);
    }
    expect(recovery.flat().filter((ms) => ms === undefined)).toEqual([]);
    expect(away.length).toBe(CYCLES);

    // Every acknowledged push pulls whole from both replicas.
    expect(traffic.acked.size).toBeGreaterThan(CYCLES);
    for (const [tag, image] of traffic.acked) {
      for (const replica of replicas) expect(await pullProblem(replica.url, REPO, tag, image)).toBe('');
    }
  });

  it('frozen (connections open, nothing answered): /readyz answers 503 with Retry-After within the bound, /healthz 200, and 200 again once it answers', async () => {
    const {
      all: [replica],
    } = await suite.cluster(1);
    const postgres = suite.server();
    const readyz = async () => {
      const start = Date.now();
      const res = await fetch(`${replica.url}/readyz`, { signal: AbortSignal.timeout(BOUND_MS) });
      const report = (await res.json()) as { checks: { database: { status: string; error?: string } } };
      return { status: res.status, retryAfter: res.headers.get('retry-after'), database: report.checks.database, ms: Date.now() - start };
    };
    // Its pool holds a connection, on which the probe's query goes and waits.
    expect((await readyz()).status).toBe(200);
    postgres.freeze();
    try {
      const frozen = await readyz();
      console.info(`/readyz answered ${frozen.status} in ${frozen.ms} ms on a frozen server`);
      expect(frozen).toMatchObject({ status: 503, retryAfter: '1', database: { status: 'failed', error: 'TIMEOUT' } });
      expect((await fetch(`${replica.url}/healthz`, { signal: AbortSignal.timeout(BOUND_MS) })).status).toBe(200);
    } finally {
      postgres.thaw();
    }
    await until(async () => (await readyz()).status === 200, '/readyz 200 again', BOUND_MS / 1000);
  });
});
