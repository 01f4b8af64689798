// Immutable tags (StorePolicy.immutable) on every backend: once such a tag
// exists, no one but an admin moves or deletes it, by any path (putTag,
// putManifest with a tag, deleteTag, deleteManifest, deleteRepository); a
// refused write changes nothing; an admin's is done, its events carrying
// the reason.

import { describe, expect, it } from 'vitest';
import type { Store, StoreError } from 'regmeta';
import { eventsOf, ociManifest, putBuiltAsync, rejection, snapshot, type Built } from '../fixtures.js';
import { backends, storePerTest } from './backends.js';

const policy = { immutable: [{ repositories: 'rel/*', tags: ['v*', 'stable'] }] };
const OVERRIDE = 'immutable tag override by an admin';
const admin = { actor: 'root', admin: true };

describe.each(backends)('$name', (backend) => {
  const store = storePerTest(backend, { policy });
  let a: Built;
  let b: Built;

  async function seed(s: Store = store) {
    a = await putBuiltAsync(s, 'rel/app', ociManifest({ seed: 'a' }));
    b = await putBuiltAsync(s, 'rel/app', ociManifest({ seed: 'b' }));
    await s.putTag('rel/app', 'v1.2', { digest: a.digest }, { actor: 'alice' });
  }

  /** Expects `write` refused with DENIED naming the tag and the rule, the store unchanged. */
  async function refused(write: () => Promise<unknown>, tag = 'rel/app:v1.2', rule = 'rel/* v*'): Promise<StoreError> {
    const before = await snapshot(store);
    const error = await rejection(write());
    expect(error.code).toBe('DENIED');
    expect(error.message).toBe(`tag ${tag} is immutable (rule ${rule})`);
    expect(error.detail).toEqual({ repository: tag.split(':')[0], tag: tag.split(':')[1], rule });
    expect(await snapshot(store)).toEqual(before);
    return error;
  }

  describe('refused to anyone but an admin, changing nothing', () => {
    it('a move by putTag', async () => {
      await seed();
      await refused(() => store.putTag('rel/app', 'v1.2', { digest: b.digest }, { actor: 'alice' }));
    });

    it('a move by a push by tag (putManifest with a tag)', async () => {
      await seed();
      const c = ociManifest({ seed: 'c' });
      // The manifest is not stored either: the push is one transaction.
      await refused(() => store.putManifest('rel/app', c.digest, c, { actor: 'alice' }, { tag: 'v1.2' }));
      expect(await store.statManifest('rel/app', c.digest).catch((e: StoreError) => e.code)).toBe('MANIFEST_UNKNOWN');
    });

    it('a delete by deleteTag', async () => {
      await seed();
      await refused(() => store.deleteTag('rel/app', 'v1.2', { actor: 'alice' }));
    });

    it('a delete of its manifest, and of its repository', async () => {
      await seed();
      await refused(() => store.deleteManifest('rel/app', a.digest, { actor: 'alice' }));
      await refused(() => store.deleteRepository('rel/app', { actor: 'alice' }));
    });

    it('whichever of a rule\'s patterns matches: the message names it', async () => {
      await seed();
      await store.putTag('rel/app', 'stable', { digest: a.digest });
      await refused(() => store.putTag('rel/app', 'stable', { digest: b.digest }), 'rel/app:stable', 'rel/* stable');
    });
  });

  describe('allowed', () => {
    it('creating an immutable tag, and re-putting its own target (no move)', async () => {
      await seed();
      const before = (await eventsOf(store)).length;
      await store.putTag('rel/app', 'v1.2', { digest: a.digest }, { actor: 'alice' });
      await store.putManifest('rel/app', a.digest, a, { actor: 'alice' }, { tag: 'v1.2' });
      expect(await eventsOf(store)).toHaveLength(before);
      expect((await store.getTag('rel/app', 'v1.2')).digest).toBe(a.digest);
    });

    it('moving and deleting tags no rule matches, and any tag outside the rule\'s repositories', async () => {
      await seed();
      await store.putTag('rel/app', 'latest', { digest: a.digest });
      await store.putTag('rel/app', 'latest', { digest: b.digest });
      await store.deleteTag('rel/app', 'latest');
      const c = await putBuiltAsync(store, 'dev/app', ociManifest({ seed: 'c' }));
      const d = await putBuiltAsync(store, 'dev/app', ociManifest({ seed: 'd' }));
      await store.putTag('dev/app', 'v1.2', { digest: c.digest });
      await store.putTag('dev/app', 'v1.2', { digest: d.digest });
      await store.deleteManifest('dev/app', d.digest);
      await store.deleteManifest('rel/app', b.digest);
      expect(await store.allTags('rel/app')).toEqual(['v1.2']);
    });
  });

  describe("an admin's override", () => {
    it('moves the tag, its UPDATE event carrying the reason', async () => {
      await seed();
      const before = (await eventsOf(store)).length;
      await store.putTag('rel/app', 'v1.2', { digest: b.digest }, admin);
      const events = (await eventsOf(store)).slice(before);
      expect(events).toEqual([expect.objectContaining({ type: 'UPDATE', actor: 'root', tag: 'v1.2', digest: b.digest, previousDigest: a.digest, reason: OVERRIDE })]);
      const c = ociManifest({ seed: 'c' });
      await store.putManifest('rel/app', c.digest, c, admin, { tag: 'v1.2' });
      expect((await store.getTag('rel/app', 'v1.2')).digest).toBe(c.digest);
      expect((await eventsOf(store)).at(-1)).toMatchObject({ type: 'UPDATE', reason: OVERRIDE });
    });

    it('deletes the tag, its manifest and its repository, each immutable tag\'s event carrying the reason', async () => {
      await seed();
      await store.putTag('rel/app', 'v2', { digest: b.digest });
      await store.putTag('rel/app', 'other', { digest: b.digest });
      let before = (await eventsOf(store)).length;
      await store.deleteTag('rel/app', 'v1.2', admin);
      expect((await eventsOf(store)).slice(before)).toEqual([expect.objectContaining({ type: 'DELETE', tag: 'v1.2', reason: OVERRIDE })]);
      before = (await eventsOf(store)).length;
      await store.deleteManifest('rel/app', b.digest, admin);
      const deleted = (await eventsOf(store)).slice(before);
      expect(deleted.map((e) => [e.object.id, e.reason])).toEqual([
        ['rel/app:other', undefined],
        ['rel/app:v2', OVERRIDE],
        [`rel/app@${b.digest}`, undefined],
      ]);
      await store.putTag('rel/app', 'stable', { digest: a.digest });
      before = (await eventsOf(store)).length;
      await store.deleteRepository('rel/app', admin);
      const gone = (await eventsOf(store)).slice(before);
      expect(gone.find((e) => e.object.id === 'rel/app:stable')).toMatchObject({ reason: OVERRIDE });
      expect(gone.filter((e) => e.reason !== undefined)).toHaveLength(1);
      expect(await store.catalog()).toEqual([]);
    });

    it('an admin flag other than true is no admin', async () => {
      await seed();
      await refused(() => store.deleteTag('rel/app', 'v1.2', { actor: 'root', admin: 'yes' as unknown as boolean }));
    });
  });
});

describe.each(backends)('$name without immutable rules', (backend) => {
  const store = storePerTest(backend);
  it('moves and deletes any tag, with no reason on its events', async () => {
    const a = await putBuiltAsync(store, 'rel/app', ociManifest({ seed: 'a' }));
    const b = await putBuiltAsync(store, 'rel/app', ociManifest({ seed: 'b' }));
    await store.putTag('rel/app', 'v1.2', { digest: a.digest });
    await store.putTag('rel/app', 'v1.2', { digest: b.digest });
    await store.deleteTag('rel/app', 'v1.2');
    expect((await eventsOf(store)).filter((e) => e.reason !== undefined)).toEqual([]);
  });
});
