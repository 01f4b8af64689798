// Keeping the store in shape, on every backend: the event log pruned in
// chunks with its horizon kept and seqs monotonic, a webhook cursor below
// the horizon reported and stepped over, and the leases of scheduled jobs.

import { describe, expect, it } from 'vitest';
import type { Event, Store } from 'regmeta';
import { codeOf, eventsOf, gcEvent, snapshot, tickPast } from '../fixtures.js';
import { backends, storePerTest } from './backends.js';

const HOOK = 'http://receiver.example/hook';

/** `count` events, then a cut after the last one's time: what `before: cut` prunes is exactly these. */
async function eventsBeforeCut(s: Store, count: number, seed = 'old'): Promise<{ events: Event[]; cut: Date }> {
  const events: Event[] = [];
  for (let i = 0; i < count; i++) events.push(await s.createEvent(gcEvent(`${seed}${i}`)));
  tickPast(events[events.length - 1].publishedAt.getTime());
  return { events, cut: new Date() };
}

const ALL = () => new Date(Date.now() + 60_000);

describe.each(backends)('$name', (backend) => {
  const store = storePerTest(backend);

  describe('pruneEvents', () => {
    it('deletes the events before the cut, the oldest first, at most limit a call, and keeps the horizon', async () => {
      expect(await store.pruneEvents({ before: new Date(0), dryRun: true })).toEqual({ pruned: 0, horizon: 0 });
      const { events: old, cut } = await eventsBeforeCut(store, 5);
      const kept = await store.createEvent(gcEvent('kept'));
      const before = await snapshot(store);
      const dry = await store.pruneEvents({ before: cut, dryRun: true });
      expect(dry.pruned).toBe(5);
      expect(dry.horizonAt).toEqual(old[4].publishedAt);
      expect(await snapshot(store)).toEqual(before);

      const first = await store.pruneEvents({ before: cut, limit: 2 });
      expect(first.pruned).toBe(2);
      expect((await eventsOf(store)).map((e) => e.id)).toEqual([...old.slice(2), kept].map((e) => e.id));
      expect(first.horizonAt).toEqual(old[1].publishedAt);
      const rest = await store.pruneEvents({ before: cut, limit: 2 });
      const last = await store.pruneEvents({ before: cut, limit: 2 });
      expect([rest.pruned, last.pruned]).toEqual([2, 1]);
      expect(last.horizon).toBe(dry.horizon);
      expect(first.horizon).toBeLessThan(rest.horizon);
      expect(await store.pruneEvents({ before: cut })).toEqual({ pruned: 0, horizon: dry.horizon, horizonAt: old[4].publishedAt });
      expect((await eventsOf(store)).map((e) => e.id)).toEqual([kept.id]);
    });

    it('keeps seqs above every pruned one when the whole log goes: cursors and subscribers go on', async () => {
      await store.notifications.open(HOOK);
      await eventsBeforeCut(store, 3);
      const delivered = await store.notifications.eventsAfter(HOOK, 100);
      await store.notifications.advance(HOOK, delivered);
      const seen: Event[] = [];
      const unsubscribe = await store.subscribe((event) => seen.push(event));
      const all = await store.pruneEvents({ before: ALL() });
      expect(all.pruned).toBe(3);
      expect(await eventsOf(store)).toEqual([]);

      const next = await store.createEvent(gcEvent('after'));
      await expect.poll(() => seen.map((e) => e.id)).toEqual([next.id]);
      unsubscribe();
      expect((await store.notifications.eventsAfter(HOOK, 100)).map((e) => e.id)).toEqual([next.id]);
      expect(await store.notifications.skipPruned(HOOK)).toBeUndefined();
      const again = await store.pruneEvents({ before: ALL() });
      // The new event's seq is above the old horizon, so pruning it raises the horizon.
      expect(again).toMatchObject({ pruned: 1 });
      expect(again.horizon).toBeGreaterThan(all.horizon);
      // A cursor opened on an empty, pruned log starts at its head, not below the horizon.
      await store.notifications.open('http://late.example/');
      const late = (await store.notifications.status()).find((s) => s.endpoint === 'http://late.example/');
      expect(late?.missed).toBeUndefined();
      expect(await store.notifications.skipPruned('http://late.example/')).toBeUndefined();
    });

    it('refuses bad arguments with ARGUMENT_INVALID', async () => {
      const bad = [undefined, {}, { before: 'yesterday' }, { before: new Date(Number.NaN) }, { before: new Date(), limit: 0 }, { before: new Date(), limit: 1.5 }, { before: new Date(), dryRun: 'yes' }];
      for (const options of bad) expect(await codeOf(store.pruneEvents(options as never))).toBe('ARGUMENT_INVALID');
    });
  });

  describe('a webhook cursor below the pruned horizon', () => {
    it('is reported in status, stepped over once with its gap recorded, and delivery goes on from the oldest event left', async () => {
      await store.notifications.open(HOOK);
      const { events: old, cut } = await eventsBeforeCut(store, 4);
      const left = await store.createEvent(gcEvent('left'));
      const { horizon } = await store.pruneEvents({ before: cut });
      const [pending] = await store.notifications.status();
      expect(pending.missed).toEqual({ count: 4, from: horizon - 3, to: horizon });
      expect(pending.backlog).toBe(1);

      const missed = await store.notifications.skipPruned(HOOK);
      expect(missed).toEqual({ count: 4, from: horizon - 3, to: horizon, at: expect.any(Date) });
      expect(await store.notifications.skipPruned(HOOK)).toBeUndefined();
      const batch = await store.notifications.eventsAfter(HOOK, 100);
      expect(batch.map((e) => e.id)).toEqual([left.id]);
      const [stepped] = await store.notifications.status();
      expect(stepped.missed).toEqual(missed);
      expect(stepped.backlog).toBe(1);
      expect(old).toHaveLength(4);

      // A second gap adds to the count; the range is the latest one's.
      await store.notifications.advance(HOOK, batch);
      const more = await eventsBeforeCut(store, 2, 'more');
      const second = await store.pruneEvents({ before: more.cut });
      expect(await store.notifications.skipPruned(HOOK)).toMatchObject({ count: 2, from: second.horizon - 1, to: second.horizon });
      expect((await store.notifications.status())[0].missed).toMatchObject({ count: 6, from: second.horizon - 1, to: second.horizon });
    });

    it('is recorded by advance when a prune came between skipPruned and eventsAfter: the events pruned unseen are missed', async () => {
      await store.notifications.open(HOOK);
      const { cut } = await eventsBeforeCut(store, 3);
      const left = await store.createEvent(gcEvent('left'));
      expect(await store.notifications.skipPruned(HOOK)).toBeUndefined();
      const { horizon } = await store.pruneEvents({ before: cut });
      const batch = await store.notifications.eventsAfter(HOOK, 100);
      expect(batch.map((e) => e.id)).toEqual([left.id]);

      const missed = await store.notifications.advance(HOOK, batch);
      expect(missed).toEqual({ count: 3, from: horizon - 2, to: horizon, at: expect.any(Date) });
      const [status] = await store.notifications.status();
      expect(status).toMatchObject({ eventId: left.id, backlog: 0, missed });
      expect(await store.notifications.skipPruned(HOOK)).toBeUndefined();
      // Acknowledged again: a success, and no gap counted twice.
      expect(await store.notifications.advance(HOOK, batch)).toBeUndefined();
      expect((await store.notifications.status())[0].missed).toEqual(missed);
    });

    it('never counts delivered events as missed: advance after they were pruned moves the cursor and records no gap', async () => {
      await store.notifications.open(HOOK);
      const { cut } = await eventsBeforeCut(store, 3);
      const kept = await store.createEvent(gcEvent('kept'));
      const batch = await store.notifications.eventsAfter(HOOK, 100);
      expect(batch).toHaveLength(4);
      const { pruned } = await store.pruneEvents({ before: cut });
      expect(pruned).toBe(3);

      expect(await store.notifications.advance(HOOK, batch)).toBeUndefined();
      const [status] = await store.notifications.status();
      expect(status).toMatchObject({ eventId: kept.id, backlog: 0, failures: 0 });
      expect(status.missed).toBeUndefined();
      expect(await store.notifications.eventsAfter(HOOK, 100)).toEqual([]);
      // Its own last event pruned too: still a plain step forward.
      const more = await eventsBeforeCut(store, 2, 'more');
      const next = await store.notifications.eventsAfter(HOOK, 100);
      await store.pruneEvents({ before: more.cut });
      expect(await store.notifications.advance(HOOK, next)).toBeUndefined();
      expect((await store.notifications.status())[0]).toMatchObject({ eventId: more.events[1].id, backlog: 0 });
      expect((await store.notifications.status())[0].missed).toBeUndefined();
    });

    it('needs a cursor: ARGUMENT_INVALID', async () => {
      expect(await codeOf(store.notifications.skipPruned(HOOK))).toBe('ARGUMENT_INVALID');
      expect(await codeOf(store.notifications.skipPruned(''))).toBe('ARGUMENT_INVALID');
    });
  });

  describe('job leases', () => {
    it('go to one holder at a time, across connections; renewed by their holder, released, or taken over once run out', async () => {
      const shared = await backend.open({ shared: true });
      try {
        const a = shared.store;
        const b = await shared.connect();
        expect(await a.leaseJob('maintenance', 'a', 60_000)).toBe(true);
        expect(await b.leaseJob('maintenance', 'b', 60_000)).toBe(false);
        expect(await a.leaseJob('maintenance', 'a', 60_000)).toBe(true);
        expect(await b.leaseJob('other', 'b', 60_000)).toBe(true);
        expect(await b.releaseJob('maintenance', 'b')).toBe(false);
        expect(await a.releaseJob('maintenance', 'a')).toBe(true);
        expect(await b.leaseJob('maintenance', 'b', 1)).toBe(true);
        expect(await b.leaseJob('maintenance', 'b', 1)).toBe(true);
        // A lease of 1 ms runs out by itself: then a's next try takes it.
        await expect.poll(() => a.leaseJob('maintenance', 'a', 60_000), { timeout: 10_000 }).toBe(true);
        expect(await b.leaseJob('maintenance', 'b', 60_000)).toBe(false);
      } finally {
        await shared.cleanup();
      }
    });

    it('of several takers at once go to one', async () => {
      const shared = await backend.open({ shared: true });
      try {
        const stores = [shared.store, await shared.connect(), await shared.connect()];
        const taken = await Promise.all(stores.flatMap((s, i) => [s.leaseJob('race', `h${i}`, 60_000), s.leaseJob('race', `h${i}x`, 60_000)]));
        expect(taken.filter(Boolean)).toHaveLength(1);
      } finally {
        await shared.cleanup();
      }
    });

    it('refuse bad arguments with ARGUMENT_INVALID', async () => {
      expect(await codeOf(store.leaseJob('', 'a', 1000))).toBe('ARGUMENT_INVALID');
      expect(await codeOf(store.leaseJob('j', '', 1000))).toBe('ARGUMENT_INVALID');
      expect(await codeOf(store.leaseJob('j'.repeat(101), 'a', 1000))).toBe('ARGUMENT_INVALID');
      expect(await codeOf(store.leaseJob('j', 'a', 0))).toBe('ARGUMENT_INVALID');
      expect(await codeOf(store.leaseJob('j', 'a', 1.5))).toBe('ARGUMENT_INVALID');
      expect(await codeOf(store.releaseJob('j', 7 as never))).toBe('ARGUMENT_INVALID');
    });
  });
});
