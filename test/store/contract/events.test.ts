// The event log on every backend: createEvent, getEvents (order, bounds,
// filters, keyset pages), and atomicity with the change. The filters select;
// who may read which events is the registry server's rule (test/server/access*).

import { beforeEach, describe, expect, it } from 'vitest';
import type { Store, Event, EventQuery, NewEvent } from 'regmeta';
import { blobDigest, codeOf, eventsOf, gcEvent, ociIndex, ociManifest, putBuiltAsync, tickPast } from '../fixtures.js';
import { backends, storePerTest } from './backends.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Every page of a query, read to the end. */
async function readAll(s: Store, query: EventQuery): Promise<Event[]> {
  const out: Event[] = [];
  let page: string | undefined;
  do {
    const result = await s.getEvents({ ...query, page });
    out.push(...result.events);
    page = result.next;
  } while (page !== undefined);
  return out;
}

/** `count` events created one after another, in commit order. */
async function createMany(s: Store, count: number, seed = (i: number) => gcEvent(String(i))): Promise<Event[]> {
  const created: Event[] = [];
  for (let i = 0; i < count; i++) created.push(await s.createEvent(seed(i)));
  return created;
}

describe.each(backends)('$name', (backend) => {
  const store = storePerTest(backend);


  describe('createEvent', () => {
    it('returns the stored event with a uuid id and a publishedAt of now', async () => {
      const t0 = Date.now();
      const given = gcEvent('a');
      const event = await store.createEvent(given);
      expect(event.id).toMatch(UUID);
      expect(event.publishedAt).toBeInstanceOf(Date);
      expect(event.publishedAt.getTime()).toBeGreaterThanOrEqual(t0);
      expect(event.publishedAt.getTime()).toBeLessThanOrEqual(Date.now());
      expect(event).toMatchObject(given);
    });

    it('stores what getEvents returns, field for field', async () => {
      const event = await store.createEvent({
        actor: 'alice',
        type: 'UPDATE',
        object: { type: 'TAG', id: 'acme/app:latest' },
        repository: 'acme/app',
        tag: 'latest',
        digest: blobDigest('new'),
        previousDigest: blobDigest('old'),
      });
      expect((await store.getEvents({})).events).toEqual([event]);
    });

    it('gives every event its own id', async () => {
      const ids = new Set((await createMany(store, 50)).map((e) => e.id));
      expect(ids.size).toBe(50);
    });

    it('keeps publishedAt at millisecond precision through the database', async () => {
      const event = await store.createEvent(gcEvent('ms'));
      const [read] = (await store.getEvents({})).events;
      expect(read.publishedAt.getTime()).toBe(event.publishedAt.getTime());
    });

    it('omits the optional fields that were not given', async () => {
      const event = await store.createEvent({ actor: '', type: 'CREATE', object: { type: 'REPOSITORY', id: 'acme/app' } });
      expect(Object.keys(event).sort()).toEqual(['actor', 'id', 'object', 'publishedAt', 'type']);
    });

    it.each([
      ['an unknown type', { actor: 'a', type: 'MOVE', object: { type: 'TAG', id: 'x' } }],
      ['an unknown object type', { actor: 'a', type: 'CREATE', object: { type: 'USER', id: 'x' } }],
      ['no object', { actor: 'a', type: 'CREATE' }],
      ['an empty object id', { actor: 'a', type: 'CREATE', object: { type: 'TAG', id: '' } }],
      ['a NUL in the actor', { actor: 'a\0b', type: 'CREATE', object: { type: 'TAG', id: 'x' } }],
      ['a non-string actor', { actor: 42, type: 'CREATE', object: { type: 'TAG', id: 'x' } }],
    ])('refuses %s with EVENT_INVALID and stores nothing', async (_name, bad) => {
      expect(await codeOf(store.createEvent(bad as unknown as NewEvent))).toBe('EVENT_INVALID');
      expect((await store.getEvents({})).events).toEqual([]);
    });

    it('refuses an invalid repository with NAME_INVALID', async () => {
      const bad = { actor: 'a', type: 'CREATE', object: { type: 'REPOSITORY', id: 'X' }, repository: 'Acme/App' } as NewEvent;
      expect(await codeOf(store.createEvent(bad))).toBe('NAME_INVALID');
    });
  });

  describe('getEvents: order and time bounds', () => {
    it('returns events newest first', async () => {
      const created = await createMany(store, 5);
      expect((await store.getEvents({})).events.map((e) => e.id)).toEqual(created.map((e) => e.id).reverse());
    });

    it('publishedAfter is inclusive and publishedBefore exclusive', async () => {
      const created: Event[] = [];
      for (let i = 0; i < 4; i++) {
        const event = await store.createEvent(gcEvent(String(i)));
        created.push(event);
        tickPast(event.publishedAt.getTime());
      }
      const at = created[1].publishedAt;
      const after = (await store.getEvents({ publishedAfter: at })).events.map((e) => e.id);
      expect(after).toEqual([created[3].id, created[2].id, created[1].id]);
      const before = (await store.getEvents({ publishedBefore: at })).events.map((e) => e.id);
      expect(before).toEqual([created[0].id]);
      const between = (await store.getEvents({ publishedAfter: at, publishedBefore: created[3].publishedAt })).events;
      expect(between.map((e) => e.id)).toEqual([created[2].id, created[1].id]);
      expect((await store.getEvents({ publishedAfter: at, publishedBefore: at })).events).toEqual([]);
    });

    it('refuses an invalid Date bound with EVENT_INVALID', async () => {
      expect(await codeOf(store.getEvents({ publishedAfter: new Date(NaN) }))).toBe('EVENT_INVALID');
      expect(await codeOf(store.getEvents({ publishedBefore: '2020-01-01' as unknown as Date }))).toBe('EVENT_INVALID');
    });
  });

  describe('getEvents: filters are exact', () => {
    beforeEach(async () => {
      const x = await putBuiltAsync(store, 'acme/x', ociManifest({ seed: 'x' }), 'alice');
      const xy = await putBuiltAsync(store, 'acme/xy', ociManifest({ seed: 'xy' }), 'alice');
      await store.putTag('acme/x', 'latest', { digest: x.digest }, { actor: 'alice' });
      await store.putTag('acme/xy', 'latest', { digest: xy.digest }, { actor: 'bob' });
      await store.deleteTag('acme/xy', 'latest', { actor: 'bob' });
      await store.createEvent(gcEvent('gc'));
    });

    it("repository 'acme/x' never matches 'acme/xy'", async () => {
      const events = await readAll(store, { repository: 'acme/x' });
      expect(events.length).toBe(3);
      expect(events.every((e) => e.repository === 'acme/x')).toBe(true);
      expect(await readAll(store, { repository: 'acme' })).toEqual([]);
    });

    it('type, objectType and actor each select only their events', async () => {
      expect((await readAll(store, { type: 'DELETE' })).map((e) => e.object.type).sort()).toEqual(['BLOB', 'TAG']);
      expect((await readAll(store, { objectType: 'TAG' })).map((e) => `${e.type} ${e.object.id}`)).toEqual([
        'DELETE acme/xy:latest',
        'CREATE acme/xy:latest',
        'CREATE acme/x:latest',
      ]);
      expect((await readAll(store, { actor: 'bob' })).map((e) => e.type)).toEqual(['DELETE', 'CREATE']);
      expect(await readAll(store, { actor: 'bo' })).toEqual([]);
    });

    it('filters combine', async () => {
      const events = await readAll(store, { repository: 'acme/xy', objectType: 'TAG', type: 'CREATE' });
      expect(events.map((e) => [e.actor, e.object.id])).toEqual([['bob', 'acme/xy:latest']]);
    });

    it('refuses an unknown type or objectType with EVENT_INVALID', async () => {
      expect(await codeOf(store.getEvents({ type: 'MOVE' as 'CREATE' }))).toBe('EVENT_INVALID');
      expect(await codeOf(store.getEvents({ objectType: 'USER' as 'TAG' }))).toBe('EVENT_INVALID');
    });
  });

  describe('getEvents: keyset pages', () => {
    it('splits into pages of perPage, the last one without next', async () => {
      const created = await createMany(store, 7);
      const first = await store.getEvents({ perPage: 3 });
      expect(first.events).toHaveLength(3);
      expect(first.next).toEqual(expect.any(String));
      const second = await store.getEvents({ perPage: 3, page: first.next });
      expect(second.events).toHaveLength(3);
      const third = await store.getEvents({ perPage: 3, page: second.next });
      expect(third.events).toHaveLength(1);
      expect(third.next).toBeUndefined();
      expect([...first.events, ...second.events, ...third.events].map((e) => e.id)).toEqual(created.map((e) => e.id).reverse());
    });

    it('has no next when the events end exactly at a page boundary', async () => {
      await createMany(store, 6);
      const first = await store.getEvents({ perPage: 3 });
      const second = await store.getEvents({ perPage: 3, page: first.next });
      expect(second.events).toHaveLength(3);
      expect(second.next).toBeUndefined();
    });

    it('an empty log is one page without next', async () => {
      expect(await store.getEvents({})).toEqual({ events: [] });
    });

    it('stays stable while new events arrive between page reads: no duplicates, no gaps', async () => {
      // Many events share a millisecond here, so the cursor must break ties by commit order.
      const existing = (await createMany(store, 40, (i) => gcEvent(`old${i}`))).map((e) => e.id);
      const seen: string[] = [];
      let page: string | undefined;
      let writes = 0;
      do {
        const result = await store.getEvents({ perPage: 7, page });
        seen.push(...result.events.map((e) => e.id));
        page = result.next;
        // New events (and a real change) land between the reads.
        await store.createEvent(gcEvent(`new${writes++}`));
        await putBuiltAsync(store, 'acme/app', ociManifest({ seed: `new${writes}` }));
      } while (page !== undefined);
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen).toEqual([...existing].reverse());
    });

    it('a page token keeps its filters meaningful across pages', async () => {
      for (let i = 0; i < 5; i++) {
        await store.createEvent(gcEvent(`a${i}`, 'alice'));
        await store.createEvent(gcEvent(`b${i}`, 'bob'));
      }
      const events = await readAll(store, { actor: 'alice', perPage: 2 });
      expect(events).toHaveLength(5);
      expect(events.every((e) => e.actor === 'alice')).toBe(true);
    });

    it.each([
      ['garbage', 'not a token!'],
      ['the empty string', ''],
      ['a token of non-numbers', Buffer.from('x.y').toString('base64url')],
      ['a number', 42],
      ['null', null],
    ])('refuses a page token that is %s with PAGINATION_NUMBER_INVALID', async (_name, page) => {
      await store.createEvent(gcEvent('a'));
      expect(await codeOf(store.getEvents({ page: page as string }))).toBe('PAGINATION_NUMBER_INVALID');
    });

    it.each([0, -1, 1001, 2.5, Number.NaN])('refuses perPage %s with PAGINATION_NUMBER_INVALID', async (perPage) => {
      expect(await codeOf(store.getEvents({ perPage }))).toBe('PAGINATION_NUMBER_INVALID');
    });

    it('pages by 100 by default', async () => {
      await createMany(store, 101);
      const first = await store.getEvents({});
      expect(first.events).toHaveLength(100);
      expect((await store.getEvents({ page: first.next })).events).toHaveLength(1);
    });

    it('accepts perPage 1 and 1000', async () => {
      await store.createEvent(gcEvent('a'));
      await store.createEvent(gcEvent('b'));
      expect((await store.getEvents({ perPage: 1 })).events).toHaveLength(1);
      expect((await store.getEvents({ perPage: 1000 })).events).toHaveLength(2);
    });
  });

  describe('getEvents: the actor filter', () => {
    beforeEach(async () => {
      await store.createEvent(gcEvent('alice1', 'alice'));
      await store.createEvent(gcEvent('bob1', 'bob'));
      await store.createEvent(gcEvent('alice2', 'alice'));
      await store.createEvent(gcEvent('anon', ''));
    });

    it("selects one actor's events, anonymous ('') included; none for an actor with none", async () => {
      const events = await readAll(store, { actor: 'alice' });
      expect(events.map((e) => e.digest)).toEqual([blobDigest('alice2'), blobDigest('alice1')]);
      expect((await readAll(store, { actor: 'bob' })).map((e) => e.actor)).toEqual(['bob']);
      expect((await readAll(store, { actor: '' })).map((e) => e.actor)).toEqual(['']);
      expect(await readAll(store, { actor: 'carol' })).toEqual([]);
    });

    it("without it, selects everyone's events", async () => {
      expect((await readAll(store, {})).map((e) => e.actor)).toEqual(['', 'alice', 'bob', 'alice']);
    });

    it('refuses a field that is not a filter, and an actor that is not a string, instead of widening the view', async () => {
      expect(await codeOf(store.getEvents({ queryingUser: 'bob' } as EventQuery))).toBe('EVENT_INVALID');
      expect(await codeOf(store.getEvents({ actorId: 'bob' } as EventQuery))).toBe('EVENT_INVALID');
      expect(await codeOf(store.getEvents({ actor: 7 } as unknown as EventQuery))).toBe('EVENT_INVALID');
      expect(await codeOf(store.getEvents(null as unknown as EventQuery))).toBe('EVENT_INVALID');
    });
  });

  describe('events are written in the same transaction as the change', () => {
    it('a write that fails writes no event', async () => {
      const child = await putBuiltAsync(store, 'acme/app', ociManifest());
      await putBuiltAsync(store, 'acme/app', ociIndex([child.descriptor]));
      const before = await eventsOf(store);
      expect(await codeOf(store.deleteManifest('acme/app', child.digest))).toBe('MANIFEST_REFERENCED');
      expect(await codeOf(store.putTag('acme/app', 'x', { digest: ociManifest({ seed: 'none' }).digest }))).toBe('MANIFEST_UNKNOWN');
      expect(await codeOf(store.deleteTag('acme/app', 'none'))).toBe('MANIFEST_UNKNOWN');
      expect(await codeOf(store.linkBlob('acme/new', { digest: child.digest, size: -1 }))).toBe('SIZE_INVALID');
      expect(await eventsOf(store)).toEqual(before);
    });

    it('a blob link refused inside the transaction rolls back the repository it created, and its event', async () => {
      const digest = blobDigest('sized');
      await store.linkBlob('acme/one', { digest, size: 10 });
      const before = await eventsOf(store);
      // The size check happens after the repository row and its CREATE event are written.
      expect(await codeOf(store.linkBlob('acme/two', { digest, size: 11 }))).toBe('SIZE_INVALID');
      expect(await store.catalog()).toEqual(['acme/one']);
      expect(await eventsOf(store)).toEqual(before);
    });
  });
});
