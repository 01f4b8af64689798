// putTag, getTag, deleteTag and tagHistory, case by case, on every backend.

import { describe, expect, it } from 'vitest';
import { NotFoundError } from 'regmeta';
import { MediaType, codeOf, dockerManifest, eventsOf, ociIndex, ociManifest, putBuiltAsync, rejection, type Built } from '../fixtures.js';
import { backends, storePerTest } from './backends.js';

describe.each(backends)('$name', (backend) => {
  const store = storePerTest(backend);

  const put = (repo: string, m: Built) => putBuiltAsync(store, repo, m);
  const eventCount = async () => (await eventsOf(store)).length;
  const eventsSince = async (count: number) => (await eventsOf(store)).slice(count);

  describe('putTag', () => {
    it('creates a tag with a CREATE TAG event that names the digest and no previousDigest', async () => {
      const m = await put('acme/app', ociManifest());
      const before = await eventCount();
      await store.putTag('acme/app', 'latest', { digest: m.digest }, { actor: 'alice' });
      const [event, ...rest] = await eventsSince(before);
      expect(rest).toEqual([]);
      expect(event).toMatchObject({
        actor: 'alice',
        type: 'CREATE',
        object: { type: 'TAG', id: 'acme/app:latest' },
        repository: 'acme/app',
        tag: 'latest',
        digest: m.digest,
      });
      expect(event.previousDigest).toBeUndefined();
      expect((await store.getTag('acme/app', 'latest')).digest).toBe(m.digest);
    });

    it('moves a tag with an UPDATE TAG event carrying previousDigest, and grows the history', async () => {
      const a = await put('acme/app', ociManifest({ seed: 'a' }));
      const b = await put('acme/app', ociManifest({ seed: 'b' }));
      await store.putTag('acme/app', 'latest', { digest: a.digest });
      const before = await eventCount();
      await store.putTag('acme/app', 'latest', { digest: b.digest }, { actor: 'bob' });
      const added = await eventsSince(before);
      expect(added).toHaveLength(1);
      expect(added[0]).toMatchObject({
        actor: 'bob',
        type: 'UPDATE',
        object: { type: 'TAG', id: 'acme/app:latest' },
        tag: 'latest',
        digest: b.digest,
        previousDigest: a.digest,
      });
      expect((await store.getTag('acme/app', 'latest')).digest).toBe(b.digest);
      expect((await store.tagHistory('acme/app', 'latest')).map((h) => h.digest)).toEqual([b.digest, a.digest]);
    });

    it('a move is dated when it happens, and leaves the time the tag was first set in the history', async () => {
      const a = await put('acme/app', ociManifest({ seed: 'a' }));
      const b = await put('acme/app', ociManifest({ seed: 'b' }));
      await store.putTag('acme/app', 'latest', { digest: a.digest });
      const [first] = await store.tagHistory('acme/app', 'latest');
      // Wait for the clock to move so that the move's time can differ from the first.
      while (Date.now() <= first.taggedAt.getTime()) await new Promise((r) => setTimeout(r, 2));
      await store.putTag('acme/app', 'latest', { digest: b.digest });
      const history = await store.tagHistory('acme/app', 'latest');
      expect(history[1]).toEqual(first);
      expect(history[0].taggedAt.getTime()).toBeGreaterThan(first.taggedAt.getTime());
      expect(history[0].taggedAt.getTime()).toBeLessThanOrEqual(Date.now());
    });

    it('re-putting the same target writes no event and no history', async () => {
      const m = await put('acme/app', ociManifest());
      await store.putTag('acme/app', 'latest', { digest: m.digest });
      const before = await eventCount();
      await store.putTag('acme/app', 'latest', { digest: m.digest, mediaType: m.mediaType, size: m.size });
      expect(await eventsOf(store)).toHaveLength(before);
      expect(await store.tagHistory('acme/app', 'latest')).toHaveLength(1);
    });

    it('moving away and back is two updates, each with its previousDigest', async () => {
      const a = await put('acme/app', ociManifest({ seed: 'a' }));
      const b = await put('acme/app', ociManifest({ seed: 'b' }));
      await store.putTag('acme/app', 'latest', { digest: a.digest });
      const before = await eventCount();
      await store.putTag('acme/app', 'latest', { digest: b.digest });
      await store.putTag('acme/app', 'latest', { digest: a.digest });
      expect((await eventsSince(before)).map((e) => [e.type, e.digest, e.previousDigest])).toEqual([
        ['UPDATE', b.digest, a.digest],
        ['UPDATE', a.digest, b.digest],
      ]);
      expect((await store.tagHistory('acme/app', 'latest')).map((h) => h.digest)).toEqual([a.digest, b.digest, a.digest]);
    });

    it('needs the manifest in that repository: MANIFEST_UNKNOWN otherwise, and no event', async () => {
      await put('acme/app', ociManifest());
      const elsewhere = await put('acme/other', ociManifest({ seed: 'elsewhere' }));
      const before = await eventCount();
      const error = await rejection(store.putTag('acme/app', 'latest', { digest: elsewhere.digest }));
      expect(error).toBeInstanceOf(NotFoundError);
      expect(error.code).toBe('MANIFEST_UNKNOWN');
      expect(await eventsOf(store)).toHaveLength(before);
      expect(await store.allTags('acme/app')).toEqual([]);
    });

    it('a missing repository is NAME_UNKNOWN and is not created', async () => {
      const error = await rejection(store.putTag('acme/none', 'latest', { digest: ociManifest().digest }));
      expect(error).toBeInstanceOf(NotFoundError);
      expect(error.code).toBe('NAME_UNKNOWN');
      expect(await store.catalog()).toEqual([]);
    });

    it('re-tagging after a delete is a fresh CREATE, not a revived tombstone', async () => {
      const a = await put('acme/app', ociManifest({ seed: 'a' }));
      const b = await put('acme/app', ociManifest({ seed: 'b' }));
      await store.putTag('acme/app', 'latest', { digest: a.digest });
      await store.deleteTag('acme/app', 'latest');
      const before = await eventCount();
      await store.putTag('acme/app', 'latest', { digest: b.digest });
      const [event] = await eventsSince(before);
      expect(event.type).toBe('CREATE');
      expect(event.previousDigest).toBeUndefined();
      expect((await store.getTag('acme/app', 'latest')).digest).toBe(b.digest);
    });
  });

  describe('getTag', () => {
    it("reports the manifest's own mediaType and size, whatever the descriptor given to putTag said", async () => {
      const m = await put('acme/app', dockerManifest());
      await store.putTag('acme/app', 'latest', {
        digest: m.digest,
        mediaType: 'application/vnd.example.wrong',
        size: m.size + 12345,
        annotations: { a: 'b' },
      });
      expect(await store.getTag('acme/app', 'latest')).toEqual({ mediaType: MediaType.DockerManifest, digest: m.digest, size: m.size });
    });

    it('reports an index as an index', async () => {
      const child = await put('acme/app', ociManifest());
      const idx = await put('acme/app', ociIndex([child.descriptor]));
      await store.putTag('acme/app', 'multi', { digest: idx.digest });
      expect(await store.getTag('acme/app', 'multi')).toEqual({ mediaType: MediaType.OciIndex, digest: idx.digest, size: idx.size });
    });

    it('a missing tag is NotFoundError MANIFEST_UNKNOWN', async () => {
      await put('acme/app', ociManifest());
      const error = await rejection(store.getTag('acme/app', 'nope'));
      expect(error).toBeInstanceOf(NotFoundError);
      expect(error.code).toBe('MANIFEST_UNKNOWN');
    });

    it('a missing repository is NotFoundError NAME_UNKNOWN', async () => {
      const error = await rejection(store.getTag('acme/none', 'latest'));
      expect(error).toBeInstanceOf(NotFoundError);
      expect(error.code).toBe('NAME_UNKNOWN');
    });

    it('a tag of another repository is not found', async () => {
      const m = await put('acme/app', ociManifest());
      await put('acme/other', ociManifest({ seed: 'o' }));
      await store.putTag('acme/app', 'latest', { digest: m.digest });
      expect(await codeOf(store.getTag('acme/other', 'latest'))).toBe('MANIFEST_UNKNOWN');
    });

    it('tags are case-sensitive', async () => {
      const m = await put('acme/app', ociManifest());
      await store.putTag('acme/app', 'Latest', { digest: m.digest });
      expect(await codeOf(store.getTag('acme/app', 'latest'))).toBe('MANIFEST_UNKNOWN');
      expect((await store.getTag('acme/app', 'Latest')).digest).toBe(m.digest);
    });
  });

  describe('deleteTag', () => {
    it('removes the tag, not the manifest, with a DELETE TAG event naming the digest', async () => {
      const m = await put('acme/app', ociManifest());
      await store.putTag('acme/app', 'latest', { digest: m.digest });
      await store.putTag('acme/app', 'v1', { digest: m.digest });
      const before = await eventCount();
      await store.deleteTag('acme/app', 'latest', { actor: 'carol' });
      const added = await eventsSince(before);
      expect(added).toHaveLength(1);
      expect(added[0]).toMatchObject({
        actor: 'carol',
        type: 'DELETE',
        object: { type: 'TAG', id: 'acme/app:latest' },
        repository: 'acme/app',
        tag: 'latest',
        digest: m.digest,
      });
      expect(await codeOf(store.getTag('acme/app', 'latest'))).toBe('MANIFEST_UNKNOWN');
      expect((await store.statManifest('acme/app', m.digest)).digest).toBe(m.digest);
      expect(await store.allTags('acme/app')).toEqual(['v1']);
    });

    it('a missing tag is NotFoundError MANIFEST_UNKNOWN and writes no event', async () => {
      await put('acme/app', ociManifest());
      const before = await eventCount();
      const error = await rejection(store.deleteTag('acme/app', 'latest'));
      expect(error).toBeInstanceOf(NotFoundError);
      expect(error.code).toBe('MANIFEST_UNKNOWN');
      expect(await eventsOf(store)).toHaveLength(before);
    });

    it('deleting twice fails the second time', async () => {
      const m = await put('acme/app', ociManifest());
      await store.putTag('acme/app', 'latest', { digest: m.digest });
      await store.deleteTag('acme/app', 'latest');
      expect(await codeOf(store.deleteTag('acme/app', 'latest'))).toBe('MANIFEST_UNKNOWN');
    });

    it('a missing repository is NotFoundError NAME_UNKNOWN', async () => {
      const error = await rejection(store.deleteTag('acme/none', 'latest'));
      expect(error).toBeInstanceOf(NotFoundError);
      expect(error.code).toBe('NAME_UNKNOWN');
    });
  });

  describe('tagHistory', () => {
    it('lists every target newest first with when it was set', async () => {
      const a = await put('acme/app', ociManifest({ seed: 'a' }));
      const b = await put('acme/app', ociManifest({ seed: 'b' }));
      const t0 = Date.now();
      await store.putTag('acme/app', 'latest', { digest: a.digest });
      await store.putTag('acme/app', 'latest', { digest: b.digest });
      const history = await store.tagHistory('acme/app', 'latest');
      expect(history.map((h) => h.digest)).toEqual([b.digest, a.digest]);
      for (const h of history) {
        expect(h.taggedAt).toBeInstanceOf(Date);
        expect(h.taggedAt.getTime()).toBeGreaterThanOrEqual(t0);
      }
      expect(history[0].taggedAt.getTime()).toBeGreaterThanOrEqual(history[1].taggedAt.getTime());
    });

    it('keeps the history of one tag apart from another', async () => {
      const a = await put('acme/app', ociManifest({ seed: 'a' }));
      const b = await put('acme/app', ociManifest({ seed: 'b' }));
      await store.putTag('acme/app', 'one', { digest: a.digest });
      await store.putTag('acme/app', 'two', { digest: b.digest });
      expect((await store.tagHistory('acme/app', 'one')).map((h) => h.digest)).toEqual([a.digest]);
      expect((await store.tagHistory('acme/app', 'two')).map((h) => h.digest)).toEqual([b.digest]);
    });

    it('is [] for a tag never set, NAME_UNKNOWN for a missing repository', async () => {
      await put('acme/app', ociManifest());
      expect(await store.tagHistory('acme/app', 'never')).toEqual([]);
      expect(await codeOf(store.tagHistory('acme/none', 'latest'))).toBe('NAME_UNKNOWN');
    });
  });
});
