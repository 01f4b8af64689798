import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { startPostgres, type PostgresServer } from './server.js';

describe('the test harness: a real PostgreSQL server', () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('gives each caller a new empty database on the real server', async () => {
    const [a, b] = [await server.createDatabase(), await server.createDatabase()];
    expect(a).not.toBe(b);
    const sql = postgres(a, { max: 1 });
    try {
      const [row] = await sql`SELECT current_database() AS db, count(*)::int AS tables FROM pg_tables WHERE schemaname = 'public'`;
      expect(a.endsWith(`/${row.db}`)).toBe(true);
      expect(row.tables).toBe(0);
      const [{ version }] = await sql`SHOW server_version`.then((r) => [{ version: r[0].server_version as string }]);
      expect(Number(version.split('.')[0])).toBeGreaterThanOrEqual(13);
    } finally {
      await sql.end();
    }
  });
});
