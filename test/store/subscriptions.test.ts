// subscribe: delivery of the event log as it grows, in commit order and once
// each, this connection's commits at once and other processes' by polling,
// optionally filtered by getEvents' own query and rule.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openStore, type Event, type MetadataStore, type NewEvent } from 'regmeta';
import { caught, allEvents, blobDigest, ociManifest, tempStore, type Built } from './fixtures.js';

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

const admin = { queryingUser: 'root', isAdmin: true } as const;

describe('subscribe', () => {
  it('delivers the events committed after the call, in commit order, once each, at once for this connection', () => {
    put('acme/app', ociManifest({ seed: 'before' }));
    const got: Event[] = [];
    const unsubscribe = store.subscribe((e) => got.push(e));
    const m = put('acme/app', ociManifest({ seed: 'after' }), store, 'alice');
    store.putTag('acme/app', 'latest', { digest: m.digest });
    const gc = store.createEvent(gcEvent('x'));
    const expected = allEvents(store).slice(-3);
    expect(got).toEqual(expected);
    expect(got[2]).toEqual(gc);
    unsubscribe();
  });

  it('delivers every event of a multi-event change', () => {
    const m = put('acme/app', ociManifest());
    store.putTag('acme/app', 'a', { digest: m.digest });
    store.putTag('acme/app', 'b', { digest: m.digest });
    const got: string[] = [];
    const unsubscribe = store.subscribe((e) => got.push(`${e.type} ${e.object.id}`));
    store.deleteManifest('acme/app', m.digest);
    expect(got).toEqual(['DELETE acme/app:a', 'DELETE acme/app:b', `DELETE acme/app@${m.digest}`]);
    unsubscribe();
  });

  it('delivers nothing after unsubscribe', () => {
    const got: Event[] = [];
    const unsubscribe = store.subscribe((e) => got.push(e));
    store.createEvent(gcEvent('one'));
    unsubscribe();
    store.createEvent(gcEvent('two'));
    expect(got.map((e) => e.digest)).toEqual([blobDigest('one')]);
  });

  it('a later subscriber does not get what an earlier one got before it subscribed', () => {
    const first: string[] = [];
    const second: string[] = [];
    const u1 = store.subscribe((e) => first.push(e.digest!));
    store.createEvent(gcEvent('one'));
    const u2 = store.subscribe((e) => second.push(e.digest!));
    store.createEvent(gcEvent('two'));
    expect(first).toEqual([blobDigest('one'), blobDigest('two')]);
    expect(second).toEqual([blobDigest('two')]);
    u1();
    u2();
  });

  it('a subscriber that throws breaks neither the write nor the other subscribers', () => {
    const errors: unknown[] = [];
    const got: Event[] = [];
    const u1 = store.subscribe(
      () => {
        throw new Error('subscriber failed');
      },
      { onError: (error) => errors.push(error) },
    );
    const u2 = store.subscribe((e) => got.push(e));
    const m = put('acme/app', ociManifest());
    store.putTag('acme/app', 'latest', { digest: m.digest });
    expect(store.getTag('acme/app', 'latest').digest).toBe(m.digest);
    expect(got.map((e) => `${e.type} ${e.object.type}`)).toEqual(['CREATE REPOSITORY', 'CREATE MANIFEST', 'CREATE TAG']);
    expect(errors).toHaveLength(3);
    expect((errors[0] as Error).message).toBe('subscriber failed');
    u1();
    u2();
  });

  it('a subscriber whose onError throws too does not stop delivery to the others', () => {
    const got: string[] = [];
    const u1 = store.subscribe(
      () => {
        throw new Error('subscriber failed');
      },
      {
        onError: () => {
          throw new Error('and so did its error handler');
        },
      },
    );
    const u2 = store.subscribe((e) => got.push(e.digest!));
    store.createEvent(gcEvent('one'));
    store.createEvent(gcEvent('two'));
    expect(got).toEqual([blobDigest('one'), blobDigest('two')]);
    u1();
    u2();
  });

  it('a throwing subscriber without onError is reported to console.error, and the write stands', () => {
    const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const unsubscribe = store.subscribe(() => {
        throw new Error('boom');
      });
      const event = store.createEvent(gcEvent('x'));
      expect(spy).toHaveBeenCalledTimes(1);
      expect(store.getEvents(admin).events).toEqual([event]);
      unsubscribe();
    } finally {
      spy.mockRestore();
    }
  });

  it("sees another connection's commits on the same file within the poll interval, in order, once each", async () => {
    const t = tempStore({ pollInterval: 5 });
    const other = openStore(t.file);
    try {
      other.createEvent(gcEvent('before'));
      const got: Event[] = [];
      const unsubscribe = t.store.subscribe((e) => got.push(e));
      const m = put('acme/app', ociManifest(), other, 'remote');
      other.putTag('acme/app', 'latest', { digest: m.digest });
      for (let i = 0; i < 5; i++) other.createEvent(gcEvent(`gc${i}`));
      const expected = allEvents(other).slice(1);
      expect(expected).toHaveLength(8);
      await vi.waitFor(() => expect(got).toHaveLength(8), { timeout: 10_000, interval: 5 });
      expect(got).toEqual(expected);
      // Its own write after the others' comes after them, once.
      const own = t.store.createEvent(gcEvent('own'));
      const last = other.createEvent(gcEvent('last'));
      await vi.waitFor(() => expect(got.length).toBeGreaterThanOrEqual(10), { timeout: 10_000, interval: 5 });
      expect(got.slice(8)).toEqual([own, last]);
      unsubscribe();
    } finally {
      other.close();
      t.cleanup();
    }
  });

  it("interleaves this connection's and another's commits in commit order", () => {
    const t = tempStore({ pollInterval: 5 });
    const other = openStore(t.file);
    try {
      const got: string[] = [];
      const unsubscribe = t.store.subscribe((e) => got.push(e.digest!));
      t.store.createEvent(gcEvent('own1'));
      other.createEvent(gcEvent('remote'));
      // No poll can have run yet: this write's own delivery must bring the remote event first.
      t.store.createEvent(gcEvent('own2'));
      expect(got).toEqual([blobDigest('own1'), blobDigest('remote'), blobDigest('own2')]);
      unsubscribe();
    } finally {
      other.close();
      t.cleanup();
    }
  });

  it('a subscriber added while other commits are still undelivered does not get them', async () => {
    const t = tempStore({ pollInterval: 5 });
    const other = openStore(t.file);
    try {
      const first: string[] = [];
      const second: string[] = [];
      const u1 = t.store.subscribe((e) => first.push(e.digest!));
      // No timer can run between these statements: 'one' is committed but not yet delivered.
      other.createEvent(gcEvent('one'));
      const u2 = t.store.subscribe((e) => second.push(e.digest!));
      other.createEvent(gcEvent('two'));
      await vi.waitFor(() => expect(first).toHaveLength(2), { timeout: 10_000, interval: 5 });
      expect(first).toEqual([blobDigest('one'), blobDigest('two')]);
      expect(second).toEqual([blobDigest('two')]);
      u1();
      u2();
    } finally {
      other.close();
      t.cleanup();
    }
  });

  it('after unsubscribe, later commits elsewhere are not delivered to that subscriber', async () => {
    const t = tempStore({ pollInterval: 5 });
    const other = openStore(t.file);
    try {
      const got: Event[] = [];
      const unsubscribe = t.store.subscribe((e) => got.push(e));
      other.createEvent(gcEvent('one'));
      await vi.waitFor(() => expect(got).toHaveLength(1), { timeout: 10_000, interval: 5 });
      unsubscribe();
      other.createEvent(gcEvent('two'));
      // A later subscriber proves the poll ran past the second commit.
      const later: Event[] = [];
      const u2 = t.store.subscribe((e) => later.push(e));
      other.createEvent(gcEvent('three'));
      await vi.waitFor(() => expect(later).toHaveLength(1), { timeout: 10_000, interval: 5 });
      expect(got.map((e) => e.digest)).toEqual([blobDigest('one')]);
      expect(later.map((e) => e.digest)).toEqual([blobDigest('three')]);
      u2();
    } finally {
      other.close();
      t.cleanup();
    }
  });
});

describe('subscribe with a query', () => {
  it('delivers only what getEvents would return for the query, under the DTR rule', () => {
    const got: string[] = [];
    const unsubscribe = store.subscribe((e) => got.push(`${e.actor} ${e.type} ${e.object.id}`), {
      query: { queryingUser: 'alice', repository: 'acme/app', type: 'CREATE' },
    });
    const m = ociManifest();
    store.putManifest('acme/app', m.digest, m, { actor: 'alice' });
    store.putManifest('acme/other', m.digest, m, { actor: 'alice' });
    store.putTag('acme/app', 'v1', { digest: m.digest }, { actor: 'bob' });
    store.deleteTag('acme/app', 'v1', { actor: 'alice' });
    unsubscribe();
    expect(got).toEqual(['alice CREATE acme/app', `alice CREATE acme/app@${m.digest}`]);
    const listed = store.getEvents({ queryingUser: 'alice', repository: 'acme/app', type: 'CREATE' }).events;
    expect(listed.map((e) => `${e.actor} ${e.type} ${e.object.id}`).reverse()).toEqual(got);
  });

  it("refuses a non-admin's query for another user's events, as getEvents does", () => {
    expect(caught(() => store.subscribe(() => {}, { query: { queryingUser: 'alice', actor: 'bob' } })).code).toBe('DENIED');
  });
});
