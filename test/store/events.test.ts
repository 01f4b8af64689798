// The event log: createEvent, getEvents (order, bounds, filters, keyset
// pages, DTR's authorization rule), and atomicity with the change.

import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, StoreError, type Event, type MetadataStore, type NewEvent } from 'regmeta';
import { caught, allEvents, blobDigest, dump, ociIndex, ociManifest, tempStore, type Built } from './fixtures.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let store: MetadataStore;
beforeEach(() => {
  store = openStore(':memory:');
});
afterEach(() => store.close());


function put(repo: string, m: Built, s: MetadataStore = store, actor?: string): Built {
  s.putManifest(repo, m.digest, m, actor === undefined ? undefined : { actor });
  return m;
}

function gcEvent(seed: string, actor = 'GARBAGE_COLLECTOR'): NewEvent {
  const digest = blobDigest(seed);
  return { actor, type: 'DELETE', object: { type: 'BLOB', id: digest }, digest };
}

/** Waits until Date.now() has moved past `t`, so the next event gets a later publishedAt. */
function tickPast(t: number) {
  while (Date.now() <= t) {
    // Spin: a millisecond is all it takes.
  }
}

/** Every page of a query, read to the end. */
function readAll(s: MetadataStore, query: Parameters<MetadataStore['getEvents']>[0]): Event[] {
  const out: Event[] = [];
  let page: string | undefined;
  do {
    const result = s.getEvents({ ...query, page });
    out.push(...result.events);
    page = result.next;
  } while (page !== undefined);
  return out;
}

const admin = { queryingUser: 'root', isAdmin: true } as const;

describe('createEvent', () => {
  it('returns the stored event with a uuid id and a publishedAt of now', () => {
    const t0 = Date.now();
    const given = gcEvent('a');
    const event = store.createEvent(given);
    expect(event.id).toMatch(UUID);
    expect(event.publishedAt).toBeInstanceOf(Date);
    expect(event.publishedAt.getTime()).toBeGreaterThanOrEqual(t0);
    expect(event.publishedAt.getTime()).toBeLessThanOrEqual(Date.now());
    expect(event).toMatchObject(given);
  });

  it('stores what getEvents returns, field for field', () => {
    const event = store.createEvent({
      actor: 'alice',
      type: 'UPDATE',
      object: { type: 'TAG', id: 'acme/app:latest' },
      repository: 'acme/app',
      tag: 'latest',
      digest: blobDigest('new'),
      previousDigest: blobDigest('old'),
    });
    expect(store.getEvents(admin).events).toEqual([event]);
  });

  it('gives every event its own id', () => {
    const ids = new Set(Array.from({ length: 50 }, (_, i) => store.createEvent(gcEvent(String(i))).id));
    expect(ids.size).toBe(50);
  });

  it('keeps publishedAt at millisecond precision through the database', () => {
    const event = store.createEvent(gcEvent('ms'));
    const [read] = store.getEvents(admin).events;
    expect(read.publishedAt.getTime()).toBe(event.publishedAt.getTime());
  });

  it('omits the optional fields that were not given', () => {
    const event = store.createEvent({ actor: '', type: 'CREATE', object: { type: 'REPOSITORY', id: 'acme/app' } });
    expect(Object.keys(event).sort()).toEqual(['actor', 'id', 'object', 'publishedAt', 'type']);
  });

  it.each([
    ['an unknown type', { actor: 'a', type: 'MOVE', object: { type: 'TAG', id: 'x' } }],
    ['an unknown object type', { actor: 'a', type: 'CREATE', object: { type: 'USER', id: 'x' } }],
    ['no object', { actor: 'a', type: 'CREATE' }],
    ['an empty object id', { actor: 'a', type: 'CREATE', object: { type: 'TAG', id: '' } }],
    ['a NUL in the actor', { actor: 'a\0b', type: 'CREATE', object: { type: 'TAG', id: 'x' } }],
    ['a non-string actor', { actor: 42, type: 'CREATE', object: { type: 'TAG', id: 'x' } }],
  ])('refuses %s with EVENT_INVALID and stores nothing', (_name, bad) => {
    expect(caught(() => store.createEvent(bad as unknown as NewEvent)).code).toBe('EVENT_INVALID');
    expect(store.getEvents(admin).events).toEqual([]);
  });

  it('refuses an invalid repository with NAME_INVALID', () => {
    const bad = { actor: 'a', type: 'CREATE', object: { type: 'REPOSITORY', id: 'X' }, repository: 'Acme/App' } as NewEvent;
    expect(caught(() => store.createEvent(bad)).code).toBe('NAME_INVALID');
  });
});

describe('getEvents: order and time bounds', () => {
  it('returns events newest first', () => {
    const created = Array.from({ length: 5 }, (_, i) => store.createEvent(gcEvent(String(i))));
    expect(store.getEvents(admin).events.map((e) => e.id)).toEqual(created.map((e) => e.id).reverse());
  });

  it('publishedAfter is inclusive and publishedBefore exclusive', () => {
    const created: Event[] = [];
    for (let i = 0; i < 4; i++) {
      const event = store.createEvent(gcEvent(String(i)));
      created.push(event);
      tickPast(event.publishedAt.getTime());
    }
    const at = created[1].publishedAt;
    const after = store.getEvents({ ...admin, publishedAfter: at }).events.map((e) => e.id);
    expect(after).toEqual([created[3].id, created[2].id, created[1].id]);
    const before = store.getEvents({ ...admin, publishedBefore: at }).events.map((e) => e.id);
    expect(before).toEqual([created[0].id]);
    const between = store.getEvents({ ...admin, publishedAfter: at, publishedBefore: created[3].publishedAt }).events;
    expect(between.map((e) => e.id)).toEqual([created[2].id, created[1].id]);
    expect(store.getEvents({ ...admin, publishedAfter: at, publishedBefore: at }).events).toEqual([]);
  });

  it('refuses an invalid Date bound with EVENT_INVALID', () => {
    expect(caught(() => store.getEvents({ ...admin, publishedAfter: new Date(NaN) })).code).toBe('EVENT_INVALID');
    expect(caught(() => store.getEvents({ ...admin, publishedBefore: '2020-01-01' as unknown as Date })).code).toBe('EVENT_INVALID');
  });
});

describe('getEvents: filters are exact', () => {
  beforeEach(() => {
    const x = put('acme/x', ociManifest({ seed: 'x' }), store, 'alice');
    const xy = put('acme/xy', ociManifest({ seed: 'xy' }), store, 'alice');
    store.putTag('acme/x', 'latest', { digest: x.digest }, { actor: 'alice' });
    store.putTag('acme/xy', 'latest', { digest: xy.digest }, { actor: 'bob' });
    store.deleteTag('acme/xy', 'latest', { actor: 'bob' });
    store.createEvent(gcEvent('gc'));
  });

  it("repository 'acme/x' never matches 'acme/xy'", () => {
    const events = readAll(store, { ...admin, repository: 'acme/x' });
    expect(events.length).toBe(3);
    expect(events.every((e) => e.repository === 'acme/x')).toBe(true);
    expect(readAll(store, { ...admin, repository: 'acme' })).toEqual([]);
  });

  it('type, objectType and actor each select only their events', () => {
    expect(readAll(store, { ...admin, type: 'DELETE' }).map((e) => e.object.type).sort()).toEqual(['BLOB', 'TAG']);
    expect(readAll(store, { ...admin, objectType: 'TAG' }).map((e) => `${e.type} ${e.object.id}`)).toEqual([
      'DELETE acme/xy:latest',
      'CREATE acme/xy:latest',
      'CREATE acme/x:latest',
    ]);
    expect(readAll(store, { ...admin, actor: 'bob' }).map((e) => e.type)).toEqual(['DELETE', 'CREATE']);
    expect(readAll(store, { ...admin, actor: 'bo' })).toEqual([]);
  });

  it('filters combine', () => {
    const events = readAll(store, { ...admin, repository: 'acme/xy', objectType: 'TAG', type: 'CREATE' });
    expect(events.map((e) => [e.actor, e.object.id])).toEqual([['bob', 'acme/xy:latest']]);
  });

  it('refuses an unknown type or objectType with EVENT_INVALID', () => {
    expect(caught(() => store.getEvents({ ...admin, type: 'MOVE' as 'CREATE' })).code).toBe('EVENT_INVALID');
    expect(caught(() => store.getEvents({ ...admin, objectType: 'USER' as 'TAG' })).code).toBe('EVENT_INVALID');
  });
});

describe('getEvents: keyset pages', () => {
  it('splits into pages of perPage, the last one without next', () => {
    const created = Array.from({ length: 7 }, (_, i) => store.createEvent(gcEvent(String(i))));
    const first = store.getEvents({ ...admin, perPage: 3 });
    expect(first.events).toHaveLength(3);
    expect(first.next).toEqual(expect.any(String));
    const second = store.getEvents({ ...admin, perPage: 3, page: first.next });
    expect(second.events).toHaveLength(3);
    const third = store.getEvents({ ...admin, perPage: 3, page: second.next });
    expect(third.events).toHaveLength(1);
    expect(third.next).toBeUndefined();
    expect([...first.events, ...second.events, ...third.events].map((e) => e.id)).toEqual(created.map((e) => e.id).reverse());
  });

  it('has no next when the events end exactly at a page boundary', () => {
    for (let i = 0; i < 6; i++) store.createEvent(gcEvent(String(i)));
    const first = store.getEvents({ ...admin, perPage: 3 });
    const second = store.getEvents({ ...admin, perPage: 3, page: first.next });
    expect(second.events).toHaveLength(3);
    expect(second.next).toBeUndefined();
  });

  it('an empty log is one page without next', () => {
    expect(store.getEvents(admin)).toEqual({ events: [] });
  });

  it('stays stable while new events arrive between page reads: no duplicates, no gaps', () => {
    // Many events share a millisecond here, so the cursor must break ties by commit order.
    const existing = Array.from({ length: 40 }, (_, i) => store.createEvent(gcEvent(`old${i}`))).map((e) => e.id);
    const seen: string[] = [];
    let page: string | undefined;
    let writes = 0;
    do {
      const result = store.getEvents({ ...admin, perPage: 7, page });
      seen.push(...result.events.map((e) => e.id));
      page = result.next;
      // New events (and a real change) land between the reads.
      store.createEvent(gcEvent(`new${writes++}`));
      put('acme/app', ociManifest({ seed: `new${writes}` }));
    } while (page !== undefined);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual([...existing].reverse());
  });

  it('a page token keeps its filters meaningful across pages', () => {
    for (let i = 0; i < 5; i++) {
      store.createEvent(gcEvent(`a${i}`, 'alice'));
      store.createEvent(gcEvent(`b${i}`, 'bob'));
    }
    const events = readAll(store, { ...admin, actor: 'alice', perPage: 2 });
    expect(events).toHaveLength(5);
    expect(events.every((e) => e.actor === 'alice')).toBe(true);
  });

  it.each([
    ['garbage', 'not a token!'],
    ['the empty string', ''],
    ['a token of non-numbers', Buffer.from('x.y').toString('base64url')],
    ['a number', 42],
    ['null', null],
  ])('refuses a page token that is %s with PAGINATION_NUMBER_INVALID', (_name, page) => {
    store.createEvent(gcEvent('a'));
    expect(caught(() => store.getEvents({ ...admin, page: page as string })).code).toBe('PAGINATION_NUMBER_INVALID');
  });

  it.each([0, -1, 1001, 2.5, Number.NaN])('refuses perPage %s with PAGINATION_NUMBER_INVALID', (perPage) => {
    expect(caught(() => store.getEvents({ ...admin, perPage })).code).toBe('PAGINATION_NUMBER_INVALID');
  });

  it('pages by 100 by default', () => {
    for (let i = 0; i < 101; i++) store.createEvent(gcEvent(String(i)));
    const first = store.getEvents(admin);
    expect(first.events).toHaveLength(100);
    expect(store.getEvents({ ...admin, page: first.next }).events).toHaveLength(1);
  });

  it('accepts perPage 1 and 1000', () => {
    store.createEvent(gcEvent('a'));
    store.createEvent(gcEvent('b'));
    expect(store.getEvents({ ...admin, perPage: 1 }).events).toHaveLength(1);
    expect(store.getEvents({ ...admin, perPage: 1000 }).events).toHaveLength(2);
  });
});

describe('getEvents: DTR authorization', () => {
  beforeEach(() => {
    store.createEvent(gcEvent('alice1', 'alice'));
    store.createEvent(gcEvent('bob1', 'bob'));
    store.createEvent(gcEvent('alice2', 'alice'));
    store.createEvent(gcEvent('anon', ''));
  });

  it('a non-admin who names no actor sees only their own events', () => {
    const events = readAll(store, { queryingUser: 'alice' });
    expect(events).toHaveLength(2);
    expect(events.every((e) => e.actor === 'alice')).toBe(true);
    expect(readAll(store, { queryingUser: 'carol', isAdmin: false })).toEqual([]);
  });

  it('a non-admin may name themselves', () => {
    expect(readAll(store, { queryingUser: 'bob', actor: 'bob' }).map((e) => e.actor)).toEqual(['bob']);
  });

  it("a non-admin who asks for another user's events is DENIED", () => {
    const error = caught(() => store.getEvents({ queryingUser: 'alice', actor: 'bob' }));
    expect(error.code).toBe('DENIED');
    expect(caught(() => store.getEvents({ queryingUser: 'alice', actor: '' })).code).toBe('DENIED');
  });

  it("an admin sees everyone's events, or one actor's when asked", () => {
    expect(readAll(store, { queryingUser: 'root', isAdmin: true }).map((e) => e.actor)).toEqual(['', 'alice', 'bob', 'alice']);
    expect(readAll(store, { queryingUser: 'root', isAdmin: true, actor: 'bob' }).map((e) => e.actor)).toEqual(['bob']);
    expect(readAll(store, { queryingUser: 'root', isAdmin: true, actor: '' }).map((e) => e.actor)).toEqual(['']);
  });
});

describe('events are written in the same transaction as the change', () => {
  it('a write that fails writes no event', () => {
    const child = put('acme/app', ociManifest());
    put('acme/app', ociIndex([child.descriptor]));
    const before = allEvents(store);
    expect(caught(() => store.deleteManifest('acme/app', child.digest)).code).toBe('MANIFEST_REFERENCED');
    expect(caught(() => store.putTag('acme/app', 'x', { digest: ociManifest({ seed: 'none' }).digest })).code).toBe('MANIFEST_UNKNOWN');
    expect(caught(() => store.deleteTag('acme/app', 'none')).code).toBe('MANIFEST_UNKNOWN');
    expect(caught(() => store.linkBlob('acme/new', { digest: child.digest, size: -1 })).code).toBe('SIZE_INVALID');
    expect(allEvents(store)).toEqual(before);
  });

  it('a blob link refused inside the transaction rolls back the repository it created, and its event', () => {
    const digest = blobDigest('sized');
    store.linkBlob('acme/one', { digest, size: 10 });
    const before = allEvents(store);
    // The size check happens after the repository row and its CREATE event are written.
    expect(caught(() => store.linkBlob('acme/two', { digest, size: 11 })).code).toBe('SIZE_INVALID');
    expect(store.catalog()).toEqual(['acme/one']);
    expect(allEvents(store)).toEqual(before);
  });

  it('when the event cannot be written, the change is not made either', () => {
    const t = tempStore();
    try {
      const a = put('acme/app', ociManifest({ seed: 'a' }), t.store);
      const b = put('acme/app', ociManifest({ seed: 'b' }), t.store);
      t.store.putTag('acme/app', 'latest', { digest: a.digest });
      // Another connection makes every further event insert fail.
      const raw = new Database(t.file);
      raw.exec("CREATE TRIGGER no_events BEFORE INSERT ON event BEGIN SELECT RAISE(ABORT, 'no events'); END");
      const before = dump(t.file);
      const attempts = [
        () => t.store.putTag('acme/app', 'latest', { digest: b.digest }),
        () => t.store.putTag('acme/app', 'new', { digest: b.digest }),
        () => t.store.deleteTag('acme/app', 'latest'),
        () => t.store.deleteManifest('acme/app', a.digest),
        () => t.store.putManifest('acme/other', b.digest, b),
        () => t.store.createEvent(gcEvent('gc')),
        () => t.store.deleteRepository('acme/app'),
      ];
      for (const attempt of attempts) {
        const error = caught(attempt);
        // SQLITE_CONSTRAINT_TRIGGER, translated by its code; the original stays as the cause.
        expect(error.code).toBe('DATABASE_ERROR');
        expect((error.cause as { code?: string }).code).toBe('SQLITE_CONSTRAINT_TRIGGER');
      }
      expect(dump(t.file)).toEqual(before);
      raw.exec('DROP TRIGGER no_events');
      raw.close();
      t.store.putTag('acme/app', 'latest', { digest: b.digest });
      expect(t.store.getTag('acme/app', 'latest').digest).toBe(b.digest);
    } finally {
      t.cleanup();
    }
  });
});

describe('getEvents authorization inputs', () => {
  it('refuses an isAdmin that is not a boolean and a missing queryingUser, instead of widening the view', () => {
    const { store, cleanup } = tempStore();
    try {
      store.createEvent({ actor: 'alice', type: 'CREATE', object: { type: 'REPOSITORY', id: 'acme/a' } });
      const code = (fn: () => unknown) => caught(fn).code;
      expect(code(() => store.getEvents({ queryingUser: 'bob', isAdmin: 'false' as unknown as boolean }))).toBe('EVENT_INVALID');
      expect(code(() => store.getEvents({} as unknown as { queryingUser: string }))).toBe('EVENT_INVALID');
      expect(store.getEvents({ queryingUser: 'bob', isAdmin: false }).events).toEqual([]);
      expect(store.getEvents({ queryingUser: 'bob', isAdmin: true }).events.map((e) => e.actor)).toEqual(['alice']);
    } finally {
      cleanup();
    }
  });
});
