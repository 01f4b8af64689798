// putManifest({ requireReferences }): the registry's presence check, done in
// the same transaction as the write.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MetadataStore } from 'regmeta';
import { absentManifest, blobDesc, caught, dump, ociIndex, ociManifest, tempStore } from './fixtures.js';

const caughtCode = (fn: () => unknown) => {
  const error = caught(fn);
  return { code: error.code, detail: error.detail };
};

let store: MetadataStore;
let file: string;
let cleanup: () => void;

beforeEach(() => {
  ({ store, file, cleanup } = tempStore());
});
afterEach(() => cleanup());

const repo = 'acme/app';

function linkAll(name: string, image = ociManifest()) {
  const json = JSON.parse(image.payload.toString()) as { config: { digest: string; size: number }; layers: { digest: string; size: number }[] };
  for (const d of [json.config, ...json.layers]) store.linkBlob(name, { digest: d.digest, size: d.size });
  return image;
}

describe('putManifest with requireReferences', () => {
  it('stores and tags a manifest whose blobs are all linked in the repository', () => {
    const image = linkAll(repo);
    store.putManifest(repo, image.digest, image, {}, { tag: 'v1', requireReferences: true });
    expect(store.getTag(repo, 'v1').digest).toBe(image.digest);
  });

  it('refuses a manifest with an unlinked layer as MANIFEST_BLOB_UNKNOWN naming it, and changes nothing', () => {
    const missing = blobDesc('never-pushed');
    const image = ociManifest({ layers: [missing] });
    store.linkBlob(repo, { digest: JSON.parse(image.payload.toString()).config.digest, size: 500 });
    const before = dump(file);
    const error = caughtCode(() => store.putManifest(repo, image.digest, image, {}, { tag: 'v1', requireReferences: true }));
    expect(error).toEqual({ code: 'MANIFEST_BLOB_UNKNOWN', detail: { digest: missing.digest } });
    expect(dump(file)).toEqual(before);
  });

  it('does not count a blob linked only in another repository', () => {
    const image = linkAll('other/repo');
    expect(caughtCode(() => store.putManifest(repo, image.digest, image, {}, { requireReferences: true })).code).toBe(
      'MANIFEST_BLOB_UNKNOWN',
    );
    expect(store.catalog()).toEqual(['other/repo']);
  });

  it('refuses an index whose child manifest is not in the repository', () => {
    const child = linkAll(repo);
    store.putManifest(repo, child.digest, child);
    const absent = absentManifest('child');
    const index = ociIndex([child.descriptor, absent]);
    const error = caughtCode(() => store.putManifest(repo, index.digest, index, {}, { requireReferences: true }));
    expect(error).toEqual({ code: 'MANIFEST_BLOB_UNKNOWN', detail: { digest: absent.digest } });
    const complete = ociIndex([child.descriptor]);
    store.putManifest(repo, complete.digest, complete, {}, { requireReferences: true });
    expect(store.statManifest(repo, complete.digest).mediaType).toBe(complete.mediaType);
  });

  it('allows a missing subject', () => {
    const referrer = linkAll(repo, ociManifest({ seed: 'sbom', artifactType: 'application/spdx+json', subject: absentManifest('subject') }));
    store.putManifest(repo, referrer.digest, referrer, {}, { requireReferences: true });
    expect(store.referrers(repo, absentManifest('subject').digest).map((d) => d.digest)).toEqual([referrer.digest]);
  });

  it('without the option records references whose targets are absent', () => {
    const image = ociManifest({ layers: [blobDesc('nowhere')] });
    store.putManifest(repo, image.digest, image);
    expect(store.statManifest(repo, image.digest).digest).toBe(image.digest);
  });
});
