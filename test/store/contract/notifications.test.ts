// The webhook cursors on every backend: a new endpoint starts at the newest
// event, events after a cursor in commit order with their targets, a cursor
// that only moves forward, failures and status, shared between connections.

import { describe, expect, it } from 'vitest';
import { codeOf, ociManifest } from '../fixtures.js';
import { backends, storePerTest } from './backends.js';

const HOOK = 'http://receiver.example/hook';

describe.each(backends)('$name', (backend) => {
  const store = storePerTest(backend);


  describe('notification cursors', () => {
    it('start at the newest event: history before the endpoint is not sent', async () => {
      const old = ociManifest({ seed: 'old' });
      await store.putManifest('acme/app', old.digest, old, undefined, { tag: 'old' });
      await store.notifications.open(HOOK);
      expect(await store.notifications.eventsAfter(HOOK, 100)).toEqual([]);
      const [status] = await store.notifications.status();
      expect(status).toMatchObject({ endpoint: HOOK, backlog: 0, failures: 0 });
      expect(status.eventId).toBeDefined();
    });

    it('read the events after them in commit order, with media type and size while stored', async () => {
      await store.notifications.open(HOOK);
      expect((await store.notifications.status())[0].eventId).toBeUndefined();
      const m = ociManifest({ seed: 'new' });
      await store.putManifest('acme/app', m.digest, m, { actor: 'alice' }, { tag: 'v1' });
      await store.deleteTag('acme/app', 'v1');
      const events = await store.notifications.eventsAfter(HOOK, 100);
      expect(events.map((e) => `${e.type} ${e.object.type}`)).toEqual(['CREATE REPOSITORY', 'CREATE MANIFEST', 'CREATE TAG', 'DELETE TAG']);
      expect(events[1]).toMatchObject({ digest: m.digest, mediaType: m.mediaType, size: m.payload.length, actor: 'alice' });
      expect(events[2]).toMatchObject({ tag: 'v1', digest: m.digest, mediaType: m.mediaType });
      expect(await store.notifications.eventsAfter(HOOK, 2)).toHaveLength(2);
      expect((await store.notifications.status())[0].backlog).toBe(4);
    });

    it('move forward only, in the database that every connection shares, and count failures until a success', async () => {
      const shared = await backend.open({ shared: true });
      try {
        await shared.store.notifications.open(HOOK);
        const m = ociManifest({ seed: 'fwd' });
        await shared.store.putManifest('acme/app', m.digest, m, undefined, { tag: 'v1' });
        const events = await shared.store.notifications.eventsAfter(HOOK, 100);
        await shared.store.notifications.recordFailure(HOOK, 'HTTP 500');
        await shared.store.notifications.recordFailure(HOOK, 'HTTP 503');
        expect((await shared.store.notifications.status())[0]).toMatchObject({ failures: 2, lastError: 'HTTP 503' });
        await shared.store.notifications.advance(HOOK, events.slice(0, 2));
        await shared.store.notifications.advance(HOOK, events.slice(0, 1)); // a late, repeated acknowledgement
        const other = await shared.connect();
        const [status] = await other.notifications.status();
        expect(status).toMatchObject({ eventId: events[1].id, backlog: 1, failures: 0, lastError: 'HTTP 503' });
        expect(status.lastSuccessAt).toBeInstanceOf(Date);
        expect((await other.notifications.eventsAfter(HOOK, 100)).map((e) => e.id)).toEqual([events[2].id]);
        // Opening again keeps the cursor where it is.
        await other.notifications.open(HOOK);
        expect((await other.notifications.status())[0].eventId).toBe(events[1].id);
      } finally {
        await shared.cleanup();
      }
    });

    it('refuse bad arguments with ARGUMENT_INVALID', async () => {
      expect(await codeOf(store.notifications.open(''))).toBe('ARGUMENT_INVALID');
      expect(await codeOf(store.notifications.eventsAfter(HOOK, 10))).toBe('ARGUMENT_INVALID');
      await store.notifications.open(HOOK);
      expect(await codeOf(store.notifications.eventsAfter(HOOK, 0))).toBe('ARGUMENT_INVALID');
      const m = ociManifest({ seed: 'bad' });
      await store.putManifest('acme/app', m.digest, m);
      const events = await store.notifications.eventsAfter(HOOK, 100);
      const past = { ...events[events.length - 1], seq: events[events.length - 1].seq + 1 };
      const bad = ['no-such-event', [], [events[1], events[0]], [{ ...events[0], seq: 0 }], [{ ...events[0], id: '' }], [{ ...events[0], publishedAt: 'now' }], [past]];
      for (const delivered of bad) expect(await codeOf(store.notifications.advance(HOOK, delivered as never))).toBe('ARGUMENT_INVALID');
      expect(await codeOf(store.notifications.advance('http://other.example/', events))).toBe('ARGUMENT_INVALID');
      expect((await store.notifications.status())[0]).toMatchObject({ backlog: events.length });
      expect((await store.notifications.status())[0].eventId).toBeUndefined();
      expect(await store.notifications.remove(HOOK)).toBe(true);
      expect(await store.notifications.status()).toEqual([]);
    });
  });
});
