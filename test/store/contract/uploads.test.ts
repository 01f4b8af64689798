// Upload sessions on every backend: opened for any repository name, kept to
// their repository, capped per client address in the same transaction as the
// insert, one claim at a time (an owner and a lease) across connections, a
// commit that moves the size and releases at once, and the sweeper's view of
// idle sessions, which two sweepers never both expire.

import { describe, expect, it } from 'vitest';
import { codeOf } from '../fixtures.js';
import { backends, storePerTest } from './backends.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(backends)('$name', (backend) => {
  const store = storePerTest(backend);

  describe('upload sessions', () => {
    it('open empty for a repository that does not exist yet, and read back only through that repository', async () => {
      const session = await store.uploads.open('new/repo', '10.0.0.1', 10);
      expect(session).toMatchObject({ repo: 'new/repo', client: '10.0.0.1', size: 0 });
      expect(session.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(session.startedAt).toBeInstanceOf(Date);
      expect(await store.uploads.get('new/repo', session.id)).toEqual(session);
      expect(await codeOf(store.uploads.get('other/repo', session.id))).toBe('BLOB_UPLOAD_UNKNOWN');
      expect(await codeOf(store.uploads.get('new/repo', 'not-a-uuid'))).toBe('BLOB_UPLOAD_UNKNOWN');
      expect(await codeOf(store.uploads.claim('other/repo', session.id, 'w', 1000))).toBe('BLOB_UPLOAD_UNKNOWN');
      expect(await store.catalog()).toEqual([]);
      expect(await store.uploads.has(session.id)).toBe(true);
      expect(await store.uploads.count()).toBe(1);
    });

    it('cap the sessions of one client address, counted in the transaction of the insert, even when opened at once', async () => {
      const shared = await backend.open({ shared: true });
      try {
        const other = await shared.connect();
        const opens = Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? shared.store : other).uploads.open('acme/app', '10.0.0.1', 5));
        const results = await Promise.allSettled(opens);
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
        const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        expect(refused.map((r) => (r.reason as { code: string }).code)).toEqual(Array(7).fill('TOOMANYREQUESTS'));
        expect(refused[0].reason).toMatchObject({ detail: { held: 5, max: 5 } });
        // Per address, and 0 turns the cap off.
        await shared.store.uploads.open('acme/app', '10.0.0.2', 5);
        await shared.store.uploads.open('acme/app', '10.0.0.1', 0);
        const [first] = (await Promise.all(opens.map((p) => p.catch(() => undefined)))).filter((s) => s !== undefined);
        expect(await shared.store.uploads.end('acme/app', first!.id)).toBe(true);
        expect(await shared.store.uploads.end('acme/app', first!.id)).toBe(false);
        await other.uploads.open('acme/app', '10.0.0.1', 7);
      } finally {
        await shared.cleanup();
      }
    });

    it('let one owner claim a session at a time, across connections, until it commits, releases or its lease runs out', async () => {
      const shared = await backend.open({ shared: true });
      try {
        const other = await shared.connect();
        const { id } = await shared.store.uploads.open('acme/app', 'a', 0);
        expect(await shared.store.uploads.claim('acme/app', id, 'writer-1', 60_000)).toEqual({ size: 0 });
        expect(await other.uploads.claim('acme/app', id, 'writer-2', 60_000)).toBe('busy');
        // The owner renews; another cannot.
        expect(await shared.store.uploads.renew(id, 'writer-1', 60_000)).toBe(true);
        expect(await other.uploads.renew(id, 'writer-2', 60_000)).toBe(false);
        expect(await codeOf(other.uploads.commit(id, 'writer-2', 99))).toBe('BLOB_UPLOAD_UNKNOWN');
        // Commit moves the size and releases in one.
        await shared.store.uploads.commit(id, 'writer-1', 1234);
        expect(await other.uploads.claim('acme/app', id, 'writer-2', 60_000)).toEqual({ size: 1234 });
        await other.uploads.release(id, 'writer-2');
        await other.uploads.release(id, 'writer-2'); // nothing to release: no error
        expect(await shared.store.uploads.claim('acme/app', id, 'writer-3', 50)).toEqual({ size: 1234 });
        await sleep(80);
        // A lease that ran out is anyone's; its old owner can no longer commit.
        expect(await other.uploads.claim('acme/app', id, 'writer-4', 60_000)).toEqual({ size: 1234 });
        expect(await codeOf(shared.store.uploads.commit(id, 'writer-3', 2000))).toBe('BLOB_UPLOAD_UNKNOWN');
        expect((await other.uploads.get('acme/app', id)).size).toBe(1234);
      } finally {
        await shared.cleanup();
      }
    });

    it('give exactly one of several owners claiming at once the session', async () => {
      const shared = await backend.open({ shared: true });
      try {
        const other = await shared.connect();
        const { id } = await shared.store.uploads.open('acme/app', 'a', 0);
        const claims = await Promise.all(
          Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? shared.store : other).uploads.claim('acme/app', id, `writer-${i}`, 60_000)),
        );
        expect(claims.filter((c) => c !== 'busy')).toEqual([{ size: 0 }]);
      } finally {
        await shared.cleanup();
      }
    });

    it('list the sessions idle past a time with no live claim, and expire each once', async () => {
      const idle = await store.uploads.open('acme/app', 'a', 0);
      const claimed = await store.uploads.open('acme/app', 'a', 0);
      await store.uploads.claim('acme/app', claimed.id, 'writer', 60_000);
      await sleep(20);
      const cutoff = new Date();
      await sleep(5);
      const fresh = await store.uploads.open('acme/app', 'a', 0);
      expect((await store.uploads.idle(cutoff)).map((s) => s.id)).toEqual([idle.id]);
      expect(await store.uploads.expire(fresh.id, cutoff)).toBe(false);
      expect(await store.uploads.expire(claimed.id, cutoff)).toBe(false);
      const expired = await Promise.all([store.uploads.expire(idle.id, cutoff), store.uploads.expire(idle.id, cutoff)]);
      expect(expired.sort()).toEqual([false, true]);
      expect(await store.uploads.has(idle.id)).toBe(false);
      expect(await store.uploads.count()).toBe(2);
    });

    it('count a claim or a commit as use: a session used since the cutoff is not idle', async () => {
      const session = await store.uploads.open('acme/app', 'a', 0);
      await sleep(20);
      const cutoff = new Date(Date.now() - 5);
      await store.uploads.claim('acme/app', session.id, 'w', 60_000);
      await store.uploads.commit(session.id, 'w', 10);
      expect(await store.uploads.idle(cutoff)).toEqual([]);
      expect(await store.uploads.expire(session.id, cutoff)).toBe(false);
    });

    it('refuse bad arguments with typed errors', async () => {
      expect(await codeOf(store.uploads.open('Not A Name', 'a', 1))).toBe('NAME_INVALID');
      expect(await codeOf(store.uploads.open('acme/app', 'x'.repeat(256), 1))).toBe('ARGUMENT_INVALID');
      expect(await codeOf(store.uploads.open('acme/app', 'a', -1))).toBe('ARGUMENT_INVALID');
      const { id } = await store.uploads.open('acme/app', 'a', 1);
      expect(await codeOf(store.uploads.claim('acme/app', id, '', 1000))).toBe('ARGUMENT_INVALID');
      expect(await codeOf(store.uploads.claim('acme/app', id, 'w', 0))).toBe('ARGUMENT_INVALID');
      expect(await codeOf(store.uploads.commit(id, 'w', -5))).toBe('ARGUMENT_INVALID');
      expect(await codeOf(store.uploads.idle(new Date(Number.NaN)))).toBe('ARGUMENT_INVALID');
      expect(await codeOf(store.uploads.idle(new Date(), 0))).toBe('ARGUMENT_INVALID');
      expect(await store.uploads.end('acme/app', 'not-a-uuid')).toBe(false);
      expect(await store.uploads.has('not-a-uuid')).toBe(false);
    });
  });
});
