// The mirrors' pull notes through a real registry: a manifest pulled from a
// mirror's cache is recorded in the store in a batch after a few seconds or
// at close, and a batch the database refuses is kept and written later,
// never failing the pull.

import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openPostgresStore } from 'regmeta/postgres';
import { startRegistry as startServer } from 'regmeta/server';
import { startPostgres } from '../../store/postgres/server.js';
import { ociManifest, tempDir } from '../../store/fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers.js';

// Nothing listens on port 9: a pull that reached the upstream would fail, so every pull here is served from the cache.
const MIRRORS = [{ prefix: 'hub', url: 'http://127.0.0.1:9' }];

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

/** A registry mirroring `hub` with one manifest cached in hub/library/alpine. */
async function cachedRegistry(storeOptions = {}, dataDir?: string) {
  const reg = (registry = await startRegistry(dataDir === undefined ? { mirrors: MIRRORS } : { mirrors: MIRRORS, dataDir }, undefined, storeOptions));
  const m = ociManifest();
  reg.store.putManifest('hub/library/alpine', m.digest, m, { actor: 'mirror' });
  const pull = async () => {
    const res = await fetch(`${reg.url}/v2/hub/library/alpine/manifests/${m.digest}`, { headers: { accept: m.mediaType } });
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(m.payload)).toBe(true);
  };
  const pulledAt = () => reg.store.namespaceUsage('hub')[0].pulledAt;
  return { reg, pull, pulledAt };
}

describe('pulls from a mirror\'s cache', () => {
  it('are recorded in the store within a few seconds, the latest per repository', async () => {
    const { pull, pulledAt } = await cachedRegistry();
    expect(pulledAt()).toBeUndefined();
    const before = Date.now();
    await pull();
    await pull();
    await until(() => pulledAt() !== undefined, 'the pull to be recorded');
    expect(pulledAt()!.getTime()).toBeGreaterThanOrEqual(before);
    expect(pulledAt()!.getTime()).toBeLessThanOrEqual(Date.now());
  });

  it('are recorded with the pull statistics off too: gc\'s eviction needs them', async () => {
    const reg = (registry = await startRegistry({ mirrors: MIRRORS, pulls: { stats: false, flushInterval: 20 } }));
    const m = ociManifest();
    reg.store.putManifest('hub/library/alpine', m.digest, m, { actor: 'mirror' });
    const res = await fetch(`${reg.url}/v2/hub/library/alpine/manifests/${m.digest}`, { method: 'HEAD', headers: { accept: m.mediaType } });
    expect(res.status).toBe(200);
    await until(() => reg.store.namespaceUsage('hub')[0].pulledAt !== undefined, 'the pull to be recorded');
  });

  it('are written when the registry closes, however recent', async () => {
    const { dir, remove } = tempDir();
    try {
      const { reg, pull } = await cachedRegistry({}, dir);
      reg.store.recordPulls([{ repo: 'hub/library/alpine', at: new Date(1000) }]);
      const before = Date.now();
      await pull();
      await reg.close();
      registry = undefined;
      const store = new Database(path.join(dir, 'metadata.db'), { readonly: true });
      try {
        expect(store.prepare("SELECT pulled_at FROM repository WHERE name = 'hub/library/alpine'").pluck().get()).toBeGreaterThanOrEqual(before);
      } finally {
        store.close();
      }
    } finally {
      remove();
    }
  }, 30_000);

  it('that the database cannot record are kept and written by a later batch, the pull served all the same', async () => {
    const { reg, pull, pulledAt } = await cachedRegistry({ busyTimeout: 50 });
    // Another connection holds the write lock: the batch's transaction cannot start.
    const blocker = new Database(path.join(reg.dataDir, 'metadata.db'));
    try {
      blocker.exec('BEGIN IMMEDIATE');
      await pull();
      await until(() => reg.errors.length > 0, 'the refused batch to be reported');
      expect(String(reg.errors[0])).toMatch(/cannot record the pulls of \d+ entr(y|ies) \(kept for the next try\)/);
      expect(pulledAt()).toBeUndefined();
      blocker.exec('COMMIT');
      await until(() => pulledAt() !== undefined, 'the kept pull to be recorded');
    } finally {
      blocker.close();
    }
  }, 120_000);
});

describe('pulls from a mirror\'s cache on PostgreSQL', () => {
  it('are written before the registry\'s close resolves, so that its caller may close the store then', async () => {
    const postgres = await startPostgres();
    const { dir, remove } = tempDir();
    const url = await postgres.createDatabase();
    try {
      const store = await openPostgresStore(url);
      const m = ociManifest();
      await store.putManifest('hub/library/alpine', m.digest, m, { actor: 'mirror' });
      const errors: unknown[] = [];
      const reg = await startServer({ store, dataDir: dir, port: 0, mirrors: MIRRORS, onError: (error) => errors.push(error) });
      const before = Date.now();
      const res = await fetch(`${reg.url}/v2/hub/library/alpine/manifests/${m.digest}`, { headers: { accept: m.mediaType } });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      await reg.close();
      await store.close();
      expect(errors).toEqual([]);
      const reader = await openPostgresStore(url);
      const [cached] = await reader.namespaceUsage('hub');
      await reader.close();
      expect(cached.pulledAt?.getTime()).toBeGreaterThanOrEqual(before);
    } finally {
      remove();
      await postgres.stop();
    }
  }, 60_000);
});
