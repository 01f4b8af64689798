// Many manifest pulls of one reference over real HTTP, and the store calls
// a server made meanwhile, for the pull statistics tests: the single-server
// ones and the replicas'.

import { find, parseExposition } from '../server/prometheus.js';
import { OCI_MANIFEST } from '../server/helpers.js';

/** `n` manifest requests (GET or HEAD) of `repo`'s `reference` at `url`, 8 at a time, each to be answered 200. */
export async function pullMany(url: string, repo: string, reference: string, n: number, method = 'GET'): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const res = await fetch(`${url}/v2/${repo}/manifests/${reference}`, { method, headers: { Accept: OCI_MANIFEST } });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`${method} ${repo}:${reference}: ${res.status}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, n) }, worker));
}

/** The store calls the server made so far, by operation (its metrics' latency histogram counts each). */
export async function storeCalls(url: string): Promise<Map<string, number>> {
  const e = parseExposition(await (await fetch(`${url}/metrics`)).text());
  return new Map(find(e, 'regmeta_store_operation_duration_seconds_count').map((s) => [s.labels.operation, s.value]));
}

/** The calls of each operation made between two readings of storeCalls, those that made none left out. */
export function callsBetween(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const delta: Record<string, number> = {};
  for (const [operation, count] of after) if (count !== (before.get(operation) ?? 0)) delta[operation] = count - (before.get(operation) ?? 0);
  return delta;
}

