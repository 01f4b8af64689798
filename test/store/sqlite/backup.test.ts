// The SQLite store's backup: a copy of the file that is a complete store,
// through MetadataStore and its asynchronous face alike; an existing target
// refused unless replaced; bad arguments and a closed store as typed errors.

import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { asyncStore, openStore } from 'regmeta';
import { caught, ociManifest, putBuilt, rejection, tempStore } from '../fixtures.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function populated() {
  const made = tempStore();
  cleanups.push(made.cleanup);
  const image = putBuilt(made.store, 'acme/app', ociManifest({ seed: 'backup' }));
  made.store.putTag('acme/app', 'v1', { digest: image.digest });
  return { ...made, image };
}

describe('MetadataStore.backup', () => {
  it('writes a checked copy that opens as a store holding the same data, reporting progress in pages', async () => {
    const { store, dir, image } = populated();
    const target = join(dir, 'copy.db');
    const progress: [number, number][] = [];
    const done = await store.backup(target, { pagesPerStep: 1, onProgress: (copied, total) => progress.push([copied, total]) });
    expect(done).toMatchObject({ target });
    expect(done.pages).toBeGreaterThan(1);
    expect(done.bytes).toBeGreaterThan(0);
    expect(progress.at(-1)).toEqual([done.pages, done.pages]);
    expect(progress.length).toBeGreaterThan(1);
    const copy = openStore(target, { readOnly: true });
    try {
      expect(copy.getTag('acme/app', 'v1').digest).toBe(image.digest);
    } finally {
      copy.close();
    }
  });

  it('refuses a target that exists (BACKUP_FAILED) and leaves it as it was, unless told to replace it', async () => {
    const { store, dir } = populated();
    const target = join(dir, 'taken.db');
    writeFileSync(target, 'not mine');
    const refused = await rejection(store.backup(target));
    expect(refused.code).toBe('BACKUP_FAILED');
    expect(refused.detail).toEqual({ target });
    expect(existsSync(target)).toBe(true);
    await store.backup(target, { replace: true });
    const copy = openStore(target, { readOnly: true });
    copy.close();
  });

  it('fails with BACKUP_FAILED when the target cannot be created, ARGUMENT_INVALID for a bad step, STORE_CLOSED once closed', async () => {
    const { store, dir } = populated();
    expect((await rejection(store.backup(join(dir, 'missing', 'copy.db')))).code).toBe('BACKUP_FAILED');
    expect((await rejection(store.backup(join(dir, 'copy.db'), { pagesPerStep: 0 }))).code).toBe('ARGUMENT_INVALID');
    expect(existsSync(join(dir, 'copy.db'))).toBe(false);
    store.close();
    expect((await rejection(store.backup(join(dir, 'copy.db')))).code).toBe('STORE_CLOSED');
    expect(caught(() => store.stats()).code).toBe('STORE_CLOSED');
  });

  it('is the asynchronous face\'s backup too', async () => {
    const { store, dir } = populated();
    const done = await asyncStore(store).backup(join(dir, 'async.db'));
    expect(done.target).toBe(join(dir, 'async.db'));
  });
});
