// The garbage collector's listings (untaggedManifests, unreferencedBlobs) and
// deletes (collectManifest, collectBlob), and what it and a registry's blob
// pushes rely on: the sweep's re-checks inside each delete, file removal only
// after the row is gone, a push's file placed under the write lock, and
// mounts checked and linked at once. On every backend.

import { describe, expect, it } from 'vitest';
import type { LockedAction } from 'regmeta';
import { absentManifest, blobDesc, blobDigest, codeOf, ociIndex } from '../fixtures.js';
import { ociManifest, putBuiltAsync, rejection, snapshot, tickPast, type Built } from '../fixtures.js';
import { backends, storePerTest } from './backends.js';

const repo = 'acme/app';
const GC = { actor: 'GARBAGE_COLLECTOR' };
const soon = () => new Date(Date.now() + 1000);
const future = () => new Date(Date.now() + 60_000);

/**
 * A callback for a store's locked action that runs `probe` inside it and
 * awaits it there, and what the probe found.
 */
function during<T>(probe: () => Promise<T>): { action: LockedAction; found: () => Promise<T | 'not called'> } {
  let pending: Promise<T> | undefined;
  return {
    action: () => {
      pending = probe();
      return pending.then(() => undefined);
    },
    found: () => pending ?? Promise.resolve('not called' as const),
  };
}

describe.each(backends)('$name', (backend) => {
  const store = storePerTest(backend);

  const put = (name: string, m: Built) => putBuiltAsync(store, name, m);

  describe('collectBlob', () => {
    it('removes the file only after the row is gone, as another connection sees it', async () => {
      const shared = await backend.open({ shared: true });
      try {
        const digest = blobDigest('old');
        await shared.store.linkBlob(repo, { digest, size: 3 });
        const other = await shared.connect();
        const seenByOther = during(() => codeOf(other.statBlob(repo, digest)));
        await shared.store.collectBlob(digest, GC, { olderThan: soon(), removeFile: seenByOther.action });
        expect(await seenByOther.found()).toBe('BLOB_UNKNOWN');
      } finally {
        await shared.cleanup();
      }
    });

    it('refuses, with olderThan, a blob linked within the grace period, and calls no removeFile', async () => {
      const digest = blobDigest('fresh');
      await store.linkBlob(repo, { digest, size: 3 });
      const before = await snapshot(store);
      let called = false;
      const error = await rejection(
        store.collectBlob(digest, GC, { olderThan: new Date(Date.now() - 60_000), removeFile: () => void (called = true) }),
      );
      expect(error.code).toBe('BLOB_REFERENCED');
      expect(called).toBe(false);
      expect(await snapshot(store)).toEqual(before);
    });

    it('passes what removeFile throws to the caller as is, with the row already deleted', async () => {
      const digest = blobDigest('stuck');
      await store.linkBlob(repo, { digest, size: 3 });
      const failure = new Error('EACCES');
      const removeFile = () => {
        throw failure;
      };
      await expect(store.collectBlob(digest, GC, { olderThan: soon(), removeFile })).rejects.toBe(failure);
      expect(await store.unreferencedBlobs({ olderThan: soon() })).toEqual([]);
    });
  });

  describe('linkBlob with place', () => {
    it('runs place inside the transaction, before the link is visible', async () => {
      const shared = await backend.open({ shared: true });
      try {
        const digest = blobDigest('pushed');
        const other = await shared.connect();
        const visibleDuringPlace = during(() => codeOf(other.statBlob(repo, digest)));
        await shared.store.linkBlob(repo, { digest, size: 5 }, {}, { place: visibleDuringPlace.action });
        expect((await other.statBlob(repo, digest)).size).toBe(5);
        // The repository itself is created in the same transaction, so the other
        // connection did not see it yet either.
        expect(await visibleDuringPlace.found()).toBe('NAME_UNKNOWN');
      } finally {
        await shared.cleanup();
      }
    });

    it('links nothing when place throws, and the caller gets its error', async () => {
      await store.linkBlob(repo, { digest: blobDigest('other'), size: 1 });
      const before = await snapshot(store);
      const failure = new Error('ENOSPC');
      const place = () => {
        throw failure;
      };
      await expect(store.linkBlob(repo, { digest: blobDigest('x'), size: 5 }, {}, { place })).rejects.toBe(failure);
      expect(await snapshot(store)).toEqual(before);
    });
  });

  describe('mountBlob', () => {
    it('links into the target a blob the source has, with its recorded size', async () => {
      const digest = blobDigest('base-layer');
      await store.linkBlob('library/base', { digest, size: 42 });
      expect((await store.mountBlob(repo, digest, 'library/base')).size).toBe(42);
      expect((await store.statBlob(repo, digest)).size).toBe(42);
    });

    it('refuses a blob the source does not have, even when another repository has it, and changes nothing', async () => {
      const digest = blobDigest('private');
      await store.linkBlob('secret/repo', { digest, size: 7 });
      await store.linkBlob('library/base', { digest: blobDigest('public'), size: 1 });
      const before = await snapshot(store);
      expect(await codeOf(store.mountBlob(repo, digest, 'library/base'))).toBe('BLOB_UNKNOWN');
      expect(await codeOf(store.mountBlob(repo, digest, 'no/such-repo'))).toBe('BLOB_UNKNOWN');
      expect(await snapshot(store)).toEqual(before);
    });
  });

  describe('collectManifest', () => {
    it('refuses a referrer whose subject arrived after the listing', async () => {
      const subject = ociManifest({ seed: 'subject' });
      const referrer = ociManifest({ seed: 'sig', artifactType: 'application/vnd.example.sig', subject: subject.descriptor });
      await put(repo, referrer);
      const listed = (await store.untaggedManifests({ olderThan: soon() })).map((m) => m.digest);
      expect(listed).toEqual([referrer.digest]);
      await put(repo, subject);
      await store.putTag(repo, 'v1', { digest: subject.digest });
      expect(await codeOf(store.collectManifest(repo, referrer.digest, GC, { olderThan: soon() }))).toBe('MANIFEST_REFERENCED');
      expect((await store.referrers(repo, subject.digest)).map((d) => d.digest)).toEqual([referrer.digest]);
    });

    it('refuses a manifest younger than olderThan', async () => {
      const image = ociManifest({ seed: 'young', subject: absentManifest('s') });
      await put(repo, image);
      const pending = store.collectManifest(repo, image.digest, GC, { olderThan: new Date(Date.now() - 60_000) });
      expect(await codeOf(pending)).toBe('MANIFEST_REFERENCED');
    });

    it('deletes an untagged manifest after a listing', async () => {
      const image = ociManifest();
      await put(repo, image);
      await store.collectManifest(repo, image.digest, GC, { olderThan: soon() });
      expect(await store.untaggedManifests()).toEqual([]);
      expect(await codeOf(store.statManifest(repo, image.digest))).toBe('MANIFEST_UNKNOWN');
    });

    it('refuses a manifest that gained a tag after the listing, keeping the manifest and the tag', async () => {
      const image = ociManifest();
      await put(repo, image);
      const listed = (await store.untaggedManifests({ olderThan: soon() })).map((m) => m.digest);
      await store.putTag(repo, 'late', { digest: image.digest });
      const before = await snapshot(store);
      const error = await rejection(store.collectManifest(repo, listed[0], {}, { olderThan: soon() }));
      expect({ code: error.code, detail: error.detail }).toEqual({ code: 'MANIFEST_REFERENCED', detail: { tags: ['late'] } });
      expect(await snapshot(store)).toEqual(before);
      expect((await store.getTag(repo, 'late')).digest).toBe(image.digest);
    });
  });

  describe('the grace period of a manifest pushed again', () => {
    it('counts from the last push: a re-pushed manifest is not listed as garbage, and keeps its createdAt', async () => {
      const image = ociManifest({ seed: 'repushed' });
      await put(repo, image);
      const created = (await store.statManifest(repo, image.digest)).createdAt;
      const cutoff = Date.now();
      // Until the clock has moved past the cutoff: the re-push is after it.
      tickPast(cutoff);
      await put(repo, image);
      const olderThan = new Date(cutoff + 1);
      expect(await store.untaggedManifests({ olderThan })).toEqual([]);
      expect(await codeOf(store.collectManifest(repo, image.digest, GC, { olderThan }))).toBe('MANIFEST_REFERENCED');
      expect((await store.statManifest(repo, image.digest)).createdAt).toEqual(created);
    });
  });

  describe('whileBlobUnknown', () => {
    it('runs its function only while no blob row names the digest', async () => {
      const known = blobDigest('known');
      await store.linkBlob(repo, { digest: known, size: 1 });
      const ran: string[] = [];
      expect(await store.whileBlobUnknown(known, () => void ran.push('known'))).toBe(false);
      expect(await store.whileBlobUnknown(blobDigest('orphan'), () => void ran.push('orphan'))).toBe(true);
      expect(ran).toEqual(['orphan']);
      expect(await codeOf(store.whileBlobUnknown('sha256:nope', () => void ran.push('bad')))).toBe('DIGEST_INVALID');
      expect(ran).toEqual(['orphan']);
    });
  });

  describe('untaggedManifests', () => {
    it('lists manifests that no tag, index or present subject keeps alive, older than the grace', async () => {
      const tagged = ociManifest({ seed: 'tagged' });
      const loose = ociManifest({ seed: 'loose' });
      const child = ociManifest({ seed: 'child' });
      const parent = ociIndex([child.descriptor]);
      const subject = ociManifest({ seed: 'subject' });
      const sig = ociManifest({ seed: 'sig', subject: subject.descriptor, artifactType: 'x/sig' });
      const orphanSig = ociManifest({ seed: 'orphan', subject: absentManifest('gone'), artifactType: 'x/sig' });
      for (const m of [tagged, loose, child, parent, subject, sig, orphanSig]) await put('acme/app', m);
      await store.putTag('acme/app', 'latest', { digest: tagged.digest });
      await store.putTag('acme/app', 'idx', { digest: parent.digest });
      await store.putTag('acme/app', 'subj', { digest: subject.digest });

      const found = await store.untaggedManifests({ olderThan: future() });
      expect(found.map((u) => u.digest).sort()).toEqual([loose.digest, orphanSig.digest].sort());
      for (const u of found) {
        expect(u.repository).toBe('acme/app');
        expect(u.createdAt).toBeInstanceOf(Date);
      }
    });

    it('keeps manifests newer than olderThan out (the grace period)', async () => {
      await put('acme/app', ociManifest());
      expect(await store.untaggedManifests({ olderThan: new Date(Date.now() - 60_000) })).toEqual([]);
    });

    it('a manifest becomes untagged when its last tag is deleted', async () => {
      const m = ociManifest();
      await put('acme/app', m);
      await store.putTag('acme/app', 'latest', { digest: m.digest });
      expect(await store.untaggedManifests({ olderThan: future() })).toEqual([]);
      await store.deleteTag('acme/app', 'latest');
      expect((await store.untaggedManifests({ olderThan: future() })).map((u) => u.digest)).toEqual([m.digest]);
    });

    it('refuses an olderThan that is not a valid Date', async () => {
      expect(await codeOf(store.untaggedManifests({ olderThan: new Date(NaN) }))).toBe('ARGUMENT_INVALID');
    });
  });

  describe('unreferencedBlobs', () => {
    it('lists blobs no manifest references, older than the grace, in digest order', async () => {
      const layer = blobDesc('layer');
      const loose = [blobDigest('x'), blobDigest('y'), blobDigest('z')];
      for (const digest of loose) await store.linkBlob('acme/app', { digest, size: 5 });
      await store.linkBlob('acme/app', { digest: layer.digest, size: layer.size });
      await put('acme/app', ociManifest({ layers: [layer] }));
      const found = await store.unreferencedBlobs({ olderThan: future() });
      expect(found.map((b) => b.digest)).toEqual([...loose].sort());
      for (const b of found) expect(b).toEqual({ digest: b.digest, size: 5, createdAt: expect.any(Date) });
    });

    it('leaves out blobs newer than olderThan (the grace period)', async () => {
      await store.linkBlob('acme/app', { digest: blobDigest('x'), size: 5 });
      expect(await store.unreferencedBlobs({ olderThan: new Date(Date.now() - 60_000) })).toEqual([]);
    });

    it('a fresh link restarts the grace period of an old blob', async () => {
      const digest = blobDigest('x');
      await store.linkBlob('acme/app', { digest, size: 5 });
      tickPast((await store.statBlob('acme/app', digest)).createdAt.getTime());
      const cut = new Date();
      expect((await store.unreferencedBlobs({ olderThan: cut })).map((b) => b.digest)).toEqual([digest]);
      tickPast(cut.getTime());
      await store.linkBlob('acme/other', { digest, size: 5 });
      expect(await store.unreferencedBlobs({ olderThan: cut })).toEqual([]);
    });

    it('a blob becomes unreferenced when its last manifest is deleted', async () => {
      const layer = blobDesc('layer');
      await store.linkBlob('acme/app', { digest: layer.digest, size: layer.size });
      const a = await put('acme/app', ociManifest({ seed: 'a', layers: [layer] }));
      const b = await put('acme/app', ociManifest({ seed: 'b', layers: [layer] }));
      await store.deleteManifest('acme/app', a.digest);
      expect((await store.unreferencedBlobs({ olderThan: future() })).map((x) => x.digest)).not.toContain(layer.digest);
      await store.deleteManifest('acme/app', b.digest);
      expect((await store.unreferencedBlobs({ olderThan: future() })).map((x) => x.digest)).toContain(layer.digest);
    });
  });
});
