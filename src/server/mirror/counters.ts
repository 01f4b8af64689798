// The mirrors' counters for the registry's metrics: plain numbers on the
// pull path (a Map lookup and an addition), handed to prom-client when
// scraped, as src/server/metrics.ts does for requests. Labelled by the
// mirror's prefix, never by its URL or credentials.

import { Counter, type Registry as PromRegistry } from 'prom-client';
import type { MirrorCounters } from './types.js';

/** One mirror's counts. */
interface MirrorCell {
  /** By `kind result`. */
  pulls: Map<string, number>;
  upstreamBytes: number;
  upstreamErrors: number;
}

/**
 * Counters registered in `registers`: regmeta_mirror_pulls_total{mirror,
 * kind, result}, regmeta_mirror_upstream_bytes_total{mirror},
 * regmeta_mirror_upstream_errors_total{mirror}.
 * @throws Error when a metric of one of those names is registered already.
 */
export function mirrorCounters(registers: PromRegistry[]): MirrorCounters {
  const cells = new Map<string, MirrorCell>();
  const cell = (prefix: string): MirrorCell => {
    let found = cells.get(prefix);
    if (found === undefined) cells.set(prefix, (found = { pulls: new Map(), upstreamBytes: 0, upstreamErrors: 0 }));
    return found;
  };
  new Counter({
    name: 'regmeta_mirror_pulls_total',
    help: 'Pulls in a mirror\'s namespace, by mirror prefix, kind (manifest, blob, tags, referrers) and result (hit: from the cache; miss: from the upstream; revalidated: a tag checked unchanged; stale: a cached answer served because the upstream could not answer).',
    labelNames: ['mirror', 'kind', 'result'],
    registers,
    collect() {
      this.reset();
      for (const [mirror, { pulls }] of cells) {
        for (const [key, count] of pulls) {
          const [kind, result] = key.split(' ');
          this.inc({ mirror, kind, result }, count);
        }
      }
    },
  });
  for (const [name, help, field] of [
    ['regmeta_mirror_upstream_bytes_total', 'Bytes of bodies read from a mirror\'s upstream (manifests, blobs, tag lists, referrers), by mirror prefix.', 'upstreamBytes'],
    ['regmeta_mirror_upstream_errors_total', 'Requests to a mirror\'s upstream that failed (unreachable, timed out, 5xx or 429, refused credentials, a corrupt or cut body), by mirror prefix.', 'upstreamErrors'],
  ] as const) {
    new Counter({
      name,
      help,
      labelNames: ['mirror'],
      registers,
      collect() {
        this.reset();
        for (const [mirror, counts] of cells) if (counts[field] > 0) this.inc({ mirror }, counts[field]);
      },
    });
  }
  return {
    pull(prefix, kind, result) {
      const { pulls } = cell(prefix);
      const key = `${kind} ${result}`;
      pulls.set(key, (pulls.get(key) ?? 0) + 1);
    },
    upstreamBytes(prefix, bytes) {
      cell(prefix).upstreamBytes += bytes;
    },
    upstreamError(prefix) {
      cell(prefix).upstreamErrors++;
    },
  };
}
