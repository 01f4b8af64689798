// Pull statistics on two real `regmeta serve` replicas sharing one
// PostgreSQL database: each adds its own counts (written at SIGTERM), and
// 10,000 pulls cost the database 10,000 one-statement reads and nothing
// more, counted by PostgreSQL itself (pg_stat_database's committed
// transactions: each read outside a transaction is one).

import postgresClient from 'postgres';
import { describe, expect, it } from 'vitest';
import { pushImage } from '../server/helpers.js';
import { pullMany } from './pulls.js';
import { replicaSuite, until } from './replicas.js';

describe('pull statistics on two replicas of one PostgreSQL database', () => {
  const suite = replicaSuite();

  it('each replica adds its own counts, and 10,000 pulls are 10,000 reads', { timeout: 240_000 }, async () => {
    // Written at SIGTERM only: no batch among the counted transactions.
    const { database, all } = await suite.cluster(2, ['--pulls-flush-interval', '1h']);
    const [a, b] = all;
    const { digest } = await pushImage(a.url, 'acme/app', 'v1', 'replicated');
    const sql = postgresClient(database, { max: 1, onnotice: () => {} });
    try {
      // Each statement of this connection is a transaction too: one per read of the count.
      const commits = async () => Number((await sql`SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`)[0].xact_commit);
      const before = await commits();
      await Promise.all([pullMany(a.url, 'acme/app', 'v1', 3_000), pullMany(b.url, 'acme/app', 'v1', 2_000)]);
      await Promise.all([pullMany(a.url, 'acme/app', digest, 4_000), pullMany(b.url, 'acme/app', digest, 1_000)]);
      // Backends report their counts within seconds of going idle: wait for all 10,000 to show.
      let reads = 0;
      let polls = 0;
      await until(async () => {
        polls++;
        reads = (await commits()) - before - polls;
        return reads >= 10_000;
      }, '10,000 reads in pg_stat_database', 120);
      console.info(`10,000 pulls on two replicas: ${reads} transactions in the database`);
      // The replicas' own work between (the upload sweeper, the subscription's poll) is a handful at most.
      expect(reads).toBeLessThan(10_000 + 25);
      expect(await a.stop()).toBe(0);
      expect(await b.stop()).toBe(0);
      const [manifest] = await sql`SELECT m.pull_count, m.pulled_at FROM manifest m JOIN repository r ON r.id = m.repository_id WHERE r.name = 'acme/app' AND m.digest = ${digest}`;
      const [tag] = await sql`SELECT t.pull_count FROM tag t JOIN repository r ON r.id = t.repository_id WHERE r.name = 'acme/app' AND t.name = 'v1'`;
      expect(Number(manifest.pull_count)).toBe(10_000);
      expect(Number(tag.pull_count)).toBe(5_000);
      expect(manifest.pulled_at).not.toBeNull();
    } finally {
      await sql.end();
    }
  });
});
