// Webhooks from several replicas on one PostgreSQL database: each replica
// (a store with its own connections, a Notifier of its own) would read the
// same cursor and POST the same batch; one at a time holds the endpoint's
// claim, and another takes over when it stops. A real PostgreSQL server and
// a real HTTP receiver.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Notifier } from 'regmeta/server';
import { openPostgresStore } from 'regmeta/postgres';
import type { Store } from 'regmeta';
import { startPostgres, type PostgresServer } from '../store/postgres/server.js';
import { startReceiver, type Receiver } from './receiver.js';

let server: PostgresServer;
let receiver: Receiver;
const running: { notifier: Notifier; store: Store }[] = [];

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});
afterEach(async () => {
  for (const { notifier, store } of running.splice(0)) {
    await notifier.stop();
    await store.close();
  }
  await receiver?.close();
});

/** A replica's part in webhooks: its own store on `url` and its own Notifier. */
async function replica(url: string): Promise<{ notifier: Notifier; store: Store }> {
  const store = await openPostgresStore(url, { maxConnections: 3 });
  const notifier = new Notifier({
    store,
    endpoints: [{ url: receiver.url }],
    baseUrl: 'http://registry.test',
    batchSize: 3,
    pollInterval: 50,
    retryMin: 20,
    retryMax: 200,
    onError: () => {},
  });
  const started = { notifier, store };
  running.push(started);
  return started;
}

/** A DELETE REPOSITORY event: one that becomes a webhook event, without pushing anything. */
const deletion = (repository: string) => ({ actor: 'ops', type: 'DELETE', object: { type: 'REPOSITORY', id: repository }, repository }) as const;

async function settled(store: Store): Promise<void> {
  // Longer than several poll intervals: a second replica delivering would have POSTed by then.
  for (let quiet = 0; quiet < 10; ) {
    const [status] = await store.notifications.status();
    quiet = status.backlog === 0 ? quiet + 1 : 0;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('webhooks from several replicas on one PostgreSQL database', () => {
  it('deliver each event once, in commit order, whichever replica committed it', async () => {
    receiver = await startReceiver();
    const url = await server.createDatabase();
    const replicas = [await replica(url), await replica(url), await replica(url)];
    for (const { notifier } of replicas) await notifier.start();

    const ids: string[] = [];
    for (let i = 0; i < 30; i++) ids.push((await replicas[i % 3].store.createEvent(deletion(`app/${i}`))).id);
    await receiver.until(() => new Set(receiver.acknowledged()).size === ids.length);
    await settled(replicas[0].store);

    expect(receiver.acknowledged()).toEqual(ids);
    // One replica did all the delivering.
    expect(new Set(receiver.deliveries.flatMap((d) => d.events.map((e) => e.source.instanceID))).size).toBe(1);
  });

  it('are taken over by another replica when the delivering one stops', async () => {
    receiver = await startReceiver();
    const url = await server.createDatabase();
    const first = await replica(url);
    await first.notifier.start();
    const before = (await first.store.createEvent(deletion('app/before'))).id;
    await receiver.until(() => receiver.acknowledged().includes(before));

    const second = await replica(url);
    await second.notifier.start();
    // The first still holds the claim: the second waits.
    const during = (await second.store.createEvent(deletion('app/during'))).id;
    await receiver.until(() => receiver.acknowledged().includes(during));
    const firstSource = receiver.deliveries[0].events[0].source.instanceID;
    expect(receiver.deliveries.every((d) => d.events[0].source.instanceID === firstSource)).toBe(true);

    // Acknowledged and its cursor moved: a batch in flight at a stop would be sent again, by design.
    await settled(first.store);
    await first.notifier.stop();
    await first.store.close();
    const after = (await second.store.createEvent(deletion('app/after'))).id;
    await receiver.until(() => receiver.acknowledged().includes(after));
    await settled(second.store);

    expect(receiver.acknowledged()).toEqual([before, during, after]);
    expect(receiver.deliveries.at(-1)!.events[0].source.instanceID).not.toBe(firstSource);
  });

  it('claim an endpoint one store at a time, let go on release and on close, and refuse a bad endpoint', async () => {
    const url = await server.createDatabase();
    const [a, b] = [await openPostgresStore(url), await openPostgresStore(url)];
    try {
      await a.notifications.open('http://hook.test/a');
      expect(await a.notifications.claim('http://hook.test/a')).toBe(true);
      expect(await a.notifications.claim('http://hook.test/a')).toBe(true);
      expect(await b.notifications.claim('http://hook.test/a')).toBe(false);
      // Another endpoint is claimed on its own.
      expect(await b.notifications.claim('http://hook.test/b')).toBe(true);
      await a.notifications.release('http://hook.test/a');
      expect(await b.notifications.claim('http://hook.test/a')).toBe(true);
      expect(await a.notifications.claim('http://hook.test/a')).toBe(false);
      await b.close();
      expect(await a.notifications.claim('http://hook.test/a')).toBe(true);
      await expect(a.notifications.claim('')).rejects.toMatchObject({ code: 'ARGUMENT_INVALID' });
    } finally {
      await a.close();
      await b.close();
    }
  });
});
