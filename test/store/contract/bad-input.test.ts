// Bad input of every kind, method by method, on every backend: each call
// rejects (never throws) with a StoreError with its code, and the store is
// unchanged, as its public API reports it. The cases: ./bad-input-cases.ts.

import { isDeepStrictEqual } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StoreError, type Store, type StoreErrorCode } from 'regmeta';
import { blobDigest, digestOf, ociManifest, snapshot } from '../fixtures.js';
import { backends, storePerTest, type Opened } from './backends.js';
import { blob, cases, m, repo, tag } from './bad-input-cases.js';

/** The store every case starts from: the valid arguments of the cases are in it. */
async function seed(s: Store): Promise<void> {
  await s.putManifest(repo, m.digest, m, { actor: 'alice' });
  await s.putTag(repo, tag, { digest: m.digest }, { actor: 'alice' });
  await s.linkBlob(repo, { digest: blob, size: 10 });
  await s.linkBlob(repo, { digest: blobDigest('unreferenced'), size: 3 });
  await s.createEvent({ actor: 'GARBAGE_COLLECTOR', type: 'DELETE', object: { type: 'BLOB', id: blobDigest('gone') } });
}

describe.each(backends)('$name', (backend) => {
  describe('bad input', () => {
    let opened: Opened | undefined;
    let before: Awaited<ReturnType<typeof snapshot>>;

    // A case that wrongly changes the store would make every later case fail
    // too; each starts again from a freshly seeded store when that happens.
    async function fresh() {
      await opened?.cleanup();
      opened = await backend.open();
      await seed(opened.store);
      before = await snapshot(opened.store);
    }

    beforeAll(fresh);
    let dirty = false;
    afterEach(async () => {
      if (dirty) await fresh();
      dirty = false;
    });
    afterAll(() => opened?.cleanup());

    it('has a case for every code it claims to cover', () => {
      const codes = new Set(cases.map(([, code]) => code));
      for (const code of ['NAME_INVALID', 'TAG_INVALID', 'DIGEST_INVALID', 'MANIFEST_INVALID', 'SIZE_INVALID', 'PAGINATION_NUMBER_INVALID', 'EVENT_INVALID']) {
        expect(codes.has(code as StoreErrorCode), code).toBe(true);
      }
    });

    it.each(cases)('%s: %s, store unchanged', async (_label, code, call) => {
      const store = opened!.store;
      // A synchronous throw fails here: the contract rejects.
      const pending = call(store);
      expect(pending).toBeInstanceOf(Promise);
      const thrown = await pending.then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(thrown).toBeInstanceOf(StoreError);
      expect((thrown as StoreError).code).toBe(code);
      // A megabyte of input must not become a megabyte of message.
      expect((thrown as StoreError).message.length).toBeLessThan(1000);
      const after = await snapshot(store);
      dirty = !isDeepStrictEqual(after, before);
      expect(after).toEqual(before);
    });

    it('the store still works after all of them', async () => {
      const store = opened!.store;
      expect((await store.getTag(repo, tag)).digest).toBe(m.digest);
      const after = ociManifest({ seed: 'after' });
      await store.putManifest(repo, after.digest, after);
      expect(await snapshot(store)).not.toEqual(before);
    });
  });

  describe('the limits themselves are accepted', () => {
    const store = storePerTest(backend);

    it('a repository name of 255 characters and of many components with every separator', async () => {
      const long = `${'a'.repeat(127)}/${'b'.repeat(127)}`;
      expect(long).toHaveLength(255);
      for (const name of [long, 'a.b_c__d--e-f/g0/h1', '0', 'a/b/c/d/e']) {
        await store.putManifest(name, m.digest, m);
        expect((await store.statManifest(name, m.digest)).repo).toBe(name);
      }
    });

    it('a tag of 128 characters, and tags starting with a digit, an uppercase letter or _', async () => {
      await store.putManifest(repo, m.digest, m);
      const tags = ['a'.repeat(128), '0', 'V1.2-rc_3', '_private', 'x..--__'];
      for (const name of tags) await store.putTag(repo, name, { digest: m.digest });
      expect(await store.allTags(repo)).toEqual([...tags].sort());
    });

    it('sha256 and sha512 blob digests', async () => {
      for (const digest of [digestOf('x'), digestOf('x', 'sha512')]) {
        await store.linkBlob(repo, { digest, size: 1 });
        expect((await store.statBlob(repo, digest)).digest).toBe(digest);
      }
    });
  });
});
