// subscribe on every backend: every event committed after the subscription,
// in commit order and once each, whichever connection (or replica) committed
// it, optionally filtered by getEvents' own query and rule. Delivery may be
// asynchronous, so each test waits for it; a last "flush" event, once it
// arrives, shows that nothing else was delivered before it.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Store, Event, EventQuery, NewEvent } from 'regmeta';
import { blobDigest, eventsOf, gcEvent, ociManifest, putBuiltAsync, rejection } from '../fixtures.js';
import { backends, storePerTest, type Opened } from './backends.js';

const WAIT = { timeout: 10_000, interval: 5 };

/** Commits one more event and waits until `got` has it: `got` then holds all it will get of what came before. */
async function flush(store: Store, got: Event[], event: NewEvent = gcEvent('flush')): Promise<Event> {
  const marker = await store.createEvent(event);
  await vi.waitFor(() => expect(got.map((e) => e.id)).toContain(marker.id), WAIT);
  return marker;
}

const digests = (events: Event[]) => events.map((e) => e.digest);

describe.each(backends)('$name', (backend) => {
  const store = storePerTest(backend);

  const put = (repo: string, seed: string, actor?: string) => putBuiltAsync(store, repo, ociManifest({ seed }), actor);

  describe('subscribe', () => {
    it('delivers the events committed after the call, in commit order, once each', async () => {
      await put('acme/app', 'before');
      const got: Event[] = [];
      const unsubscribe = await store.subscribe((e) => got.push(e));
      const m = await put('acme/app', 'after', 'alice');
      await store.putTag('acme/app', 'latest', { digest: m.digest });
      const gc = await store.createEvent(gcEvent('x'));
      const expected = (await eventsOf(store)).slice(-3);
      const marker = await flush(store, got);
      expect(got).toEqual([...expected, marker]);
      expect(got[2]).toEqual(gc);
      unsubscribe();
    });

    it('delivers every event of a multi-event change', async () => {
      const m = await put('acme/app', 'image');
      await store.putTag('acme/app', 'a', { digest: m.digest });
      await store.putTag('acme/app', 'b', { digest: m.digest });
      const got: Event[] = [];
      const unsubscribe = await store.subscribe((e) => got.push(e));
      await store.deleteManifest('acme/app', m.digest);
      const marker = await flush(store, got);
      expect(got.map((e) => `${e.type} ${e.object.id}`)).toEqual([
        'DELETE acme/app:a',
        'DELETE acme/app:b',
        `DELETE acme/app@${m.digest}`,
        `DELETE ${marker.object.id}`,
      ]);
      unsubscribe();
    });

    it('delivers nothing after unsubscribe', async () => {
      const got: Event[] = [];
      const unsubscribe = await store.subscribe((e) => got.push(e));
      await store.createEvent(gcEvent('one'));
      await vi.waitFor(() => expect(got).toHaveLength(1), WAIT);
      unsubscribe();
      await store.createEvent(gcEvent('two'));
      // A later subscriber proves that delivery ran past the second commit.
      const later: Event[] = [];
      const u2 = await store.subscribe((e) => later.push(e));
      await flush(store, later);
      expect(digests(got)).toEqual([blobDigest('one')]);
      expect(digests(later)).toEqual([blobDigest('flush')]);
      u2();
    });

    it('a later subscriber does not get what was committed before it subscribed, delivered or not', async () => {
      const first: Event[] = [];
      const second: Event[] = [];
      const u1 = await store.subscribe((e) => first.push(e));
      // Not waited for: 'one' may still be on its way to the first subscriber.
      await store.createEvent(gcEvent('one'));
      const u2 = await store.subscribe((e) => second.push(e));
      await store.createEvent(gcEvent('two'));
      await flush(store, first);
      await vi.waitFor(() => expect(second).toHaveLength(2), WAIT);
      expect(digests(first)).toEqual([blobDigest('one'), blobDigest('two'), blobDigest('flush')]);
      expect(digests(second)).toEqual([blobDigest('two'), blobDigest('flush')]);
      u1();
      u2();
    });

    it('a subscriber that throws breaks neither the write nor the other subscribers', async () => {
      const errors: unknown[] = [];
      const got: Event[] = [];
      const u1 = await store.subscribe(
        () => {
          throw new Error('subscriber failed');
        },
        { onError: (error) => errors.push(error) },
      );
      const u2 = await store.subscribe((e) => got.push(e));
      const m = await put('acme/app', 'image');
      await store.putTag('acme/app', 'latest', { digest: m.digest });
      expect((await store.getTag('acme/app', 'latest')).digest).toBe(m.digest);
      await vi.waitFor(() => expect([got.length, errors.length]).toEqual([3, 3]), WAIT);
      expect(got.map((e) => `${e.type} ${e.object.type}`)).toEqual(['CREATE REPOSITORY', 'CREATE MANIFEST', 'CREATE TAG']);
      expect((errors[0] as Error).message).toBe('subscriber failed');
      u1();
      u2();
    });

    it('a subscriber whose onError throws too does not stop delivery to the others', async () => {
      const got: Event[] = [];
      const u1 = await store.subscribe(
        () => {
          throw new Error('subscriber failed');
        },
        {
          onError: () => {
            throw new Error('and so did its error handler');
          },
        },
      );
      const u2 = await store.subscribe((e) => got.push(e));
      await store.createEvent(gcEvent('one'));
      await store.createEvent(gcEvent('two'));
      await flush(store, got);
      expect(digests(got)).toEqual([blobDigest('one'), blobDigest('two'), blobDigest('flush')]);
      u1();
      u2();
    });

    it('a throwing subscriber without onError is reported to console.error, and the write stands', async () => {
      const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
      try {
        const unsubscribe = await store.subscribe(() => {
          throw new Error('boom');
        });
        const event = await store.createEvent(gcEvent('x'));
        await vi.waitFor(() => expect(spy).toHaveBeenCalledTimes(1), WAIT);
        expect((await store.getEvents({})).events).toEqual([event]);
        unsubscribe();
      } finally {
        spy.mockRestore();
      }
    });
  });

  describe('subscribe across connections', () => {
    let shared: Opened;
    let other: Store;
    beforeEach(async () => {
      shared = await backend.open({ shared: true });
      other = await shared.connect();
    });
    afterEach(() => shared.cleanup());

    it("sees another connection's commits, in order, once each", async () => {
      await other.createEvent(gcEvent('before'));
      const got: Event[] = [];
      const unsubscribe = await shared.store.subscribe((e) => got.push(e));
      const m = await putBuiltAsync(other, 'acme/app', ociManifest(), 'remote');
      await other.putTag('acme/app', 'latest', { digest: m.digest });
      for (let i = 0; i < 5; i++) await other.createEvent(gcEvent(`gc${i}`));
      const expected = (await eventsOf(other)).slice(1);
      expect(expected).toHaveLength(8);
      await vi.waitFor(() => expect(got).toHaveLength(8), WAIT);
      expect(got).toEqual(expected);
      // Its own write after the others' comes after them, once.
      const own = await shared.store.createEvent(gcEvent('own'));
      const last = await other.createEvent(gcEvent('last'));
      const marker = await flush(other, got);
      expect(got.slice(8)).toEqual([own, last, marker]);
      unsubscribe();
    });

    it("interleaves this connection's and another's commits in commit order", async () => {
      const got: Event[] = [];
      const unsubscribe = await shared.store.subscribe((e) => got.push(e));
      await shared.store.createEvent(gcEvent('own1'));
      await other.createEvent(gcEvent('remote'));
      await shared.store.createEvent(gcEvent('own2'));
      await flush(other, got);
      expect(digests(got)).toEqual([blobDigest('own1'), blobDigest('remote'), blobDigest('own2'), blobDigest('flush')]);
      unsubscribe();
    });

    it('a subscriber added while other commits are still undelivered does not get them', async () => {
      const first: Event[] = [];
      const second: Event[] = [];
      const u1 = await shared.store.subscribe((e) => first.push(e));
      // Committed elsewhere, not yet delivered here.
      await other.createEvent(gcEvent('one'));
      const u2 = await shared.store.subscribe((e) => second.push(e));
      await other.createEvent(gcEvent('two'));
      await vi.waitFor(() => expect(first).toHaveLength(2), WAIT);
      await flush(other, second);
      expect(digests(first.slice(0, 2))).toEqual([blobDigest('one'), blobDigest('two')]);
      expect(digests(second)).toEqual([blobDigest('two'), blobDigest('flush')]);
      u1();
      u2();
    });

    it('after unsubscribe, later commits elsewhere are not delivered to that subscriber', async () => {
      const got: Event[] = [];
      const unsubscribe = await shared.store.subscribe((e) => got.push(e));
      await other.createEvent(gcEvent('one'));
      await vi.waitFor(() => expect(got).toHaveLength(1), WAIT);
      unsubscribe();
      await other.createEvent(gcEvent('two'));
      // A later subscriber proves the delivery ran past the second commit.
      const later: Event[] = [];
      const u2 = await shared.store.subscribe((e) => later.push(e));
      await other.createEvent(gcEvent('three'));
      await vi.waitFor(() => expect(later).toHaveLength(1), WAIT);
      expect(digests(got)).toEqual([blobDigest('one')]);
      expect(digests(later)).toEqual([blobDigest('three')]);
      u2();
    });
  });

  describe('subscribe with a query', () => {
    it('delivers only what getEvents would return for the query', async () => {
      const got: Event[] = [];
      const query = { actor: 'alice', repository: 'acme/app', type: 'CREATE' } as const;
      const unsubscribe = await store.subscribe((e) => got.push(e), { query });
      const m = ociManifest();
      await store.putManifest('acme/app', m.digest, m, { actor: 'alice' });
      await store.putManifest('acme/other', m.digest, m, { actor: 'alice' });
      await store.putTag('acme/app', 'v1', { digest: m.digest }, { actor: 'bob' });
      await store.deleteTag('acme/app', 'v1', { actor: 'alice' });
      // A last event the query selects: once it is delivered, so is everything before it.
      await flush(store, got, { actor: 'alice', type: 'CREATE', object: { type: 'TAG', id: 'acme/app:flush' }, repository: 'acme/app' });
      unsubscribe();
      const line = (e: Event) => `${e.actor} ${e.type} ${e.object.id}`;
      expect(got.map(line)).toEqual(['alice CREATE acme/app', `alice CREATE acme/app@${m.digest}`, 'alice CREATE acme/app:flush']);
      const listed = (await store.getEvents(query)).events;
      expect(listed.map(line).reverse()).toEqual(got.map(line));
    });

    it('refuses a query field that is not a filter, as getEvents does', async () => {
      const refused = store.subscribe(() => {}, { query: { actor: 'bob', queryingUser: 'alice' } as EventQuery });
      expect((await rejection(refused)).code).toBe('EVENT_INVALID');
    });
  });
});
