// The event log on PostgreSQL shared by replicas: every subscriber on every
// store gets every event once, in commit order, woken by NOTIFY; and the
// trap of numbers taken before commit (a later transaction committing first)
// cannot make a reader of `seq > last` skip one.

import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStore } from 'regmeta/postgres';
import type { Event, Store } from 'regmeta';
import { startPostgres, type PostgresServer } from './server.js';

let server: PostgresServer;
const closers: (() => Promise<unknown>)[] = [];
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await Promise.all(closers.map((close) => close()));
  await server?.stop();
});

async function replicas(n: number): Promise<{ stores: Store[]; url: string }> {
  const url = await server.createDatabase();
  const stores: Store[] = [];
  for (let i = 0; i < n; i++) stores.push(await openPostgresStore(url));
  closers.push(...stores.map((store) => () => store.close()));
  return { stores, url };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits (at most 200 × 25 ms) until `done()`; fails the test if it never is. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !done(); i++) await sleep(25);
  expect(done()).toBe(true);
}

const repositoryEvent = (actor: string, id: string) => ({ actor, type: 'CREATE' as const, object: { type: 'REPOSITORY' as const, id } });

async function subscribeAll(store: Store): Promise<Event[]> {
  const got: Event[] = [];
  closers.push(await store.subscribe((event) => void got.push(event)).then((stop) => async () => stop()));
  return got;
}

describe('subscribers on other replicas', () => {
  it('are woken by NOTIFY and get another store’s events within moments, filtered by their query', async () => {
    const { stores: [writer, reader] } = await replicas(2);
    const all = await subscribeAll(reader);
    const mine: Event[] = [];
    closers.push(await reader.subscribe((event) => void mine.push(event), { query: { actor: 'alice' } }).then((stop) => async () => stop()));
    await writer.createEvent(repositoryEvent('bob', 'one'));
    await writer.createEvent(repositoryEvent('alice', 'two'));
    await until(() => all.length === 2 && mine.length === 1);
    expect(all.map((e) => e.object.id)).toEqual(['one', 'two']);
    expect(mine.map((e) => e.object.id)).toEqual(['two']);
  });

  it('get every event of concurrent writers on three stores once, in commit order, on each of two other stores', async () => {
    const { stores } = await replicas(5);
    const [a, b] = [await subscribeAll(stores[3]), await subscribeAll(stores[4])];
    const perWriter = 40;
    await Promise.all(
      stores.slice(0, 3).map(async (store, w) => {
        for (let i = 0; i < perWriter; i++) await store.createEvent(repositoryEvent(`w${w}`, `w${w}-${i}`));
      }),
    );
    await until(() => a.length >= 3 * perWriter && b.length >= 3 * perWriter);
    await sleep(200); // nothing more may come
    const log = (await stores[0].getEvents({ perPage: 1000 })).events.reverse();
    expect(log).toHaveLength(3 * perWriter);
    expect(a.map((e) => e.id)).toEqual(log.map((e) => e.id));
    expect(b.map((e) => e.id)).toEqual(log.map((e) => e.id));
    // Each writer's own events in the order it wrote them.
    for (let w = 0; w < 3; w++) {
      expect(a.filter((e) => e.actor === `w${w}`).map((e) => e.object.id)).toEqual(Array.from({ length: perWriter }, (_, i) => `w${w}-${i}`));
    }
  });
});

describe('a subscriber whose listening connection is lost', () => {
  it('listens again once the server ends its connection, and misses nothing, once each, in order', async () => {
    const { stores: [writer, reader], url } = await replicas(2);
    const got = await subscribeAll(reader);
    await writer.createEvent(repositoryEvent('w', 'before'));
    await until(() => got.length === 1);
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    closers.push(() => sql.end());
    // The server ends the listening connection, as a restart or a network cut would.
    const ended = await sql`
      SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity
      WHERE datname = current_database() AND query ILIKE 'listen%'`;
    expect(ended.length).toBe(1);
    await writer.createEvent(repositoryEvent('w', 'meanwhile'));
    await writer.createEvent(repositoryEvent('w', 'after'));
    await until(() => got.length === 3);
    await sleep(200);
    expect(got.map((e) => e.object.id)).toEqual(['before', 'meanwhile', 'after']);
  });
});

describe('the trap of a number taken before commit', () => {
  it('cannot skip an event: a later writer waits for an open one, and the subscriber gets both, in commit order, once', async () => {
    const { stores: [writer, reader], url } = await replicas(2);
    const got = await subscribeAll(reader);
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    closers.push(() => sql.end());
    const early = await sql.reserve();
    try {
      // A transaction that has taken the next number, the way every event writer does, and stays open.
      await early`BEGIN`;
      const [{ seq }] = await early`
        UPDATE event_head SET seq = seq + 1, published_at = greatest(published_at, ${Date.now()}) RETURNING seq::int`;
      await early`
        INSERT INTO event (seq, id, published_at, actor, type, object_type, object_id)
        SELECT ${seq}, ${'01900000-0000-7000-8000-000000000001'}, published_at, 'early', 'CREATE', 'REPOSITORY', 'early'
        FROM event_head`;
      // A later writer on another connection cannot take a number past it while it is open...
      let later: Event | undefined;
      const writing = writer.createEvent(repositoryEvent('later', 'later')).then((event) => (later = event));
      await sleep(300);
      expect(later).toBeUndefined();
      expect(got).toEqual([]);
      // ...so it commits after it, with the next number, and a reader of seq > last misses neither.
      await early`SELECT pg_notify('regmeta_events', ${String(seq)})`;
      await early`COMMIT`;
      await writing;
    } finally {
      early.release();
    }
    await until(() => got.length === 2);
    await sleep(200);
    expect(got.map((e) => e.object.id)).toEqual(['early', 'later']);
    const log = (await writer.getEvents({})).events.reverse();
    expect(log.map((e) => e.object.id)).toEqual(['early', 'later']);
  });
});
