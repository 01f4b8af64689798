// The digest's lock across an action that awaits (an object store's
// request): linkBlob's place, whileBlobUnknown's fn and collectBlob's
// removeFile, from two stores on one database (two connections, or two
// replicas), ordered by latches the test opens, never by sleeps. On every
// backend.

import { describe, expect, it } from 'vitest';
import type { Store } from 'regmeta';
import { blobDigest, codeOf, rejection, snapshot } from '../fixtures.js';
import { backends, storePerTest, type Backend } from './backends.js';

const repo = 'acme/app';
const GC = { actor: 'GARBAGE_COLLECTOR' };
const soon = () => new Date(Date.now() + 1000);

/** A promise the test resolves when it likes. */
function latch(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** An action that says when it has started, then awaits `gate`, then records that it ended. */
function gated(gate: Promise<void>): { action: () => Promise<void>; started: Promise<void>; ended: () => boolean } {
  const started = latch();
  let ended = false;
  return {
    action: async () => {
      started.open();
      await gate;
      ended = true;
    },
    started: started.promise,
    ended: () => ended,
  };
}

/** Whether `pending` has settled, as the test goes on. */
function tracked<T>(pending: Promise<T>): { pending: Promise<T>; settled: () => boolean } {
  let settled = false;
  const done = () => void (settled = true);
  pending.then(done, done);
  return { pending, settled: () => settled };
}

/**
 * Round trips of `store` while a call on the other store waits: time for a
 * call that does not wait to settle, counted in calls, not in milliseconds.
 */
async function roundTrips(store: Store): Promise<void> {
  for (let i = 0; i < 5; i++) await store.allBlobs();
}

/** Two stores on one database, for `fn`; both closed after. */
async function twoStores(backend: Backend, fn: (a: Store, b: Store) => Promise<void>): Promise<void> {
  const shared = await backend.open({ shared: true });
  try {
    await fn(shared.store, await shared.connect());
  } finally {
    await shared.cleanup();
  }
}

describe.each(backends)('$name', (backend) => {
  const store = storePerTest(backend);

  it('an async place holds the digest until its link commits: a whileBlobUnknown elsewhere waits, then finds the row and runs nothing', async () => {
    await twoStores(backend, async (a, b) => {
      const digest = blobDigest('held');
      const gate = latch();
      const place = gated(gate.promise);
      const linking = a.linkBlob(repo, { digest, size: 5 }, {}, { place: place.action });
      await place.started;
      let ran = false;
      const unknown = tracked(b.whileBlobUnknown(digest, () => void (ran = true)));
      await roundTrips(b);
      expect(unknown.settled()).toBe(false);
      expect(await codeOf(b.statBlob(repo, digest))).toBe('NAME_UNKNOWN');
      gate.open();
      await linking;
      expect(await unknown.pending).toBe(false);
      expect(ran).toBe(false);
      expect((await b.statBlob(repo, digest)).size).toBe(5);
    });
  });

  it("a collectBlob's removeFile waits for an async place of the digest: the file goes exactly when the row goes", async () => {
    await twoStores(backend, async (a, b) => {
      const digest = blobDigest('repushed');
      await a.linkBlob(repo, { digest, size: 3 });
      const gate = latch();
      const place = gated(gate.promise);
      const linking = a.linkBlob('acme/other', { digest, size: 3 }, {}, { place: place.action });
      await place.started;
      let removedAfterPlace: boolean | undefined;
      const collecting = tracked(b.collectBlob(digest, GC, { olderThan: soon(), removeFile: () => void (removedAfterPlace = place.ended()) }));
      await roundTrips(b);
      expect(collecting.settled()).toBe(false);
      gate.open();
      await linking;
      await collecting.pending;
      // Either the push's link came last (the row is back, the file stays)
      // or the collection did (row and file both gone); never one without the other.
      const rows = await b.allBlobs();
      expect(removedAfterPlace === undefined).toBe(rows.length === 1);
      if (removedAfterPlace !== undefined) expect(removedAfterPlace).toBe(true);
    });
  });

  it('linkBlob without place waits for a whileBlobUnknown whose fn is running, and links after it', async () => {
    await twoStores(backend, async (a, b) => {
      const digest = blobDigest('swept');
      const gate = latch();
      const remove = gated(gate.promise);
      const unknown = a.whileBlobUnknown(digest, remove.action);
      await remove.started;
      const linking = tracked(b.linkBlob(repo, { digest, size: 7 }));
      await roundTrips(b);
      expect(linking.settled()).toBe(false);
      gate.open();
      expect(await unknown).toBe(true);
      await linking.pending;
      expect((await a.statBlob(repo, digest)).size).toBe(7);
    });
  });

  it('a failing async place links nothing, gives the caller its error, and lets the digest go', async () => {
    await store.linkBlob(repo, { digest: blobDigest('other'), size: 1 });
    const before = await snapshot(store);
    const digest = blobDigest('failed');
    const failure = new Error('ServiceUnavailable');
    const place = async () => {
      await Promise.resolve();
      throw failure;
    };
    await expect(store.linkBlob(repo, { digest, size: 5 }, {}, { place })).rejects.toBe(failure);
    expect(await snapshot(store)).toEqual(before);
    let ran = false;
    expect(await store.whileBlobUnknown(digest, async () => void (ran = await Promise.resolve(true)))).toBe(true);
    expect(ran).toBe(true);
    await store.linkBlob(repo, { digest, size: 5 }, {}, { place: async () => {} });
    expect((await store.statBlob(repo, digest)).size).toBe(5);
  });

  it('checks the size before an async place runs, and places nothing on SIZE_INVALID', async () => {
    const digest = blobDigest('sized');
    await store.linkBlob(repo, { digest, size: 3 });
    let placed = false;
    const error = await rejection(store.linkBlob(repo, { digest, size: 4 }, {}, { place: async () => void (placed = true) }));
    expect(error.code).toBe('SIZE_INVALID');
    expect(placed).toBe(false);
  });

  it('passes what an async removeFile rejects with to the caller as is, with the row already deleted', async () => {
    const digest = blobDigest('stuck');
    await store.linkBlob(repo, { digest, size: 3 });
    const failure = new Error('AccessDenied');
    const removeFile = async () => {
      await Promise.resolve();
      throw failure;
    };
    await expect(store.collectBlob(digest, GC, { olderThan: soon(), removeFile })).rejects.toBe(failure);
    expect(await store.unreferencedBlobs({ olderThan: soon() })).toEqual([]);
    expect(await store.whileBlobUnknown(digest, async () => {})).toBe(true);
  });
});
