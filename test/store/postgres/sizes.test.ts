// The kept sizes on PostgreSQL, against a real server: replicas in
// processes of their own pushing into one namespace at once leave the
// counters exact, without a deadlock, a quota holds (and fills) however many
// push at once, even beside deletes of the repositories pushed into; sizes
// that drifted never fail a delete; version 5's migration fills the sizes
// from the links there, those a version-4 replica commits meanwhile too.

import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStore } from 'regmeta/postgres';
import { blobDesc, ociManifest, PG_UNDO_5 } from '../fixtures.js';
import { startPostgres, type PostgresServer } from './server.js';

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

/** Runs `fn` with a raw connection of its own to `url`. */
async function raw<T>(url: string, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end();
  }
}

const PUSHER = fileURLToPath(new URL('./workers/push.ts', import.meta.url));

interface Pushed {
  linked: number;
  refused: Record<string, number>;
}

/** `n` pushing processes on `url`, started together once each has opened its store (a line on stdin each, no clock). */
async function pushTogether(url: string, n: number, rounds: number, quota?: number, mode?: 'grow' | 'repositories'): Promise<Pushed[]> {
  const children: ChildProcess[] = [];
  const results: Promise<Pushed>[] = [];
  const ready: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const args = ['--import', 'tsx/esm', PUSHER, url, String(rounds), ...(quota === undefined ? [] : [String(quota)]), ...(mode === undefined ? [] : [mode])];
    const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    children.push(child);
    let err = '';
    child.stderr!.on('data', (chunk) => (err += chunk));
    const lines = createInterface({ input: child.stdout! });
    const seen: string[] = [];
    ready.push(new Promise((resolve) => lines.on('line', (line) => (seen.push(line), line === 'ready' && resolve()))));
    results.push(
      new Promise((resolve, reject) =>
        child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(seen.at(-1)!) as Pushed) : reject(new Error(`pusher exited ${code}: ${err}`)))),
      ),
    );
  }
  await Promise.all(ready);
  for (const child of children) child.stdin!.end('go\n');
  return Promise.all(results);
}

/** Deadlocks PostgreSQL has detected in the database so far. */
const deadlocks = (url: string) =>
  raw(url, async (sql) => {
    const [{ n }] = await sql<{ n: string }[]>`SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()`;
    return Number(n);
  });

describe('sizes kept on PostgreSQL', () => {
  it('are exact after four processes push, mount, unlink and delete in one namespace at once, and none deadlocked', async () => {
    const url = await server.createDatabase();
    await (await openPostgresStore(url)).close();
    const before = await deadlocks(url);
    const pushed = await pushTogether(url, 4, 40);
    expect(pushed.every((p) => p.linked > 0)).toBe(true);
    for (const p of pushed) expect(Object.keys(p.refused).filter((code) => code !== 'BLOB_UNKNOWN' && code !== 'NAME_UNKNOWN')).toEqual([]);
    const store = await openPostgresStore(url);
    try {
      expect((await store.check()).problems).toEqual([]);
      const usage = await store.usage({ namespace: 'team' });
      expect(usage.namespaces[0].repositories).toBe((await store.catalog({ prefix: 'team/' })).length);
    } finally {
      await store.close();
    }
    expect(await deadlocks(url)).toBe(before);
  });

  it("hold a namespace's quota however many processes push into it at once, and fill it", async () => {
    const url = await server.createDatabase();
    await (await openPostgresStore(url)).close();
    const quota = 6000;
    // Links only: what the namespace holds never shrinks, so a refusal (usage + size > quota) bounds the end from below.
    const pushed = await pushTogether(url, 4, 30, quota, 'grow');
    expect(pushed.some((p) => (p.refused.DENIED ?? 0) > 0)).toBe(true);
    const store = await openPostgresStore(url);
    try {
      expect((await store.check()).problems).toEqual([]);
      const [team] = (await store.usage({ namespace: 'team' })).namespaces;
      expect(team.bytes).toBeLessThanOrEqual(quota);
      // The worker's largest blob is 1004 bytes: a refusal with more room than that left was one too many.
      expect(team.bytes).toBeGreaterThan(quota - 1004);
    } finally {
      await store.close();
    }
  });
});

describe('a quota beside deletes of repositories on PostgreSQL', () => {
  it('lets processes link (placing files that take time) and delete the repositories linked into at once, none deadlocked or busy', async () => {
    const url = await server.createDatabase();
    await (await openPostgresStore(url)).close();
    const before = await deadlocks(url);
    const pushed = await pushTogether(url, 4, 40, 1_000_000_000, 'repositories');
    expect(pushed.every((p) => p.linked > 0)).toBe(true);
    // A mount from, or a delete of, a repository another process has just deleted finds nothing: all else succeeds.
    for (const p of pushed) expect(Object.keys(p.refused).filter((code) => code !== 'BLOB_UNKNOWN' && code !== 'NAME_UNKNOWN')).toEqual([]);
    expect(await deadlocks(url)).toBe(before);
    const store = await openPostgresStore(url);
    try {
      expect((await store.check()).problems).toEqual([]);
    } finally {
      await store.close();
    }
  });
});

describe('kept sizes that drifted on PostgreSQL', () => {
  it('never fail a delete: an uncount takes nothing for a missing row and stops at 0, and check still reports the drift', async () => {
    const url = await server.createDatabase();
    const [a, b, c] = [blobDesc('a', undefined, 100), blobDesc('b', undefined, 2000), blobDesc('c', undefined, 30_000)];
    const store = await openPostgresStore(url);
    try {
      await store.linkBlob('acme/app', a);
      await store.linkBlob('acme/app', b);
      await store.linkBlob('acme/web', a);
      await store.linkBlob('acme', c);
      await store.linkBlob('beta/x', c);
      await raw(url, (sql) =>
        sql.unsafe(`
          DELETE FROM namespace_blob WHERE namespace = 'beta';
          UPDATE namespace SET size = 0, repositories = 0 WHERE name = 'acme';
          UPDATE registry_usage SET blobs = 0, size = 0;`),
      );
      await store.deleteRepository('beta/x');
      await store.unlinkBlob('acme/web', a.digest);
      await store.deleteRepository('acme/web');
      await store.deleteBlob(c.digest);
      // Stopped at 0: the registry's total and acme's counts, lowered below what the deletes took away.
      expect((await store.usage()).total).toEqual({ blobs: 0, bytes: 0 });
      expect((await store.check()).problems).toEqual([
        { kind: 'size', subject: 'registry', detail: 'blobs: kept 0, counted 2; bytes: kept 0, counted 2100' },
        { kind: 'size', subject: 'namespace acme', detail: 'bytes: kept 0, counted 2100; repositories: kept 0, counted 2' },
        // beta's blob had no row: its delete took nothing away.
        { kind: 'size', subject: 'namespace beta', detail: 'bytes: kept 30000, counted 0; repositories: kept 0, counted 0' },
      ]);
    } finally {
      await store.close();
    }
  });
});

describe('version 5 on a version-4 database', () => {
  it('fills the kept sizes from the links there, as a new database would have kept them', async () => {
    const url = await server.createDatabase();
    const store = await openPostgresStore(url);
    const [a, b, c] = [blobDesc('a', undefined, 100), blobDesc('b', undefined, 2000), blobDesc('c', undefined, 30_000)];
    await store.linkBlob('acme/app', a);
    await store.linkBlob('acme/app', b);
    await store.linkBlob('acme/web', a);
    await store.linkBlob('acme', c);
    await store.linkBlob('beta/x', c);
    const m = ociManifest({ config: a, layers: [b] });
    await store.putManifest('acme/app', m.digest, m);
    const before = await store.usage();
    const acme = await store.usage({ namespace: 'acme', repositories: true });
    await store.close();
    await raw(url, (sql) => sql.unsafe(PG_UNDO_5));
    const migrated = await openPostgresStore(url);
    try {
      expect(await migrated.usage()).toEqual(before);
      expect(await migrated.usage({ namespace: 'acme', repositories: true })).toEqual(acme);
      expect(before.namespaces).toEqual([
        { namespace: 'acme', bytes: 32_100, repositories: 3 },
        { namespace: 'beta', bytes: 30_000, repositories: 1 },
      ]);
      expect((await migrated.check()).problems).toEqual([]);
    } finally {
      await migrated.close();
    }
  });

  it('counts a link that a version-4 replica commits while the step runs (the step waits for it)', async () => {
    const url = await server.createDatabase();
    const store = await openPostgresStore(url);
    const a = blobDesc('a', undefined, 100);
    await store.linkBlob('acme/app', a);
    await store.close();
    await raw(url, (sql) => sql.unsafe(PG_UNDO_5));
    // A version-4 replica's link, open until the migration waits for a lock (a condition, no clock).
    const replica = postgres(url, { max: 1, onnotice: () => {} });
    const watcher = postgres(url, { max: 1, onnotice: () => {} });
    let migrated: Promise<Awaited<ReturnType<typeof openPostgresStore>>> | undefined;
    try {
      await replica.begin(async (tx) => {
        // Into a repository there: its row locked KEY SHARE, no write to the table (which the step's foreign key would wait for).
        const [{ id }] = await tx<{ id: string }[]>`SELECT id FROM repository WHERE name = 'acme/app'`;
        await tx`INSERT INTO blob (digest, size, created_at) VALUES (${blobDesc('late').digest}, 5000, 1)`;
        await tx`INSERT INTO blob_link (repository_id, digest, linked_at) VALUES (${id}, ${blobDesc('late').digest}, 1)`;
        migrated = openPostgresStore(url);
        migrated.catch(() => {});
        for (;;) {
          const [{ waiting }] = await watcher<{ waiting: number }[]>`
            SELECT count(*)::int AS waiting FROM pg_locks
            WHERE NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`;
          if (waiting > 0) break;
          await new Promise((resolve) => setImmediate(resolve));
        }
      });
      const opened = await migrated!;
      try {
        expect((await opened.check()).problems).toEqual([]);
        expect((await opened.usage({ namespace: 'acme' })).namespaces[0]).toEqual({ namespace: 'acme', bytes: 5100, repositories: 1 });
      } finally {
        await opened.close();
      }
    } finally {
      await replica.end();
      await watcher.end();
    }
  });
});
