// tagDetails by pull time on PostgreSQL, the tags' pull columns written
// directly (the statements walk tag_by_pull); see ../tag-pulls.ts.

import postgres from 'postgres';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { openPostgresStore } from 'regmeta/postgres';
import { checkPulledSort } from '../tag-pulls.js';
import { startPostgres, type PostgresServer } from './server.js';

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

describe('tagDetails sorted by pull time (PostgreSQL)', () => {
  it('puts tags never pulled first, breaks ties by name, and pages through ties', async () => {
    const url = await server.createDatabase();
    const store = await openPostgresStore(url);
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await checkPulledSort(store, async (repo, tag, at, count) => {
        await sql`
          UPDATE tag SET pulled_at = ${at}, pull_count = ${count}
          WHERE name = ${tag} AND repository_id = (SELECT id FROM repository WHERE name = ${repo})`;
      });
    } finally {
      await sql.end();
      await store.close();
    }
  });
});
