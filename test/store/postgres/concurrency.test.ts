// Writers on several connections of one real PostgreSQL server, as replicas
// are: lost races are retried and surface as DATABASE_BUSY only when the
// retries are spent; concurrent tag moves lose nothing; a blob's file
// callbacks run under a lock that another store honours.

import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStore } from 'regmeta/postgres';
import type { Event, Store } from 'regmeta';
import { blobDesc, ociManifest, type Built } from '../fixtures.js';
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

/** `n` stores (pools, as replicas have) on one new database, and a raw connection to it. */
async function replicas(n: number): Promise<{ stores: Store[]; sql: postgres.Sql; url: string }> {
  const url = await server.createDatabase();
  const stores: Store[] = [];
  for (let i = 0; i < n; i++) stores.push(await openPostgresStore(url));
  opened.push(...stores);
  const sql = postgres(url, { max: 2, onnotice: () => {} });
  raws.push(sql);
  return { stores, sql, url };
}

/** Pushes `count` distinct manifests of one config and layer to `repo`. */
async function pushImages(store: Store, repo: string, count: number): Promise<Built[]> {
  const config = blobDesc('config', 'application/vnd.oci.image.config.v1+json', 500);
  const layer = blobDesc('layer');
  await store.linkBlob(repo, config);
  await store.linkBlob(repo, layer);
  const images: Built[] = [];
  for (let i = 0; i < count; i++) {
    const image = ociManifest({ config, layers: [layer], annotations: { n: String(i) } });
    await store.putManifest(repo, image.digest, image);
    images.push(image);
  }
  return images;
}

const allEvents = async (store: Store): Promise<Event[]> => {
  const events: Event[] = [];
  let page: string | undefined;
  do {
    const got = await store.getEvents({ perPage: 1000, page });
    events.push(...got.events);
    page = got.next;
  } while (page);
  return events.reverse();
};

describe('lost races', () => {
  // A trigger that makes PostgreSQL itself raise a serialization failure
  // (SQLSTATE 40001) or a deadlock (40P01) on the first `failures` tag
  // writes, counting every try in a sequence (sequences are not rolled back
  // with the transaction).
  async function failTagWrites(sql: postgres.Sql, failures: number, errcode = 'serialization_failure'): Promise<() => Promise<number>> {
    await sql.unsafe(`
      CREATE SEQUENCE tag_write_tries;
      CREATE FUNCTION fail_tag_write() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF nextval('tag_write_tries') <= ${Number(failures)} THEN
          RAISE EXCEPTION 'provoked' USING ERRCODE = '${errcode}';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER fail_tag_write BEFORE INSERT OR UPDATE ON tag FOR EACH ROW EXECUTE FUNCTION fail_tag_write();`);
    return async () => (await sql`SELECT last_value::int AS tries FROM tag_write_tries`)[0].tries as number;
  }

  it.each(['serialization_failure', 'deadlock_detected'])('retries a %s and succeeds when a later attempt does', async (errcode) => {
    const { stores: [store], sql } = await replicas(1);
    const [image] = await pushImages(store, 'a/b', 1);
    const tries = await failTagWrites(sql, 3, errcode);
    await store.putTag('a/b', 'latest', { digest: image.digest });
    expect(await tries()).toBe(4);
    expect((await store.getTag('a/b', 'latest')).digest).toBe(image.digest);
    // One event for the one write that committed.
    expect((await allEvents(store)).filter((e) => e.object.type === 'TAG')).toHaveLength(1);
  });

  it('surfaces DATABASE_BUSY once the retries are spent, having written nothing', async () => {
    const { stores: [store], sql } = await replicas(1);
    const [image] = await pushImages(store, 'a/b', 1);
    const tries = await failTagWrites(sql, 1000);
    await expect(store.putTag('a/b', 'latest', { digest: image.digest })).rejects.toMatchObject({ code: 'DATABASE_BUSY' });
    const attempts = await tries();
    expect(attempts).toBeGreaterThan(1);
    expect(attempts).toBeLessThan(20);
    await expect(store.getTag('a/b', 'latest')).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
  });

  it('answers DATABASE_BUSY when a row stays locked longer than the busy timeout', async () => {
    const { stores: [store], sql, url } = await replicas(1);
    const [first, second] = await pushImages(store, 'a/b', 2);
    await store.putTag('a/b', 'latest', { digest: first.digest });
    const impatient = await openPostgresStore(url, { busyTimeout: 200 });
    opened.push(impatient);
    const other = await sql.reserve();
    try {
      await other`BEGIN`;
      await other`SELECT 1 FROM tag WHERE name = 'latest' FOR UPDATE`;
      const started = Date.now();
      await expect(impatient.putTag('a/b', 'latest', { digest: second.digest })).rejects.toMatchObject({ code: 'DATABASE_BUSY' });
      expect(Date.now() - started).toBeLessThan(5000);
      await other`ROLLBACK`;
    } finally {
      other.release();
    }
    expect((await store.getTag('a/b', 'latest')).digest).toBe(first.digest);
  });
});

describe('concurrent tag moves on several replicas', () => {
  it('lose nothing: every move is an event whose previous digest is the one before, and the tag ends at the last', async () => {
    const { stores } = await replicas(4);
    const images = await pushImages(stores[0], 'a/b', 8);
    const rounds = 15;
    await Promise.all(
      stores.map(async (store, replica) => {
        for (let round = 0; round < rounds; round++) {
          const image = images[(replica * 3 + round) % images.length];
          await store.putTag('a/b', 'latest', { digest: image.digest }, { actor: `replica${replica}` });
        }
      }),
    );
    const moves = (await allEvents(stores[1])).filter((e) => e.object.type === 'TAG');
    expect(moves.length).toBeGreaterThan(rounds);
    for (let i = 1; i < moves.length; i++) {
      expect(moves[i].type).toBe('UPDATE');
      expect(moves[i].previousDigest).toBe(moves[i - 1].digest);
      expect(moves[i].digest).not.toBe(moves[i - 1].digest);
    }
    const final = (await stores[2].getTag('a/b', 'latest')).digest;
    expect(final).toBe(moves.at(-1)!.digest);
    const history = await stores[3].tagHistory('a/b', 'latest');
    expect(history.map((h) => h.digest)).toEqual(moves.map((e) => e.digest).reverse());
  });

  it('create one repository and one tag when replicas push the same first manifest at once', async () => {
    const { stores } = await replicas(4);
    const config = blobDesc('config', 'application/vnd.oci.image.config.v1+json', 500);
    const image = ociManifest({ config, layers: [] });
    await Promise.all(stores.map((store) => store.putManifest('new/repo', image.digest, image, {}, { tag: 'v1' })));
    const events = await allEvents(stores[0]);
    expect(events.map((e) => `${e.type} ${e.object.type} ${e.object.id}`)).toEqual([
      'CREATE REPOSITORY new/repo',
      `CREATE MANIFEST new/repo@${image.digest}`,
      'CREATE TAG new/repo:v1',
    ]);
  });
});

describe("a blob's file callbacks", () => {
  it('run under a lock another store honours: whileBlobUnknown waits for a placing linkBlob, then finds the blob', async () => {
    const { stores: [pusher, collector] } = await replicas(2);
    const blob = { digest: blobDesc('file').digest, size: 1000 };
    let release!: () => void;
    const placing = new Promise<void>((resolve) => (release = resolve));
    let placed = false;
    const link = pusher.linkBlob('a/b', blob, {}, {
      place: async () => {
        await placing;
        placed = true;
      },
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    let removed = false;
    const sweep = collector.whileBlobUnknown(blob.digest, async () => {
      removed = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(removed).toBe(false);
    release();
    await link;
    expect(placed).toBe(true);
    expect(await sweep).toBe(false);
    expect(removed).toBe(false);
    expect((await collector.statBlob('a/b', blob.digest)).size).toBe(1000);
  });

  it('pass what a callback throws to the caller as is, and roll its transaction back', async () => {
    const { stores: [store] } = await replicas(1);
    const blob = { digest: blobDesc('file').digest, size: 1000 };
    const failure = new Error('disk full');
    await expect(store.linkBlob('a/b', blob, {}, { place: async () => Promise.reject(failure) })).rejects.toBe(failure);
    await expect(store.statBlob('a/b', blob.digest)).rejects.toMatchObject({ code: 'NAME_UNKNOWN' });
    expect(await store.allBlobs()).toEqual([]);
  });
});
