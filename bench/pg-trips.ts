// Where a request's time goes on PostgreSQL, counted: how many round trips to
// the database and how many statements each registry operation costs.
//
//   npm run bench:pg-trips            (BENCH_TRIPS_SHOW=1 also prints one sample's messages)
//
// `regmeta serve --database` talks to PostgreSQL through a proxy here that
// reads the protocol's messages from the client (Parse, Bind, Execute,
// Query, Sync) and counts round trips: a round trip is the client sending
// after the server has answered, on one connection; statements pipelined
// behind one another (BEGIN with the first statement, COMMIT with the last)
// are one trip. Each operation runs WARM times unmeasured (statements
// prepared, pool connections open), then SAMPLES times counted; figures are
// per operation.
//
// Then what concurrent writers wait for: CLIENTS clients push manifests by
// tag, each to a repository of its own, to one replica and then to two
// (round-robin), on a database of their own, while pg_stat_activity is
// sampled every few milliseconds: the share of samples in which a backend
// of that database was running, waiting for a lock (and which), for the
// client (idle in transaction: regmeta's turn), or for I/O.

import { createServer, connect, type Socket } from 'node:net';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { expectStatus, pushBlob, sha256, target, type Target } from './client.js';
import postgres from 'postgres';
import { formatNumber, markdownTable } from './lib.js';
import { startOurs, stopAll, type Peer } from './peers.js';
import { replicated } from './client.js';
import { BENCH_SETTINGS, startPostgres } from './postgres.js';
import { CONFIG_BLOB, LAYER_BLOB, manifest, MANIFEST_TYPE, putManifest } from './workload.js';

const WARM = 30;
const CLIENTS = 8;
const PUSHES = 150;
const SAMPLES = 50;
const SHOW = process.env.BENCH_TRIPS_SHOW === '1';
const PARENT = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

interface Counts {
  trips: number;
  statements: number;
  parses: number;
  log: string[];
}

const counts: Counts = { trips: 0, statements: 0, parses: 0, log: [] };

/** Reads the client's side of one connection: the startup packet, then typed messages. */
function clientReader(): (chunk: Buffer) => void {
  let pending = Buffer.alloc(0);
  let started = false;
  const names = new Map<string, string>();
  return (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      if (!started) {
        if (pending.length < 4) return;
        const length = pending.readInt32BE(0);
        if (pending.length < length) return;
        pending = pending.subarray(length);
        started = true;
        continue;
      }
      if (pending.length < 5) return;
      const type = String.fromCharCode(pending[0]);
      const length = pending.readInt32BE(1);
      if (pending.length < 1 + length) return;
      const body = pending.subarray(5, 1 + length);
      pending = pending.subarray(1 + length);
      const cstrings = body.toString('utf8').split('\0');
      if (type === 'P') {
        counts.parses++;
        names.set(cstrings[0], cstrings[1]);
        if (SHOW) counts.log.push(`  Parse ${cstrings[0] || '(unnamed)'}: ${cstrings[1].replace(/\s+/g, ' ').slice(0, 160)}`);
      } else if (type === 'B') {
        if (SHOW) counts.log.push(`  Bind+Execute ${cstrings[1] || '(unnamed)'}: ${(names.get(cstrings[1]) ?? '?').replace(/\s+/g, ' ').slice(0, 100)}`);
      } else if (type === 'E') {
        counts.statements++;
      } else if (type === 'Q') {
        counts.statements++;
        if (SHOW) counts.log.push(`  Query: ${cstrings[0].replace(/\s+/g, ' ').slice(0, 160)}`);
      }
    }
  };
}

/** A TCP proxy to `port` counting round trips and statements. @returns its port and a close(). */
async function countingProxy(port: number): Promise<{ port: number; close(): void }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    const read = clientReader();
    // The server has answered since the client last sent: the client's next send starts a trip.
    let answered = true;
    client.on('data', (chunk: Buffer) => {
      if (answered) {
        counts.trips++;
        if (SHOW) counts.log.push('-- trip');
      }
      answered = false;
      read(chunk);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      answered = true;
      client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    port: (server.address() as { port: number }).port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

const REPO = 'trips/repo';
const ACCEPT = { Accept: MANIFEST_TYPE };

/** The operations counted, by name; sample `i` of each touches its own tag or blob where it writes. */
function operations(digests: string[]): [string, (t: Target, i: number) => Promise<unknown>][] {
  const small = (i: number) => Buffer.concat([Buffer.from(`trip blob ${i}\n`), LAYER_BLOB.subarray(0, 512)]);
  return [
    ['manifest PUT by tag (new manifest, new tag)', (t, i) => putManifest(t, REPO, `put-${i}`, manifest(`put ${i}`))],
    ['manifest PUT by tag (tag moved to an existing manifest)', (t, i) => putManifest(t, REPO, 'moving', manifest(`base ${i % 2}`))],
    ['manifest GET by tag', (t, i) => expectStatus(t, 200, 'GET', `/v2/${REPO}/manifests/base-${i % 10}`, ACCEPT)],
    ['manifest HEAD by tag', (t, i) => expectStatus(t, 200, 'HEAD', `/v2/${REPO}/manifests/base-${i % 10}`, ACCEPT)],
    ['manifest GET by digest', (t, i) => expectStatus(t, 200, 'GET', `/v2/${REPO}/manifests/${digests[i % 10]}`, ACCEPT)],
    ['manifest GET of an unknown tag (404)', (t) => expectStatus(t, 404, 'GET', `/v2/${REPO}/manifests/nope`, ACCEPT)],
    ['tag list, n=100', (t) => expectStatus(t, 200, 'GET', `/v2/${REPO}/tags/list?n=100`)],
    ['catalog', (t) => expectStatus(t, 200, 'GET', '/v2/_catalog')],
    ['blob HEAD', (t) => expectStatus(t, 200, 'HEAD', `/v2/${REPO}/blobs/${sha256(LAYER_BLOB)}`)],
    ['blob upload (POST, PUT) of a new blob', (t, i) => pushBlob(t, REPO, small(i))],
    ['manifest DELETE by digest (one tag)', (t, i) => expectStatus(t, 202, 'DELETE', `/v2/${REPO}/manifests/${sha256(manifest(`put ${i}`))}`)],
  ];
}

let database = '';

/** The server's execution time (ms) of `database`'s statements since the last reset, and the costliest one with its share. */
async function statementTimes(sql: postgres.Sql, db: string): Promise<{ total: number; top: string }> {
  const rows = await sql<{ query: string; time: number }[]>`
    SELECT s.query, s.total_exec_time AS time FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
    WHERE d.datname = ${db} ORDER BY s.total_exec_time DESC`;
  const total = rows.reduce((sum, row) => sum + Number(row.time), 0);
  const top = rows[0] ? `${rows[0].query.replace(/\s+/g, ' ').slice(0, 60)}… (${Math.round((Number(rows[0].time) / total) * 100)}%)` : '—';
  return { total, top };
}

async function main(): Promise<void> {
  // pg_stat_statements with track=all: the time the server spends executing each operation's statements, foreign-key checks included.
  const pg = await startPostgres({ settings: [...BENCH_SETTINGS, 'shared_preload_libraries=pg_stat_statements', 'pg_stat_statements.track=all'], parentDir: PARENT });
  const stats = postgres(pg.url, { max: 1, onnotice: () => {} });
  await stats`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`;
  const proxy = await (async () => {
    const url = new URL(await pg.createDatabase());
    database = url.pathname.slice(1);
    const counting = await countingProxy(Number(url.port));
    url.port = String(counting.port);
    return { counting, url: url.toString() };
  })();
  try {
    const peer = await startOurs({ parentDir: PARENT, args: ['--database', proxy.url] });
    const t = target('PG', peer.url, 1, peer.pid);
    await pushBlob(t, REPO, CONFIG_BLOB);
    await pushBlob(t, REPO, LAYER_BLOB);
    const digests: string[] = [];
    for (let i = 0; i < 10; i++) {
      await putManifest(t, REPO, `base-${i}`, manifest(`base ${i}`));
      digests.push(sha256(manifest(`base ${i}`)));
    }
    const rows: string[][] = [];
    const ops = operations(digests);
    // Every operation warmed first (its samples numbered past the counted ones), so that nothing counted prepares a statement.
    for (const [, run] of ops) for (let i = 0; i < WARM; i++) await run(t, SAMPLES + i);
    for (const [name, run] of ops) {
      await new Promise((r) => setTimeout(r, 50));
      await stats`SELECT pg_stat_statements_reset()`;
      Object.assign(counts, { trips: 0, statements: 0, parses: 0, log: [] });
      for (let i = 0; i < SAMPLES; i++) {
        if (SHOW && i === 1) counts.log.push('== next sample');
        await run(t, i);
      }
      await new Promise((r) => setTimeout(r, 50));
      const per = (n: number) => (n / SAMPLES).toFixed(2).replace(/\.00$/, '');
      const executed = await statementTimes(stats, database);
      rows.push([name, per(counts.trips), per(counts.statements), per(counts.parses), formatNumber((executed.total * 1000) / SAMPLES), executed.top]);
      if (SHOW) console.error(`${name}:\n${counts.log.slice(0, counts.log.indexOf('== next sample')).join('\n')}\n`);
    }
    t.agent.destroy();
    const waits = await waitTable(pg.url, await pg.createDatabase());
    console.log(markdownTable(['operation (per request)', 'round trips', 'statements', 'of them prepared anew', 'server execution µs', 'the costliest statement (share of the time)'], rows));
    console.log(
      `\nregmeta serve --database on PostgreSQL ${pg.version} through a counting proxy; ${SAMPLES} requests per operation after ${WARM} unmeasured ones. ` +
        'A round trip: the client sending on a connection after the server answered there (pipelined statements count once); ' +
        'statements: Execute and simple Query messages, BEGIN and COMMIT included; server execution: total_exec_time of pg_stat_statements (track=all: ' +
        'foreign-key checks and cascades included, COMMIT\'s WAL flush too) per request.',
    );
    console.log(`\n${waits}`);
  } finally {
    await stopAll();
    await stats.end();
    proxy.counting.close();
    await pg.stop();
  }
}

/** What the backends of `database` are doing, sampled until `done` settles: counts by state and wait event. */
async function sampleWaits(url: string, database: string, done: Promise<unknown>): Promise<Map<string, number>> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const seen = new Map<string, number>();
  let finished = false;
  void done.finally(() => (finished = true));
  try {
    while (!finished) {
      const rows = await sql<{ what: string }[]>`
        SELECT CASE
          WHEN state = 'active' AND wait_event IS NULL THEN 'running'
          WHEN state = 'active' THEN wait_event_type || ': ' || wait_event
          WHEN state LIKE 'idle in transaction%' THEN 'idle in transaction (waiting for regmeta)'
          ELSE 'idle (no transaction)' END AS what
        FROM pg_stat_activity WHERE datname = ${database} AND pid <> pg_backend_pid()`;
      for (const { what } of rows) seen.set(what, (seen.get(what) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 3));
    }
  } finally {
    await sql.end();
  }
  return seen;
}

/** CLIENTS concurrent pushers to one and to two replicas on `databaseUrl`, with the backends' waits sampled. */
async function waitTable(serverUrl: string, databaseUrl: string): Promise<string> {
  const database = new URL(databaseUrl).pathname.slice(1);
  const shared = `${PARENT}/regmeta-trips-${process.pid}`;
  const peers: Peer[] = [];
  for (let i = 0; i < 2; i++) peers.push(await startOurs({ parentDir: PARENT, dataDir: shared, args: ['--database', databaseUrl] }));
  const members = peers.map((peer, i) => target(`replica ${i + 1}`, peer.url, CLIENTS, peer.pid));
  const columns: { name: string; rate: number; seen: Map<string, number> }[] = [];
  for (const [name, t] of [['1 replica', members[0]], ['2 replicas', replicated('2 replicas', members)]] as const) {
    for (let c = 0; c < CLIENTS; c++) {
      await pushBlob(t, `waits/${c}`, CONFIG_BLOB);
      await pushBlob(t, `waits/${c}`, LAYER_BLOB);
    }
    const start = performance.now();
    const pushing = Promise.all(
      Array.from({ length: CLIENTS }, async (_, c) => {
        for (let j = 0; j < PUSHES; j++) await putManifest(t, `waits/${c}`, `${name.replace(' ', '-')}-${j}`, manifest(`waits ${name} ${c} ${j}`));
      }),
    );
    const seen = await sampleWaits(serverUrl, database, pushing);
    await pushing;
    columns.push({ name, rate: (CLIENTS * PUSHES) / ((performance.now() - start) / 1000), seen });
  }
  for (const m of members) m.agent.destroy();
  await Promise.all(peers.map((peer) => peer.stop()));
  const states = [...new Set(columns.flatMap((c) => [...c.seen.keys()]))].sort();
  const share = (c: (typeof columns)[number], state: string) => {
    const total = [...c.seen.values()].reduce((a, b) => a + b, 0);
    return `${(((c.seen.get(state) ?? 0) / total) * 100).toFixed(1)}%`;
  };
  return [
    markdownTable(
      ['backend state, sampled during concurrent pushes', ...columns.map((c) => c.name)],
      [['manifest PUTs per second', ...columns.map((c) => formatNumber(c.rate))], ...states.map((state) => [state, ...columns.map((c) => share(c, state))])],
    ),
    '',
    `${CLIENTS} clients at once, each pushing ${PUSHES} manifests by tag to a repository of its own; pg_stat_activity of the database sampled every ~3 ms; ` +
      'a share is the fraction of (backend, sample) pairs in that state.',
  ].join('\n');
}

main().catch(async (error) => {
  console.error(error instanceof Error ? error.stack : error);
  await stopAll();
  process.exitCode = 1;
});
