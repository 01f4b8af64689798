// The garbage collector against a manifest push committing on another
// replica at the same moment: the push had checked (and locked) the links of
// its blobs, the collector had found the blob unreferenced; whichever
// commits, the other must see it. The push is held inside its transaction by
// a trigger that waits for a lock the test holds, so the interleaving is
// certain rather than lucky.

import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStore } from 'regmeta/postgres';
import type { Store } from 'regmeta';
import { blobDesc, ociManifest } from '../fixtures.js';
import { gateTagWrites, type Gate } from './gate.js';
import { startPostgres, type PostgresServer } from './server.js';

let server: PostgresServer;
const opened: Store[] = [];
const raws: postgres.Sql[] = [];
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await Promise.all(opened.map((store) => store.close()));
  await Promise.all(raws.map((sql) => sql.end()));
  await server?.stop();
});

/** Two stores (replicas) on a new database, and a gate on its tag writes. */
async function gatedReplicas(): Promise<{ pusher: Store; collector: Store; gate: Gate }> {
  const url = await server.createDatabase();
  const pusher = await openPostgresStore(url);
  const collector = await openPostgresStore(url);
  opened.push(pusher, collector);
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  raws.push(sql);
  return { pusher, collector, gate: await gateTagWrites(sql) };
}

describe('gc and a manifest push at the same moment on two replicas', () => {
  it('never leaves a tagged manifest whose blob the collector deleted: the collection is refused (BLOB_REFERENCED)', async () => {
    const { pusher, collector, gate } = await gatedReplicas();
    const config = blobDesc('config', 'application/vnd.oci.image.config.v1+json', 300);
    const layer = blobDesc('layer');
    await pusher.linkBlob('gc/race', config);
    await pusher.linkBlob('gc/race', layer);
    const image = ociManifest({ config, layers: [layer] });

    await gate.close();
    // The push checks and locks its blobs' links, records its references, and waits at the gate before its tag.
    const push = pusher.putManifest('gc/race', image.digest, image, {}, { tag: 'v1', requireReferences: true });
    await gate.waiting(1);
    // Nothing references the layer yet (the push has not committed): gc takes it, as far as it can see.
    const collect = collector.collectBlob(layer.digest, { actor: 'GARBAGE_COLLECTOR' }, { olderThan: new Date(Date.now() + 60_000) });
    const collected = collect.then(
      () => 'collected',
      (error: { code?: string }) => error.code,
    );
    await gate.waiting(2);
    await gate.open();

    await push;
    expect(await collected).toBe('BLOB_REFERENCED');
    expect((await pusher.statBlob('gc/race', layer.digest)).digest).toBe(layer.digest);
    expect((await collector.getManifestByReference('gc/race', 'v1')).digest).toBe(image.digest);
  });
});
