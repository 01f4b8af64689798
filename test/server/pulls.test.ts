// The registry's pull statistics through a real server on a real SQLite
// file: which requests count as pulls of what, the batches written at close
// and after a refusal (whose counts are kept, not lost), the switch that
// turns them off, and the metrics of the batches.

import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createRegistryHandler } from 'regmeta/server';
import { openStore } from 'regmeta';
import { tempDir } from '../store/fixtures.js';
import { OCI_MANIFEST, pushImage, sha256, startRegistry, type TestRegistry } from './helpers.js';
import { parseExposition, value } from './prometheus.js';

let registry: TestRegistry | undefined;
afterEach(async () => {
  await registry?.close();
  registry = undefined;
});

/** Resolves once `fn` returns true, checking every 20 ms for up to a minute. */
async function until(fn: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function request(url: string, method = 'GET', accept = OCI_MANIFEST): Promise<number> {
  const res = await fetch(url, { method, headers: { Accept: accept } });
  await res.arrayBuffer();
  return res.status;
}

/** Each manifest's and tag's pull count and time in the database file, read beside the registry's own connection. */
function statsIn(dataDir: string) {
  const db = new Database(path.join(dataDir, 'metadata.db'), { readonly: true });
  try {
    const manifests = db.prepare('SELECT digest AS key, pull_count AS count, pulled_at AS at FROM manifest').all() as { key: string; count: number; at: number | null }[];
    const tags = db.prepare('SELECT name AS key, pull_count AS count, pulled_at AS at FROM tag').all() as { key: string; count: number; at: number | null }[];
    const byKey = (rows: typeof manifests) => Object.fromEntries(rows.map((r) => [r.key, { count: r.count, pulled: r.at !== null }]));
    return { manifests: byKey(manifests), tags: byKey(tags) };
  } finally {
    db.close();
  }
}

describe('pull statistics', () => {
  it('count a manifest GET (by tag, the tag too), mark a HEAD by tag\'s time alone, and count nothing else; written at close', async () => {
    const { dir, remove } = tempDir();
    try {
      // Never written by the timer: all of it at close.
      const reg = (registry = await startRegistry({ dataDir: dir, pulls: { flushInterval: 3_600_000 }, metrics: true }));
      const { digest, layer } = await pushImage(reg.url, 'acme/app', 'v1', 'counted');
      const { digest: other } = await pushImage(reg.url, 'acme/app', 'v2', 'headed');
      const manifests = `${reg.url}/v2/acme/app/manifests`;
      for (let i = 0; i < 3; i++) expect(await request(`${manifests}/v1`)).toBe(200);
      for (let i = 0; i < 2; i++) expect(await request(`${manifests}/${digest}`)).toBe(200);
      expect(await request(`${manifests}/v2`, 'HEAD')).toBe(200);
      expect(await request(`${manifests}/${other}`, 'HEAD')).toBe(200);
      expect(await request(`${reg.url}/v2/acme/app/blobs/${sha256(layer)}`)).toBe(200);
      // Refused: the Accept header lists another type; unknown tags.
      expect(await request(`${manifests}/v1`, 'GET', 'application/vnd.docker.distribution.manifest.v2+json')).toBe(404);
      expect(await request(`${manifests}/nope`)).toBe(404);
      expect(statsIn(dir).manifests[digest]).toEqual({ count: 0, pulled: false });
      await reg.close();
      registry = undefined;
      expect(statsIn(dir)).toEqual({
        manifests: { [digest]: { count: 5, pulled: true }, [other]: { count: 0, pulled: false } },
        tags: { v1: { count: 3, pulled: true }, v2: { count: 0, pulled: true } },
      });
    } finally {
      remove();
    }
  });

  it('keep the counts of a batch the database refused and write them, added to later ones, with the next', async () => {
    const reg = (registry = await startRegistry({ pulls: { flushInterval: 20 }, metrics: true }, undefined, { busyTimeout: 50 }));
    const { digest } = await pushImage(reg.url, 'acme/app', 'v1', 'kept');
    // Another connection holds the write lock: batches cannot start.
    const blocker = new Database(path.join(reg.dataDir, 'metadata.db'));
    try {
      blocker.exec('BEGIN IMMEDIATE');
      for (let i = 0; i < 3; i++) expect(await request(`${reg.url}/v2/acme/app/manifests/v1`)).toBe(200);
      await until(() => reg.errors.length > 0, 'a refused batch to be reported');
      expect(String(reg.errors[0])).toMatch(/cannot record the pulls of 1 entry \(kept for the next try\): .*locked/);
      for (let i = 0; i < 2; i++) expect(await request(`${reg.url}/v2/acme/app/manifests/v1`)).toBe(200);
      blocker.exec('COMMIT');
      await until(() => statsIn(reg.dataDir).manifests[digest].count === 5, 'all five pulls to be written');
      expect(statsIn(reg.dataDir).tags.v1.count).toBe(5);
      const e = parseExposition(await (await fetch(`${reg.url}/metrics`)).text());
      expect(value(e, 'regmeta_pull_flushes_total', { result: 'failed' })).toBeGreaterThan(0);
      expect(value(e, 'regmeta_pull_flushes_total', { result: 'written' })).toBeGreaterThan(0);
      expect(value(e, 'regmeta_pull_entries_written_total')).toBeGreaterThan(0);
    } finally {
      blocker.close();
    }
  }, 120_000);

  it('are off with stats: false: no pull is noted, no batch written', async () => {
    const { dir, remove } = tempDir();
    try {
      const reg = (registry = await startRegistry({ dataDir: dir, pulls: { stats: false }, metrics: true }));
      const { digest } = await pushImage(reg.url, 'acme/app', 'v1', 'uncounted');
      expect(await request(`${reg.url}/v2/acme/app/manifests/v1`)).toBe(200);
      const e = parseExposition(await (await fetch(`${reg.url}/metrics`)).text());
      await reg.close();
      registry = undefined;
      expect(statsIn(dir).manifests[digest]).toEqual({ count: 0, pulled: false });
      expect(value(e, 'regmeta_store_operation_duration_seconds_count', { operation: 'recordPulls' })).toBe(0);
    } finally {
      remove();
    }
  });

  it('refuse a flush interval that is not a number of milliseconds above 0', () => {
    const { dir, remove } = tempDir();
    const store = openStore(':memory:');
    try {
      for (const flushInterval of [0, -1, Number.NaN, '5s']) {
        expect(() => createRegistryHandler({ store, dataDir: dir, pulls: { flushInterval: flushInterval as number } })).toThrow(/pulls\.flushInterval/);
      }
    } finally {
      store.close();
      remove();
    }
  });
});
