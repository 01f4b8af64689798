// The throughput rows of the server benchmark: several clients at
// once, which is where a second replica could help and where anything that
// serializes replicas would show. One registry at a time (concurrent clients
// of two registries would measure each other), the order rotating over the
// rounds; a row is the median of its rounds, in requests per second.
//
// - Tag pushes: each client PUTs manifests by tag into a repository of its
//   own, so nothing in the data makes them wait for one another; what they
//   share is the event log (one sequence, in commit order) and the machine.
// - GETs by tag: the same clients reading back what they pushed.

import { availableParallelism } from 'node:os';
import { expectStatus, pushBlob, targetCpu, type Target } from './client.js';
import { formatNumber, formatRatio, markdownTable, median, progress, progressDone } from './lib.js';
import { PG1, PG2, SQLITE } from './sides.js';
import { CONFIG_BLOB, LAYER_BLOB, manifest, MANIFEST_TYPE, putManifest } from './workload.js';

const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 8);
const ROUNDS = 3;
const PUSHES = 60;
const GETS = 300;

const repo = (client: number) => `bench/client-${client}`;
const tag = (round: number, j: number) => `r${round}-${j}`;

interface Workload {
  label: string;
  /** Requests per client per round. */
  requests: number;
  /** Client `client`'s request `j` of round `round`. */
  run: (t: Target, client: number, round: number, j: number) => Promise<void>;
}

const workloads: Workload[] = [
  {
    label: 'manifest PUT by tag, a repository per client',
    requests: PUSHES,
    run: (t, client, round, j) => putManifest(t, repo(client), tag(round, j), manifest(`client ${client} ${round} ${j}`)),
  },
  {
    label: 'manifest GET by tag',
    requests: GETS,
    run: async (t, client, round, j) => void (await expectStatus(t, 200, 'GET', `/v2/${repo(client)}/manifests/${tag(round, j % PUSHES)}`, { Accept: MANIFEST_TYPE })),
  },
];

/** One round of `w` on `t`: every client at once. @returns requests per second, and CPU µs per request (server, database). */
async function round(t: Target, w: Workload, r: number): Promise<{ rate: number; cpu: number; database: number }> {
  const before = targetCpu(t);
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, client) => {
      for (let j = 0; j < w.requests; j++) await w.run(t, client, r, j);
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const after = targetCpu(t);
  const n = CLIENTS * w.requests;
  return { rate: n / seconds, cpu: ((after.server - before.server) * 1e6) / n, database: ((after.database - before.database) * 1e6) / n };
}

/** The throughput table of `targets` (each with at least CLIENTS sockets per replica). */
export async function throughputTable(targets: Target[]): Promise<string> {
  for (const t of targets) {
    for (let client = 0; client < CLIENTS; client++) {
      progress(`throughput: pushing blobs to ${t.name}`);
      await pushBlob(t, repo(client), CONFIG_BLOB);
      await pushBlob(t, repo(client), LAYER_BLOB);
    }
  }
  const names = targets.map((t) => t.name);
  const rows: string[][] = [];
  for (const w of workloads) {
    const results = targets.map(() => [] as Awaited<ReturnType<typeof round>>[]);
    for (let r = 0; r < ROUNDS; r++) {
      for (let k = 0; k < targets.length; k++) {
        const i = (r + k) % targets.length;
        progress(`${w.label}: round ${r + 1}/${ROUNDS}, ${targets[i].name}`);
        results[i].push(await round(targets[i], w, r));
      }
    }
    const rate = new Map(names.map((name, i) => [name, median(results[i].map((x) => x.rate))]));
    const cpu = names.map((_, i) => {
      const server = median(results[i].map((x) => x.cpu));
      const database = median(results[i].map((x) => x.database));
      return database > 0 ? `${formatNumber(server)} + ${formatNumber(database)}` : formatNumber(server);
    });
    rows.push([
      w.label,
      String(CLIENTS),
      ...names.map((name) => formatNumber(rate.get(name)!)),
      formatRatio(rate.get(PG2)! / rate.get(PG1)!),
      formatRatio(rate.get(PG1)! / rate.get(SQLITE)!),
      ...cpu,
    ]);
  }
  progressDone();
  return [
    markdownTable(['throughput (requests/s, median of rounds)', 'clients', ...names, `${PG2} / ${PG1}`, `${PG1} / ${SQLITE}`, ...names.map((name) => `${name} CPU µs/req`)], rows),
    '',
    `${CLIENTS} clients at once, each on its own keep-alive connection (one per replica for ${PG2}, requests round-robin), one registry at a time, ` +
      `${ROUNDS} rounds in rotating order; ${PUSHES} PUTs or ${GETS} GETs per client per round. CPU µs per request: the registry's processes ` +
      `(+ the PostgreSQL backends serving its database), user+system from /proc. Everything shares this machine's ${availableParallelism()} cores.`,
  ].join('\n');
}
