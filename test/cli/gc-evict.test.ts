// regmeta gc's eviction from a mirror's cache, on SQLite and on PostgreSQL:
// repositories cached as 'mirror' and pulled at chosen times (through the
// store), then gc evicts exactly the idle ones and, oldest pull first, those
// over the namespace's size budget (each blob counted once); the sweep
// removes what they alone held, a blob shared with a repository outside
// the namespace survives, and a dry run changes nothing.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asyncStore, openStore, type Store } from 'regmeta';
import { openPostgresStore } from 'regmeta/postgres';
import { dryRun, sweep } from '../../src/cli/commands/gc.js';
import type { EvictionPolicy } from '../../src/cli/commands/evict.js';
import { blobDesc, ociManifest, tempDir } from '../store/fixtures.js';
import { startPostgres, type PostgresServer } from '../store/postgres/server.js';
import { regmeta } from './run.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const POLICY: EvictionPolicy = { prefix: 'hub', maxIdle: 7 * DAY, maxSize: 400 };

const blob = (seed: string, size: number) => blobDesc(seed, 'application/vnd.oci.image.layer.v1.tar+gzip', size);
const A = blob('a', 100);
const B = blob('b', 200);
const C = blob('c', 300);
const D = blob('d', 10);
const SHARED = blob('shared', 50);

/** A tagged image in `repo` whose config and layers are `blobs`, each linked there, written as `actor`. */
async function cache(store: Store, repo: string, blobs: (typeof A)[], actor = 'mirror'): Promise<void> {
  for (const b of blobs) await store.linkBlob(repo, { digest: b.digest, size: b.size }, { actor });
  const m = ociManifest({ seed: repo, config: blobs[0], layers: blobs.slice(1) });
  await store.putManifest(repo, m.digest, m, { actor }, { tag: 'latest' });
}

/**
 * hub/a idle for ten days; hub/b and hub/c pulled two hours and one hour
 * ago, sharing B; hub/d cached just now, never pulled; local/app, outside
 * the namespace, shares SHARED with hub/a.
 */
async function seed(store: Store, now: number): Promise<void> {
  await cache(store, 'hub/a', [A, SHARED]);
  await cache(store, 'hub/b', [B]);
  await cache(store, 'hub/c', [C, B]);
  await cache(store, 'hub/d', [D]);
  await cache(store, 'local/app', [SHARED], 'alice');
  await store.recordPulls([
    { repo: 'hub/a', at: new Date(now - 10 * DAY) },
    { repo: 'hub/b', at: new Date(now - 2 * HOUR) },
    { repo: 'hub/c', at: new Date(now - HOUR) },
  ]);
}

/** gc with a grace period of none: whatever is unreferenced goes now. */
const noGrace = () => new Date(Date.now() + 60_000);

interface Backend {
  name: string;
  /** A fresh registry: its location and a store opened on it. */
  open(): Promise<{ where: { data: string; database?: string }; store: () => Promise<Store> }>;
}

let postgres: PostgresServer | undefined;
const cleanups: (() => void)[] = [];
beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(async () => {
  for (const cleanup of cleanups) cleanup();
  await postgres?.stop();
});

const backends: Backend[] = [
  {
    name: 'sqlite',
    async open() {
      const { dir, remove } = tempDir();
      cleanups.push(remove);
      return { where: { data: dir }, store: async () => asyncStore(openStore(join(dir, 'metadata.db'))) };
    },
  },
  {
    name: 'postgres',
    async open() {
      const { dir, remove } = tempDir();
      cleanups.push(remove);
      const url = await postgres!.createDatabase();
      return { where: { data: dir, database: url }, store: () => openPostgresStore(url) };
    },
  },
];

describe.each(backends)('regmeta gc on $name', (backend) => {
  it('evicts the idle repositories, then the oldest pulled while over budget; the sweep keeps what others still use', async () => {
    const { where, store: open } = await backend.open();
    const seeding = await open();
    const now = Date.now();
    await seed(seeding, now);
    await seeding.close();

    const result = await sweep(await open(), noGrace(), where, [POLICY, { prefix: 'local' }]);
    expect(result.repositoriesEvicted).toEqual([
      { repository: 'hub/a', reason: 'idle', since: new Date(now - 10 * DAY).toISOString(), pulled: true },
      // B, shared by hub/b and hub/c, counts once: 200 + 300 + 10 bytes; hub/b's eviction frees none of it.
      { repository: 'hub/b', reason: 'size', since: new Date(now - 2 * HOUR).toISOString(), pulled: true, usage: 510, budget: 400 },
      { repository: 'hub/c', reason: 'size', since: new Date(now - HOUR).toISOString(), pulled: true, usage: 510, budget: 400 },
    ]);
    expect(result.blobsDeleted.map((b) => b.digest).sort()).toEqual([A, B, C].map((b) => b.digest).sort());

    const store = await open();
    try {
      expect(await store.catalog()).toEqual(['hub/d', 'local/app']);
      expect((await store.allBlobs()).map((b) => b.digest).sort()).toEqual([D, SHARED].map((b) => b.digest).sort());
      expect(await store.getTag('local/app', 'latest')).toMatchObject({ mediaType: expect.any(String) });
      const deletions = (await store.getEvents({ actor: 'mirror', type: 'DELETE', objectType: 'REPOSITORY' })).events;
      expect(deletions.map((e) => e.repository).sort()).toEqual(['hub/a', 'hub/b', 'hub/c']);
    } finally {
      await store.close();
    }
    // Within its limits now: a second run evicts nothing.
    expect((await sweep(await open(), noGrace(), where, [POLICY])).repositoriesEvicted).toEqual([]);
  });

  it('evicts nothing from a mirror without limits, and with maxIdle 0 all of a namespace and nothing outside it', async () => {
    const { where, store: open } = await backend.open();
    const seeding = await open();
    await seed(seeding, Date.now());
    await seeding.close();
    const result = await sweep(await open(), noGrace(), where, [{ prefix: 'hub' }, { prefix: 'local', maxIdle: 0, maxSize: 0 }]);
    expect(result.repositoriesEvicted.map((e) => e.repository)).toEqual(['local/app']);
    const store = await open();
    try {
      expect(await store.catalog()).toEqual(['hub/a', 'hub/b', 'hub/c', 'hub/d']);
    } finally {
      await store.close();
    }
  });
});

describe('regmeta gc --dry-run on sqlite', () => {
  it('reports the same evictions and changes nothing', async () => {
    const { where, store: open } = await backends[0].open();
    const seeding = await open();
    const now = Date.now();
    await seed(seeding, now);
    const before = { catalog: await seeding.catalog(), usage: await seeding.namespaceUsage('hub'), blobs: await seeding.allBlobs() };
    await seeding.close();
    const result = await dryRun(where, noGrace(), [POLICY]);
    expect(result.dryRun).toBe(true);
    expect(result.repositoriesEvicted.map((e) => `${e.repository} ${e.reason}`)).toEqual(['hub/a idle', 'hub/b size', 'hub/c size']);
    expect(result.blobsDeleted).toHaveLength(3);
    const store = await open();
    try {
      expect({ catalog: await store.catalog(), usage: await store.namespaceUsage('hub'), blobs: await store.allBlobs() }).toEqual(before);
    } finally {
      await store.close();
    }
  });
});

describe('regmeta gc with the config\'s mirrors', () => {
  it('prints each repository that would go and why on --dry-run, changing nothing, then evicts them', async () => {
    const { where, store: open } = await backends[0].open();
    const seeding = await open();
    const now = Date.now();
    await seed(seeding, now);
    await seeding.close();
    const config = join(where.data, 'regmeta.yaml');
    writeFileSync(config, `data: ${where.data}\nmirrors:\n  - prefix: hub\n    url: https://registry.example\n    maxIdle: 7d\n    maxSize: 400B\n`);
    const dry = await regmeta(['gc', '--dry-run', '--grace', '0', '--config', config]);
    expect(dry.stderr).toContain('would evict 3 cached repositories');
    expect(dry.status).toBe(0);
    const lines = dry.stdout.split('\n').filter((line) => line.startsWith('evict'));
    expect(lines).toEqual([
      `evict     hub/a  idle: last pulled ${new Date(now - 10 * DAY).toISOString()}`,
      `evict     hub/b  over budget: usage 510 B of 400 B; last pulled ${new Date(now - 2 * HOUR).toISOString()}`,
      `evict     hub/c  over budget: usage 510 B of 400 B; last pulled ${new Date(now - HOUR).toISOString()}`,
    ]);
    const unchanged = await open();
    try {
      expect(await unchanged.catalog()).toEqual(['hub/a', 'hub/b', 'hub/c', 'hub/d', 'local/app']);
    } finally {
      await unchanged.close();
    }
    const run = await regmeta(['gc', '--grace', '0', '--json', '--config', config]);
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout).repositoriesEvicted.map((e: { repository: string }) => e.repository)).toEqual(['hub/a', 'hub/b', 'hub/c']);
    const after = await open();
    try {
      expect(await after.catalog()).toEqual(['hub/d', 'local/app']);
    } finally {
      await after.close();
    }
  });
});
