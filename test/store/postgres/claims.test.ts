// An upload claim on PostgreSQL dies with its holder's database connection:
// a replica whose connection is gone (killed, closed, cut by the server)
// holds nothing, whatever its lease says, while a live holder's claim stays
// its own. Two stores on one database stand for two replicas.

import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStore } from 'regmeta/postgres';
import type { Store } from 'regmeta';
import { codeOf } from '../fixtures.js';
import { startPostgres, type PostgresServer } from './server.js';

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

const LEASE = 60_000;

/** Two stores on a new database, a session opened, and a raw connection to look and to cut with. */
async function setUp() {
  const url = await server.createDatabase();
  const a = await openPostgresStore(url);
  const b = await openPostgresStore(url);
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const { id } = await a.uploads.open('acme/app', '10.0.0.1', 0);
  const close = async () => {
    await Promise.all([a.close(), b.close()]);
    await sql.end();
  };
  return { a, b, sql, id, close };
}

/** The backend pid that holds the session's claim. */
async function holderOf(sql: postgres.Sql, id: string): Promise<number> {
  const [row] = await sql<{ holder: number }[]>`SELECT holder FROM upload_session WHERE id = ${id}`;
  return row.holder;
}

/** Renews until the store says the claim is not held (its first call may fail with the lost connection). */
async function renewed(store: Store, id: string, owner: string): Promise<boolean> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const held = await store.uploads.renew(id, owner, LEASE).catch(() => undefined);
    if (held !== undefined) return held;
  }
  throw new Error('renew kept failing');
}

describe('an upload claim on PostgreSQL', () => {
  it("stays its live holder's for its lease", async () => {
    const { a, b, id, close } = await setUp();
    try {
      expect(await a.uploads.claim('acme/app', id, 'writer-a', LEASE)).toEqual({ size: 0 });
      expect(await b.uploads.claim('acme/app', id, 'writer-b', LEASE)).toBe('busy');
      expect(await a.uploads.renew(id, 'writer-a', LEASE)).toBe(true);
    } finally {
      await close();
    }
  });

  it("is anyone's at once when its holder's connection is cut, and its old owner learns it has lost it", async () => {
    const { a, b, sql, id, close } = await setUp();
    try {
      await a.uploads.claim('acme/app', id, 'writer-a', LEASE);
      await sql`SELECT pg_terminate_backend(${await holderOf(sql, id)})`;
      // The server ends the backend and its locks at once; the claim is taken well inside its minute.
      const started = Date.now();
      let claimed = await b.uploads.claim('acme/app', id, 'writer-b', LEASE);
      while (claimed === 'busy' && Date.now() - started < 10_000) claimed = await b.uploads.claim('acme/app', id, 'writer-b', LEASE);
      expect(claimed).toEqual({ size: 0 });
      expect(await renewed(a, id, 'writer-a')).toBe(false);
      expect(await codeOf(a.uploads.commit(id, 'writer-a', 10))).toBe('BLOB_UPLOAD_UNKNOWN');
      // The store goes on with a new holder connection: its next claim holds as before.
      await b.uploads.commit(id, 'writer-b', 5);
      expect(await a.uploads.claim('acme/app', id, 'writer-a2', LEASE)).toEqual({ size: 5 });
      expect(await b.uploads.claim('acme/app', id, 'writer-b2', LEASE)).toBe('busy');
    } finally {
      await close();
    }
  });

  it("is anyone's once its store is closed", async () => {
    const { a, b, id, close } = await setUp();
    try {
      await a.uploads.claim('acme/app', id, 'writer-a', LEASE);
      await a.close();
      expect(await b.uploads.claim('acme/app', id, 'writer-b', LEASE)).toEqual({ size: 0 });
    } finally {
      await close();
    }
  });
});
