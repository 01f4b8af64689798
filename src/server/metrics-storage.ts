// The storage metrics (the store's counts, sizes per namespace, quotas) and the pull statistics counters: apart from metrics.ts, which counts requests.

import { Counter, Gauge, type Registry as PromRegistry } from 'prom-client';
import type { NamespaceUsage, StoreStats, Usage } from '../store/index.js';

/** regmeta_pull_flushes_total{result} and regmeta_pull_entries_written_total, added to by the pull recorder. */
export function pullFlushCounters(registers: PromRegistry[]): (written: boolean, entries: number) => void {
  const counts = { written: 0, failed: 0, entries: 0 };
  new Counter({
    name: 'regmeta_pull_flushes_total',
    help: 'Batches of pull statistics written to the store (written) or refused by it (failed: kept for the next batch).',
    labelNames: ['result'],
    registers,
    collect() {
      this.reset();
      this.inc({ result: 'written' }, counts.written);
      this.inc({ result: 'failed' }, counts.failed);
    },
  });
  new Counter({
    name: 'regmeta_pull_entries_written_total',
    help: 'Entries of pull statistics written (one per pulled manifest, tag or mirrored repository per batch, whatever its count).',
    registers,
    collect() {
      this.reset();
      this.inc(counts.entries);
    },
  });
  return (written, entries) => {
    if (!written) return void counts.failed++;
    counts.written++;
    counts.entries += entries;
  };
}

/** The store's counts and the database's size, from a stats read of at most once per interval. */
export function storeGauges(registers: PromRegistry[], stats: () => Promise<StoreStats | undefined>): void {
  const gauges: Array<[string, string, (s: StoreStats) => number]> = [
    ['regmeta_repositories', 'Repositories in the store.', (s) => s.counts.repositories],
    ['regmeta_manifests', 'Manifests in the store, across repositories.', (s) => s.counts.manifests],
    ['regmeta_tags', 'Tags in the store, across repositories.', (s) => s.counts.tags],
    ['regmeta_blobs', 'Distinct blobs the store knows.', (s) => s.counts.blobs],
    ['regmeta_blob_bytes', 'The size of those blobs, each counted once.', (s) => s.counts.blobBytes],
    ['regmeta_database_bytes', 'The database file and its write-ahead log.', (s) => s.database.fileBytes + s.database.walBytes],
  ];
  for (const [name, help, value] of gauges) {
    new Gauge({
      name,
      help: `${help} Read at most once per stats interval.`,
      registers,
      async collect() {
        const read = await stats();
        if (read !== undefined) this.set(value(read));
      },
    });
  }
}

/**
 * Storage per namespace (each blob once), each namespace's quota, and the
 * registry's total, from the sizes the store keeps (a read of a few rows, no
 * scan), at most once per interval.
 */
export function usageGauges(registers: PromRegistry[], usage: () => Promise<Usage | undefined>): void {
  const perNamespace: Array<[string, string, (n: NamespaceUsage) => number | undefined]> = [
    ['regmeta_storage_bytes', "The bytes of the blobs of the namespace's repositories, each blob counted once.", (n) => n.bytes],
    ['regmeta_storage_quota_bytes', "The namespace's quota (absent: none).", (n) => n.quota],
  ];
  for (const [name, help, value] of perNamespace) {
    new Gauge({
      name,
      help: `${help} Read at most once per stats interval.`,
      labelNames: ['namespace'],
      registers,
      async collect() {
        const read = await usage();
        if (read === undefined) return;
        this.reset();
        for (const n of read.namespaces) {
          const v = value(n);
          if (v !== undefined) this.set({ namespace: n.namespace }, v);
        }
      },
    });
  }
  new Gauge({
    name: 'regmeta_storage_registry_bytes',
    help: 'The bytes of every blob the registry holds, each counted once, as the store keeps them. Read at most once per stats interval.',
    registers,
    async collect() {
      const read = await usage();
      if (read !== undefined) this.set(read.total.bytes);
    },
  });
}
