// One scenario of every operation, run against the SQLite store (through
// asyncStore) and the PostgreSQL store: the two transcripts, results and
// error codes alike, must be equal, times and event ids aside. A quick guard
// against the backends drifting apart; the contract suite goes further.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asyncStore, openStore, type EventQuery, type Store } from 'regmeta';
import { openPostgresStore } from 'regmeta/postgres';
import { absentManifest, blobDesc, dockerList, dockerManifest, ociIndex, ociManifest } from '../fixtures.js';
import { startPostgres, type PostgresServer } from './server.js';

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

/** What a call gave: its result, or its error's code. */
async function outcome(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    return normalize(await fn());
  } catch (error) {
    return { error: (error as { code?: string }).code ?? String(error) };
  }
}

/** Times and event ids vary between runs: replaced by their kind. */
function normalize(value: unknown): unknown {
  if (value instanceof Date) return 'date';
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (typeof value === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(value)) return 'event id';
  if (Array.isArray(value)) return value.map(normalize);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, v]) => [key, key === 'next' ? 'cursor' : normalize(v)]),
    );
  }
  return value;
}

async function scenario(store: Store): Promise<unknown[]> {
  const out: unknown[] = [];
  const step = async (fn: () => Promise<unknown>) => void out.push(await outcome(fn));
  const me = { actor: 'alice' };
  const config = blobDesc('config', 'application/vnd.oci.image.config.v1+json', 500);
  const layer = blobDesc('layer');
  const image = ociManifest({ config, layers: [layer] });
  const other = dockerManifest({ config: { ...config, mediaType: 'application/vnd.docker.container.image.v1+json' }, layers: [layer] });
  const artifact = ociManifest({ config, layers: [layer], subject: image.descriptor, artifactType: 'application/x-sbom', annotations: { a: 'b' } });
  const index = ociIndex([image.descriptor, other.descriptor]);
  await step(() => store.linkBlob('acme/app', config, me));
  await step(() => store.linkBlob('acme/app', layer, me));
  await step(() => store.linkBlob('acme/app', { digest: layer.digest, size: 7 }, me));
  await step(() => store.putManifest('acme/app', image.digest, image, me, { tag: 'v1', requireReferences: true }));
  await step(() => store.putManifest('acme/app', image.digest, image, me, { tag: 'v1', requireReferences: true }));
  await step(() => store.putManifest('acme/app', other.digest, other, me, { tag: 'v2' }));
  await step(() => store.putManifest('acme/app', artifact.digest, artifact, me));
  await step(() => store.putManifest('acme/app', index.digest, index, me, { tag: 'multi', requireReferences: true }));
  await step(() => store.putManifest('acme/app', undefined, ociIndex([absentManifest('x')]), me, { requireReferences: true }));
  await step(() => store.putManifest('acme/app', undefined, dockerList([absentManifest('y')]), me));
  await step(() => store.putManifest('Bad Name', image.digest, image));
  await step(() => store.putManifest('acme/app', `sha256:${'0'.repeat(64)}`, image));
  await step(() => store.putTag('acme/app', 'v1', { digest: other.digest }, me));
  await step(() => store.putTag('acme/app', 'v1', { digest: other.digest }, me));
  await step(() => store.putTag('acme/app', 'v3', { digest: absentManifest('z').digest }, me));
  await step(() => store.putTag('acme/app', '-bad', { digest: other.digest }, me));
  await step(() => store.getTag('acme/app', 'v1'));
  await step(() => store.getTag('acme/app', 'nope'));
  await step(() => store.getTag('no/repo', 'v1'));
  await step(() => store.allTags('acme/app'));
  await step(() => store.allTags('acme/app', { n: 2, last: 'multi' }));
  await step(() => store.allTags('acme/app', { n: -1 }));
  await step(() => store.tagDescriptors('acme/app', { n: 2 }));
  await step(() => store.lookupTags('acme/app', other.digest));
  await step(() => store.tagHistory('acme/app', 'v1'));
  await step(() => store.tagHistory('acme/app', 'never'));
  await step(() => store.getManifest('acme/app', image.digest));
  await step(() => store.statManifest('acme/app', other.digest));
  await step(() => store.getManifestByReference('acme/app', 'v2', { head: true }));
  await step(() => store.getManifestByReference('acme/app', { digest: index.digest }));
  await step(() => store.referrers('acme/app', image.digest));
  await step(() => store.referrers('acme/app', image.digest, { artifactType: 'application/x-other' }));
  await step(() => store.referrers('no/repo', image.digest));
  await step(() => store.catalog());
  await step(() => store.mountBlob('acme/copy', layer.digest, 'acme/app', me));
  await step(() => store.mountBlob('acme/copy', config.digest, 'no/repo', me));
  await step(() => store.statBlob('acme/copy', layer.digest));
  await step(() => store.statBlob('acme/copy', config.digest));
  await step(() => store.catalog({ n: 1 }));
  await step(() => store.unlinkBlob('acme/app', layer.digest, me));
  await step(() => store.unlinkBlob('acme/copy', layer.digest, me));
  await step(() => store.unlinkBlob('acme/copy', layer.digest, me));
  await step(() => store.deleteManifest('acme/app', image.digest, me));
  await step(() => store.deleteTag('acme/app', 'multi', me));
  await step(() => store.deleteTag('acme/app', 'multi', me));
  await step(() => store.deleteManifest('acme/app', index.digest, me));
  await step(() => store.untaggedManifests({ olderThan: new Date(Date.now() + 60_000) }));
  await step(() => store.collectManifest('acme/app', other.digest, me, { olderThan: new Date(Date.now() + 60_000) }));
  await step(() => store.collectManifest('acme/app', artifact.digest, me, { olderThan: new Date(Date.now() + 60_000) }));
  await step(() => store.collectManifest('acme/app', artifact.digest, me, { olderThan: new Date(0) }));
  await step(() => store.unreferencedBlobs({ olderThan: new Date(Date.now() + 60_000) }));
  await step(() => store.deleteBlob(layer.digest, me));
  let removed = 0;
  await step(() => store.collectBlob(blobDesc('absent').digest, me, { olderThan: new Date(Date.now() + 60_000), removeFile: () => void removed++ }));
  await step(() => store.linkBlob('acme/tmp', blobDesc('tmp'), me));
  await step(() => store.collectBlob(blobDesc('tmp').digest, me, { olderThan: new Date(Date.now() + 60_000), removeFile: () => void removed++ }));
  await step(() => store.whileBlobUnknown(blobDesc('tmp').digest, () => void removed++));
  await step(() => store.whileBlobUnknown(config.digest, () => void removed++));
  out.push({ removed });
  await step(() => store.createEvent({ actor: 'gc', type: 'DELETE', object: { type: 'BLOB', id: config.digest }, digest: config.digest }));
  await step(() => store.createEvent({ actor: 'gc', type: 'BOGUS' as 'DELETE', object: { type: 'BLOB', id: 'x' } }));
  await step(() => store.notifications.open('http://hook'));
  await step(() => store.deleteRepository('acme/copy', me));
  await step(() => store.deleteRepository('acme/copy', me));
  await step(() => store.notifications.eventsAfter('http://hook', 10));
  await step(() => store.notifications.status());
  await step(() => store.getEvents({ actor: 'alice', perPage: 5 }));
  await step(() => store.getEvents({ actor: 'gc', queryingUser: 'alice' } as EventQuery));
  await step(() => store.getEvents({ objectType: 'TAG', type: 'UPDATE' }));
  await step(() => store.getEvents({ repository: 'acme/app', perPage: 1000 }));
  await step(async () => (await store.stats()).counts);
  await step(async () => (await store.check()).problems);
  return out;
}

describe('the PostgreSQL store and the SQLite store', () => {
  it('give the same transcript for a scenario of every operation, errors included', async () => {
    const sqlite = asyncStore(openStore(':memory:'));
    const pg = await openPostgresStore(await server.createDatabase());
    try {
      const expected = await scenario(sqlite);
      const got = await scenario(pg);
      for (let i = 0; i < expected.length; i++) expect({ step: i, got: got[i] }).toEqual({ step: i, got: expected[i] });
    } finally {
      await sqlite.close();
      await pg.close();
    }
  });
});
