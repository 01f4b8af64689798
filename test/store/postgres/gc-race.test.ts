// The garbage collector against a manifest push committing on another
// replica at the same moment: the push had checked (and locked) the links of
// its blobs, the collector had found the blob unreferenced; whichever
// commits, the other must see it. The push is held inside its transaction by
// a trigger that waits for a lock the test holds, so the interleaving is
// certain rather than lucky.

import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStore, type AsyncStore } from 'regmeta/postgres';
import { blobDesc, ociManifest } from '../fixtures.js';
import { startPostgres, type PostgresServer } from './server.js';

let server: PostgresServer;
const opened: AsyncStore[] = [];
const raws: postgres.Sql[] = [];
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await Promise.all(opened.map((store) => store.close()));
  await Promise.all(raws.map((sql) => sql.end()));
  await server?.stop();
});

const GATE = 4711;

/** Two stores (replicas) on a new database, and a raw connection whose session lock holds every tag write at a gate. */
async function gatedReplicas(): Promise<{ pusher: AsyncStore; collector: AsyncStore; sql: postgres.Sql }> {
  const url = await server.createDatabase();
  const pusher = await openPostgresStore(url);
  const collector = await openPostgresStore(url);
  opened.push(pusher, collector);
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  raws.push(sql);
  await sql.unsafe(`
    CREATE FUNCTION gate_tag_write() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_advisory_xact_lock_shared(${GATE});
      RETURN NEW;
    END $$;
    CREATE TRIGGER gate_tag_write BEFORE INSERT OR UPDATE ON tag FOR EACH ROW EXECUTE FUNCTION gate_tag_write();`);
  return { pusher, collector, sql };
}

/** Resolves once `n` backends wait for a lock: the gated push, and whatever waits on it. */
async function waitingForLocks(sql: postgres.Sql, n: number): Promise<void> {
  for (;;) {
    const [{ waiting }] = await sql<{ waiting: number }[]>`
      SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`;
    if (waiting >= n) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('gc and a manifest push at the same moment on two replicas', () => {
  it('never leaves a tagged manifest whose blob the collector deleted: the collection is refused (BLOB_REFERENCED)', async () => {
    const { pusher, collector, sql } = await gatedReplicas();
    const config = blobDesc('config', 'application/vnd.oci.image.config.v1+json', 300);
    const layer = blobDesc('layer');
    await pusher.linkBlob('gc/race', config);
    await pusher.linkBlob('gc/race', layer);
    const image = ociManifest({ config, layers: [layer] });

    await sql`SELECT pg_advisory_lock(${GATE})`;
    // The push checks and locks its blobs' links, records its references, and waits at the gate before its tag.
    const push = pusher.putManifest('gc/race', image.digest, image, {}, { tag: 'v1', requireReferences: true });
    await waitingForLocks(sql, 1);
    // Nothing references the layer yet (the push has not committed): gc takes it, as far as it can see.
    const collect = collector.collectBlob(layer.digest, { actor: 'GARBAGE_COLLECTOR' }, { olderThan: new Date(Date.now() + 60_000) });
    const collected = collect.then(
      () => 'collected',
      (error: { code?: string }) => error.code,
    );
    await waitingForLocks(sql, 2);
    await sql`SELECT pg_advisory_unlock(${GATE})`;

    await push;
    expect(await collected).toBe('BLOB_REFERENCED');
    expect((await pusher.statBlob('gc/race', layer.digest)).digest).toBe(layer.digest);
    expect((await collector.getManifestByReference('gc/race', 'v1')).digest).toBe(image.digest);
  });
});
