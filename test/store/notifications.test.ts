// The webhook cursors: a new endpoint starts at the newest event, events after
// a cursor in commit order with their targets, a cursor that only moves
// forward, failures and status, shared between connections.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type MetadataStore } from 'regmeta';
import { caught, ociManifest, tempStore } from './fixtures.js';

const HOOK = 'http://receiver.example/hook';
let store: MetadataStore;
let file: string;
let cleanup: () => void;
beforeEach(() => {
  ({ store, file, cleanup } = tempStore());
});
afterEach(() => cleanup());

describe('notification cursors', () => {
  it('start at the newest event: history before the endpoint is not sent', () => {
    const old = ociManifest({ seed: 'old' });
    store.putManifest('acme/app', old.digest, old, undefined, { tag: 'old' });
    store.notifications.open(HOOK);
    expect(store.notifications.eventsAfter(HOOK, 100)).toEqual([]);
    const [status] = store.notifications.status();
    expect(status).toMatchObject({ endpoint: HOOK, backlog: 0, failures: 0 });
    expect(status.eventId).toBeDefined();
  });

  it('read the events after them in commit order, with media type and size while stored', () => {
    store.notifications.open(HOOK);
    expect(store.notifications.status()[0].eventId).toBeUndefined();
    const m = ociManifest({ seed: 'new' });
    store.putManifest('acme/app', m.digest, m, { actor: 'alice' }, { tag: 'v1' });
    store.deleteTag('acme/app', 'v1');
    const events = store.notifications.eventsAfter(HOOK, 100);
    expect(events.map((e) => `${e.type} ${e.object.type}`)).toEqual(['CREATE REPOSITORY', 'CREATE MANIFEST', 'CREATE TAG', 'DELETE TAG']);
    expect(events[1]).toMatchObject({ digest: m.digest, mediaType: m.mediaType, size: m.payload.length, actor: 'alice' });
    expect(events[2]).toMatchObject({ tag: 'v1', digest: m.digest, mediaType: m.mediaType });
    expect(store.notifications.eventsAfter(HOOK, 2)).toHaveLength(2);
    expect(store.notifications.status()[0].backlog).toBe(4);
  });

  it('move forward only, in the store file, and count failures until a success', () => {
    store.notifications.open(HOOK);
    const m = ociManifest({ seed: 'fwd' });
    store.putManifest('acme/app', m.digest, m, undefined, { tag: 'v1' });
    const events = store.notifications.eventsAfter(HOOK, 100);
    store.notifications.recordFailure(HOOK, 'HTTP 500');
    store.notifications.recordFailure(HOOK, 'HTTP 503');
    expect(store.notifications.status()[0]).toMatchObject({ failures: 2, lastError: 'HTTP 503' });
    store.notifications.advance(HOOK, events[1].id);
    store.notifications.advance(HOOK, events[0].id); // a late, repeated acknowledgement
    const other = openStore(file);
    try {
      const [status] = other.notifications.status();
      expect(status).toMatchObject({ eventId: events[1].id, backlog: 1, failures: 0, lastError: 'HTTP 503' });
      expect(status.lastSuccessAt).toBeInstanceOf(Date);
      expect(other.notifications.eventsAfter(HOOK, 100).map((e) => e.id)).toEqual([events[2].id]);
      // Opening again keeps the cursor where it is.
      other.notifications.open(HOOK);
      expect(other.notifications.status()[0].eventId).toBe(events[1].id);
    } finally {
      other.close();
    }
  });

  it('refuse bad arguments with ARGUMENT_INVALID', () => {
    expect(caught(() => store.notifications.open('')).code).toBe('ARGUMENT_INVALID');
    expect(caught(() => store.notifications.eventsAfter(HOOK, 10)).code).toBe('ARGUMENT_INVALID');
    store.notifications.open(HOOK);
    expect(caught(() => store.notifications.eventsAfter(HOOK, 0)).code).toBe('ARGUMENT_INVALID');
    expect(caught(() => store.notifications.advance(HOOK, 'no-such-event')).code).toBe('ARGUMENT_INVALID');
    expect(store.notifications.remove(HOOK)).toBe(true);
    expect(store.notifications.status()).toEqual([]);
  });
});
