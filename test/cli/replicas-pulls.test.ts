// Pull statistics on two real `regmeta serve` replicas sharing one
// PostgreSQL database: each adds its own counts (written at SIGTERM), and
// 10,000 pulls cost the database 10,000 reads and nothing more, counted
// exactly by each replica's own store-call metrics (a count of the calls
// made, not a report that comes late or holds other work).

import postgresClient from 'postgres';
import { describe, expect, it } from 'vitest';
import { pushImage } from '../server/helpers.js';
import { callsBetween, pullMany, storeCalls } from './pulls.js';
import { replicaSuite } from './replicas.js';

describe('pull statistics on two replicas of one PostgreSQL database', () => {
  const suite = replicaSuite();

  it('each replica adds its own counts, and 10,000 pulls are 10,000 reads', { timeout: 240_000 }, async () => {
    // Written at SIGTERM only: no batch among the counted calls, which are then exactly the reads.
    const { database, all } = await suite.cluster(2, ['--pulls-flush-interval', '1h']);
    const [a, b] = all;
    const { digest } = await pushImage(a.url, 'acme/app', 'v1', 'replicated');
    const before = await Promise.all([storeCalls(a.url), storeCalls(b.url)]);
    await Promise.all([pullMany(a.url, 'acme/app', 'v1', 3_000), pullMany(b.url, 'acme/app', 'v1', 2_000)]);
    await Promise.all([pullMany(a.url, 'acme/app', digest, 4_000), pullMany(b.url, 'acme/app', digest, 1_000)]);
    const calls = [callsBetween(before[0], await storeCalls(a.url)), callsBetween(before[1], await storeCalls(b.url))];
    console.info(`10,000 pulls on two replicas: ${JSON.stringify(calls)}`);
    // One read per pull, and nothing else: the batches of pulls come at SIGTERM, after the hour's none.
    expect(calls).toEqual([{ getManifestByReference: 7_000 }, { getManifestByReference: 3_000 }]);
    expect(await a.stop()).toBe(0);
    expect(await b.stop()).toBe(0);
    const sql = postgresClient(database, { max: 1, onnotice: () => {} });
    try {
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
