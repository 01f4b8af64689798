// The PostgreSQL schema's version and migration, against a real server:
// replicas starting at the same moment set it up once, a newer database and
// another program's are refused, and an unreachable server is a typed error.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStore } from 'regmeta/postgres';
import { StoreError } from 'regmeta';
import { startPostgres, type PostgresServer } from './server.js';
import { PG_UNDO_5 } from '../fixtures.js';

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

const OPENER = fileURLToPath(new URL('./workers/open.ts', import.meta.url));

/** Opens the store at `url` in a process of its own; resolves with what the process printed. */
function openInProcess(url: string, at: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx/esm', OPENER, url, String(at)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (out += chunk));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`opener exited ${code}: ${out}`))));
  });
}

describe('the PostgreSQL schema', () => {
  it('is set up once when several processes open a new database at the same moment', async () => {
    const url = await server.createDatabase();
    // Each process waits for the same moment, well after it has loaded.
    const at = Date.now() + 4000;
    const outputs = await Promise.all(Array.from({ length: 4 }, () => openInProcess(url, at)));
    expect(outputs).toEqual(Array(4).fill('opened'));
    await raw(url, async (sql) => {
      expect(await sql`SELECT version FROM regmeta_schema`).toEqual([{ version: 5 }]);
      // Each process's one event, numbered 1 to 4: the log's head was set up once, not reset.
      expect(await sql`SELECT seq::int FROM event_head`).toEqual([{ seq: 4 }]);
      expect((await sql`SELECT seq::int FROM event ORDER BY seq`).map((row) => row.seq)).toEqual([1, 2, 3, 4]);
    });
  });

  it('is set up once when many connections of one process open a new database at the same moment', async () => {
    const url = await server.createDatabase();
    const stores = await Promise.all(Array.from({ length: 12 }, () => openPostgresStore(url)));
    await stores[0].putTag('a/b', 'x', { digest: `sha256:${'0'.repeat(64)}` }).catch(() => {});
    expect(await Promise.all(stores.map((store) => store.catalog()))).toEqual(Array(12).fill([]));
    await Promise.all(stores.map((store) => store.close()));
  });

  it('takes a version-1 database to the current version (upload sessions, their claims\' holders) with the columns and indexes a new one gets, keeping its data', async () => {
    const columnsOf = (url: string) =>
      raw(url, (sql) => sql`
        SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns
        WHERE table_name = 'upload_session' ORDER BY column_name`);
    const indexesOf = (url: string) =>
      raw(url, (sql) => sql`SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'upload_session' ORDER BY indexname`);
    const fresh = await server.createDatabase();
    await (await openPostgresStore(fresh)).close();
    const old = await server.createDatabase();
    const writer = await openPostgresStore(old);
    await writer.putTag('a/b', 'x', { digest: `sha256:${'0'.repeat(64)}` }).catch(() => {});
    await writer.notifications.open('http://receiver.example/hook');
    await writer.close();
    await raw(old, (sql) => sql.unsafe(PG_UNDO_5 + 'DROP TABLE upload_session; ALTER TABLE repository DROP COLUMN pulled_at; UPDATE regmeta_schema SET version = 1'));
    const store = await openPostgresStore(old);
    try {
      const session = await store.uploads.open('acme/app', '10.0.0.1', 1);
      expect(await store.uploads.get('acme/app', session.id)).toMatchObject({ size: 0 });
      expect(await store.notifications.status()).toHaveLength(1);
    } finally {
      await store.close();
    }
    await raw(old, async (sql) => expect(await sql`SELECT version FROM regmeta_schema`).toEqual([{ version: 5 }]));
    expect(await columnsOf(old)).toEqual(await columnsOf(fresh));
    expect((await indexesOf(old)).map((row) => row.indexdef)).toEqual((await indexesOf(fresh)).map((row) => row.indexdef));
  });

  it('takes a version-2 database to the current version (the holder of a claim), keeping its sessions and their claims', async () => {
    const columnsOf = (url: string) =>
      raw(url, (sql) => sql`
        SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns
        WHERE table_name = 'upload_session' ORDER BY column_name`);
    const fresh = await server.createDatabase();
    await (await openPostgresStore(fresh)).close();
    const old = await server.createDatabase();
    const writer = await openPostgresStore(old);
    const session = await writer.uploads.open('acme/app', '10.0.0.1', 0);
    await writer.close();
    await raw(old, (sql) => sql.unsafe(PG_UNDO_5 + 'ALTER TABLE upload_session DROP COLUMN holder; ALTER TABLE repository DROP COLUMN pulled_at; UPDATE regmeta_schema SET version = 2'));
    // A claim made by a version-2 replica: it has no holder, and lasts its lease.
    await raw(old, (sql) => sql`UPDATE upload_session SET owner = 'old-replica', lease_until = ${Date.now() + 60_000}`);
    const store = await openPostgresStore(old);
    try {
      expect(await store.uploads.claim('acme/app', session.id, 'new-replica', 60_000)).toBe('busy');
    } finally {
      await store.close();
    }
    await raw(old, async (sql) => expect(await sql`SELECT version FROM regmeta_schema`).toEqual([{ version: 5 }]));
    expect(await columnsOf(old)).toEqual(await columnsOf(fresh));
  });

  it('takes a version-3 database to the current version (the repositories\' last pulls), its repositories unpulled, with the columns a new one gets', async () => {
    const columnsOf = (url: string) =>
      raw(url, (sql) => sql`
        SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns
        WHERE table_name = 'repository' ORDER BY column_name`);
    const fresh = await server.createDatabase();
    await (await openPostgresStore(fresh)).close();
    const old = await server.createDatabase();
    const writer = await openPostgresStore(old);
    const known = { digest: `sha256:${'1'.repeat(64)}`, size: 1 };
    await writer.linkBlob('hub/app', known);
    await writer.close();
    await raw(old, (sql) => sql.unsafe(PG_UNDO_5 + 'ALTER TABLE repository DROP COLUMN pulled_at; UPDATE regmeta_schema SET version = 3'));
    const store = await openPostgresStore(old);
    try {
      expect(await store.namespaceUsage('hub')).toEqual([{ name: 'hub/app', createdAt: expect.any(Date), blobs: [known] }]);
      expect(await store.recordPulls([{ repo: 'hub/app', at: new Date(1000) }])).toBe(1);
      expect((await store.namespaceUsage('hub'))[0].pulledAt).toEqual(new Date(1000));
    } finally {
      await store.close();
    }
    await raw(old, async (sql) => expect(await sql`SELECT version FROM regmeta_schema`).toEqual([{ version: 5 }]));
    expect(await columnsOf(old)).toEqual(await columnsOf(fresh));
  });

  it('takes a version-4 database to version 5 (pull statistics, PULL events, reasons) with the columns and constraints a new one gets, keeping its events', async () => {
    const shapeOf = (url: string) =>
      raw(url, async (sql) => ({
        columns: await sql`
          SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns
          WHERE table_name IN ('manifest', 'tag', 'event') ORDER BY table_name, column_name`,
        checks: await sql`
          SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
          WHERE conrelid IN ('manifest'::regclass, 'tag'::regclass, 'event'::regclass) AND contype = 'c' ORDER BY conname`,
      }));
    const fresh = await server.createDatabase();
    await (await openPostgresStore(fresh)).close();
    const old = await server.createDatabase();
    const writer = await openPostgresStore(old);
    const digest = `sha256:${'2'.repeat(64)}`;
    await writer.linkBlob('hub/app', { digest, size: 1 }, { actor: 'alice' });
    await writer.close();
    await raw(old, (sql) => sql.unsafe(PG_UNDO_5));
    const store = await openPostgresStore(old);
    try {
      const before = (await store.getEvents({})).events;
      expect(before.length).toBeGreaterThan(0);
      expect(before.every((e) => e.actor === 'alice' && e.count === undefined && e.reason === undefined)).toBe(true);
      const pull = await store.createEvent({ actor: '', type: 'PULL', object: { type: 'MANIFEST', id: `hub/app@${digest}` }, repository: 'hub/app', count: 2, reason: 'a test' });
      expect(pull).toMatchObject({ type: 'PULL', count: 2, reason: 'a test' });
    } finally {
      await store.close();
    }
    await raw(old, async (sql) => expect(await sql`SELECT version FROM regmeta_schema`).toEqual([{ version: 5 }]));
    expect(await shapeOf(old)).toEqual(await shapeOf(fresh));
  });

  it('refuses a database of a newer schema version, with a message that says to upgrade', async () => {
    const url = await server.createDatabase();
    await (await openPostgresStore(url)).close();
    await raw(url, (sql) => sql`UPDATE regmeta_schema SET version = 99`);
    const refused = openPostgresStore(url);
    await expect(refused).rejects.toBeInstanceOf(StoreError);
    await expect(refused).rejects.toMatchObject({ code: 'DATABASE_TOO_NEW', message: expect.stringMatching(/version 99.*upgrade regmeta/) });
  });

  it("refuses another program's database and leaves its tables as they were", async () => {
    const url = await server.createDatabase();
    await raw(url, (sql) => sql`CREATE TABLE orders (id int PRIMARY KEY)`);
    await expect(openPostgresStore(url)).rejects.toMatchObject({ code: 'DATABASE_INVALID' });
    await raw(url, async (sql) => {
      const tables = await sql`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`;
      expect(tables.map((row) => row.tablename)).toEqual(['orders']);
    });
  });

  it('reports an unreachable server as DATABASE_UNAVAILABLE, with the password masked', async () => {
    const url = server.url.replace('postgres@', 'postgres:secret@').replace(/:(\d+)\//, ':1/');
    const failed = openPostgresStore(url, { connectTimeout: 2 });
    await expect(failed).rejects.toMatchObject({ code: 'DATABASE_UNAVAILABLE', message: expect.stringContaining('unavailable') });
    await expect(failed).rejects.toSatisfy((error: Error) => !error.message.includes('secret'));
  });

  it('checkWritable passes on a server that takes writes and answers DATABASE_READONLY on a read-only database', async () => {
    const url = await server.createDatabase();
    const store = await openPostgresStore(url);
    await store.checkWritable();
    await store.close();
    const name = new URL(url).pathname.slice(1);
    // The name is the harness's own, letters, digits and underscores: safe as an identifier.
    await raw(server.url, (sql) => sql.unsafe(`ALTER DATABASE ${name} SET default_transaction_read_only = on`));
    const readOnly = await openPostgresStore(url);
    await expect(readOnly.checkWritable()).rejects.toMatchObject({ code: 'DATABASE_READONLY' });
    await expect(readOnly.putTag('a/b', 'v1', { digest: `sha256:${'0'.repeat(64)}` })).rejects.toMatchObject({ code: 'DATABASE_READONLY' });
    await readOnly.close();
  });

  it('refuses what is not a postgres:// URL as ARGUMENT_INVALID', async () => {
    await expect(openPostgresStore('/var/lib/regmeta/metadata.db')).rejects.toMatchObject({ code: 'ARGUMENT_INVALID' });
  });
});

describe('a read-only PostgreSQL store', () => {
  it('reads a regmeta database, and PostgreSQL itself refuses its writes with DATABASE_READONLY', async () => {
    const url = await server.createDatabase();
    const writer = await openPostgresStore(url);
    const note = { actor: 'ops', type: 'CREATE', object: { type: 'REPOSITORY', id: 'ro/app' }, repository: 'ro/app' } as const;
    await writer.createEvent(note);
    await writer.close();
    const reader = await openPostgresStore(url, { readOnly: true });
    try {
      expect((await reader.getEvents({})).events.map((event) => event.repository)).toEqual(['ro/app']);
      const refused = await reader.createEvent(note).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(StoreError);
      expect((refused as StoreError).code).toBe('DATABASE_READONLY');
    } finally {
      await reader.close();
    }
  });

  it('refuses an empty database with DATABASE_INVALID and creates nothing in it', async () => {
    const url = await server.createDatabase();
    const refused = await openPostgresStore(url, { readOnly: true }).catch((error: unknown) => error);
    expect((refused as StoreError).code).toBe('DATABASE_INVALID');
    await raw(url, async (sql) => {
      expect(await sql`SELECT tablename FROM pg_tables WHERE schemaname = current_schema()`).toEqual([]);
    });
  });
});
