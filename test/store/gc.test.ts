// The garbage collector's listings (untaggedManifests, unreferencedBlobs) and
// deletes (collectManifest, collectBlob), and what it and a registry's blob
// pushes rely on: the sweep's re-checks inside each delete, file removal only
// after the row is gone, a push's file placed under the write lock, and
// mounts checked and linked at once.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type MetadataStore } from 'regmeta';
import { absentManifest, blobDesc, blobDigest, caught, dump, ociIndex, ociManifest, tempStore, type Built } from './fixtures.js';

let store: MetadataStore;
let file: string;
let cleanup: () => void;

beforeEach(() => {
  ({ store, file, cleanup } = tempStore());
});
afterEach(() => cleanup());

const repo = 'acme/app';
const GC = { actor: 'GARBAGE_COLLECTOR' };
const soon = () => new Date(Date.now() + 1000);
const future = () => new Date(Date.now() + 60_000);

function put(name: string, m: Built): Built {
  store.putManifest(name, m.digest, m);
  return m;
}

function tickPast(t: number) {
  while (Date.now() <= t) {
    // Spin until the clock moves.
  }
}

const caughtCode = (fn: () => unknown) => {
  const error = caught(fn);
  return { code: error.code, detail: error.detail };
};

describe('collectBlob', () => {
  it('removes the file only after the row is gone, as another connection sees it', () => {
    const digest = blobDigest('old');
    store.linkBlob(repo, { digest, size: 3 });
    const other = openStore(file);
    let seenByOther: unknown = 'not called';
    try {
      store.collectBlob(digest, GC, {
        olderThan: soon(),
        removeFile: () => {
          seenByOther = caught(() => other.statBlob(repo, digest)).code;
        },
      });
    } finally {
      other.close();
    }
    expect(seenByOther).toBe('BLOB_UNKNOWN');
  });

  it('refuses, with olderThan, a blob linked within the grace period, and calls no removeFile', () => {
    const digest = blobDigest('fresh');
    store.linkBlob(repo, { digest, size: 3 });
    const before = dump(file);
    let called = false;
    const error = caught(() =>
      store.collectBlob(digest, GC, { olderThan: new Date(Date.now() - 60_000), removeFile: () => (called = true) }),
    );
    expect(error.code).toBe('BLOB_REFERENCED');
    expect(called).toBe(false);
    expect(dump(file)).toEqual(before);
  });

  it('passes what removeFile throws to the caller as is, with the row already deleted', () => {
    const digest = blobDigest('stuck');
    store.linkBlob(repo, { digest, size: 3 });
    const failure = new Error('EACCES');
    expect(() =>
      store.collectBlob(digest, GC, {
        olderThan: soon(),
        removeFile: () => {
          throw failure;
        },
      }),
    ).toThrow(failure);
    expect(store.unreferencedBlobs({ olderThan: soon() })).toEqual([]);
  });
});

describe('linkBlob with place', () => {
  it('runs place inside the transaction, before the link is visible', () => {
    const digest = blobDigest('pushed');
    const other = openStore(file);
    let visibleDuringPlace: string | undefined;
    try {
      store.linkBlob(repo, { digest, size: 5 }, {}, { place: () => (visibleDuringPlace = caught(() => other.statBlob(repo, digest)).code) });
      expect(other.statBlob(repo, digest).size).toBe(5);
    } finally {
      other.close();
    }
    // The repository itself is created in the same transaction, so the other
    // connection did not see it yet either.
    expect(visibleDuringPlace).toBe('NAME_UNKNOWN');
  });

  it('links nothing when place throws, and the caller gets its error', () => {
    store.linkBlob(repo, { digest: blobDigest('other'), size: 1 });
    const before = dump(file);
    const failure = new Error('ENOSPC');
    expect(() =>
      store.linkBlob(repo, { digest: blobDigest('x'), size: 5 }, {}, {
        place: () => {
          throw failure;
        },
      }),
    ).toThrow(failure);
    expect(dump(file)).toEqual(before);
  });
});

describe('mountBlob', () => {
  it('links into the target a blob the source has, with its recorded size', () => {
    const digest = blobDigest('base-layer');
    store.linkBlob('library/base', { digest, size: 42 });
    expect(store.mountBlob(repo, digest, 'library/base').size).toBe(42);
    expect(store.statBlob(repo, digest).size).toBe(42);
  });

  it('refuses a blob the source does not have, even when another repository has it, and changes nothing', () => {
    const digest = blobDigest('private');
    store.linkBlob('secret/repo', { digest, size: 7 });
    store.linkBlob('library/base', { digest: blobDigest('public'), size: 1 });
    const before = dump(file);
    expect(caught(() => store.mountBlob(repo, digest, 'library/base')).code).toBe('BLOB_UNKNOWN');
    expect(caught(() => store.mountBlob(repo, digest, 'no/such-repo')).code).toBe('BLOB_UNKNOWN');
    expect(dump(file)).toEqual(before);
  });
});

describe('collectManifest', () => {
  it('refuses a referrer whose subject arrived after the listing', () => {
    const subject = ociManifest({ seed: 'subject' });
    const referrer = ociManifest({ seed: 'sig', artifactType: 'application/vnd.example.sig', subject: subject.descriptor });
    store.putManifest(repo, referrer.digest, referrer);
    const listed = store.untaggedManifests({ olderThan: soon() }).map((m) => m.digest);
    expect(listed).toEqual([referrer.digest]);
    store.putManifest(repo, subject.digest, subject);
    store.putTag(repo, 'v1', { digest: subject.digest });
    expect(caught(() => store.collectManifest(repo, referrer.digest, GC, { olderThan: soon() })).code).toBe(
      'MANIFEST_REFERENCED',
    );
    expect(store.referrers(repo, subject.digest).map((d) => d.digest)).toEqual([referrer.digest]);
  });

  it('refuses a manifest younger than olderThan', () => {
    const image = ociManifest({ seed: 'young', subject: absentManifest('s') });
    store.putManifest(repo, image.digest, image);
    expect(
      caught(() => store.collectManifest(repo, image.digest, GC, { olderThan: new Date(Date.now() - 60_000) })).code,
    ).toBe('MANIFEST_REFERENCED');
  });
});

describe('the grace period of a manifest pushed again', () => {
  it('counts from the last push: a re-pushed manifest is not listed as garbage, and keeps its createdAt', () => {
    const image = ociManifest({ seed: 'repushed' });
    store.putManifest(repo, image.digest, image);
    const created = store.statManifest(repo, image.digest).createdAt;
    const cutoff = Date.now();
    while (Date.now() <= cutoff) {
      // Until the clock has moved past the cutoff: the re-push is after it.
    }
    store.putManifest(repo, image.digest, image);
    const olderThan = new Date(cutoff + 1);
    expect(store.untaggedManifests({ olderThan })).toEqual([]);
    expect(caught(() => store.collectManifest(repo, image.digest, GC, { olderThan })).code).toBe(
      'MANIFEST_REFERENCED',
    );
    expect(store.statManifest(repo, image.digest).createdAt).toEqual(created);
  });
});

describe('whileBlobUnknown', () => {
  it('runs its function only while no blob row names the digest', () => {
    const known = blobDigest('known');
    store.linkBlob(repo, { digest: known, size: 1 });
    const ran: string[] = [];
    expect(store.whileBlobUnknown(known, () => ran.push('known'))).toBe(false);
    expect(store.whileBlobUnknown(blobDigest('orphan'), () => ran.push('orphan'))).toBe(true);
    expect(ran).toEqual(['orphan']);
    expect(caught(() => store.whileBlobUnknown('sha256:nope', () => ran.push('bad'))).code).toBe('DIGEST_INVALID');
  });
});

describe('untaggedManifests', () => {
  it('lists manifests that no tag, index or present subject keeps alive, older than the grace', () => {
    const tagged = ociManifest({ seed: 'tagged' });
    const loose = ociManifest({ seed: 'loose' });
    const child = ociManifest({ seed: 'child' });
    const parent = ociIndex([child.descriptor]);
    const subject = ociManifest({ seed: 'subject' });
    const sig = ociManifest({ seed: 'sig', subject: subject.descriptor, artifactType: 'x/sig' });
    const orphanSig = ociManifest({ seed: 'orphan', subject: absentManifest('gone'), artifactType: 'x/sig' });
    for (const m of [tagged, loose, child, parent, subject, sig, orphanSig]) put('acme/app', m);
    store.putTag('acme/app', 'latest', { digest: tagged.digest });
    store.putTag('acme/app', 'idx', { digest: parent.digest });
    store.putTag('acme/app', 'subj', { digest: subject.digest });

    const future = new Date(Date.now() + 60_000);
    const found = store.untaggedManifests({ olderThan: future });
    expect(found.map((u) => u.digest).sort()).toEqual([loose.digest, orphanSig.digest].sort());
    for (const u of found) {
      expect(u.repository).toBe('acme/app');
      expect(u.createdAt).toBeInstanceOf(Date);
    }
  });

  it('keeps manifests newer than olderThan out (the grace period)', () => {
    put('acme/app', ociManifest());
    const past = new Date(Date.now() - 60_000);
    expect(store.untaggedManifests({ olderThan: past })).toEqual([]);
  });

  it('a manifest becomes untagged when its last tag is deleted', () => {
    const m = ociManifest();
    put('acme/app', m);
    store.putTag('acme/app', 'latest', { digest: m.digest });
    const future = new Date(Date.now() + 60_000);
    expect(store.untaggedManifests({ olderThan: future })).toEqual([]);
    store.deleteTag('acme/app', 'latest');
    expect(store.untaggedManifests({ olderThan: future }).map((u) => u.digest)).toEqual([m.digest]);
  });

  it('refuses an olderThan that is not a valid Date', () => {
    expect(caught(() => store.untaggedManifests({ olderThan: new Date(NaN) })).code).toBe('ARGUMENT_INVALID');
  });
});

describe('unreferencedBlobs', () => {
  it('lists blobs no manifest references, older than the grace, in digest order', () => {
    const layer = blobDesc('layer');
    const loose = [blobDigest('x'), blobDigest('y'), blobDigest('z')];
    for (const digest of loose) store.linkBlob('acme/app', { digest, size: 5 });
    store.linkBlob('acme/app', { digest: layer.digest, size: layer.size });
    put('acme/app', ociManifest({ layers: [layer] }));
    const found = store.unreferencedBlobs({ olderThan: future() });
    expect(found.map((b) => b.digest)).toEqual([...loose].sort());
    for (const b of found) expect(b).toEqual({ digest: b.digest, size: 5, createdAt: expect.any(Date) });
  });

  it('leaves out blobs newer than olderThan (the grace period)', () => {
    store.linkBlob('acme/app', { digest: blobDigest('x'), size: 5 });
    expect(store.unreferencedBlobs({ olderThan: new Date(Date.now() - 60_000) })).toEqual([]);
  });

  it('a fresh link restarts the grace period of an old blob', () => {
    const digest = blobDigest('x');
    store.linkBlob('acme/app', { digest, size: 5 });
    tickPast(store.statBlob('acme/app', digest).createdAt.getTime());
    const cut = new Date();
    expect(store.unreferencedBlobs({ olderThan: cut }).map((b) => b.digest)).toEqual([digest]);
    tickPast(cut.getTime());
    store.linkBlob('acme/other', { digest, size: 5 });
    expect(store.unreferencedBlobs({ olderThan: cut })).toEqual([]);
  });

  it('a blob becomes unreferenced when its last manifest is deleted', () => {
    const layer = blobDesc('layer');
    store.linkBlob('acme/app', { digest: layer.digest, size: layer.size });
    const a = put('acme/app', ociManifest({ seed: 'a', layers: [layer] }));
    const b = put('acme/app', ociManifest({ seed: 'b', layers: [layer] }));
    store.deleteManifest('acme/app', a.digest);
    expect(store.unreferencedBlobs({ olderThan: future() }).map((x) => x.digest)).not.toContain(layer.digest);
    store.deleteManifest('acme/app', b.digest);
    expect(store.unreferencedBlobs({ olderThan: future() }).map((x) => x.digest)).toContain(layer.digest);
  });
});

describe('collectManifest after a listing', () => {
  it('deletes an untagged manifest', () => {
    const image = ociManifest();
    store.putManifest(repo, image.digest, image);
    store.collectManifest(repo, image.digest, { actor: 'GARBAGE_COLLECTOR' }, { olderThan: new Date(Date.now() + 1000) });
    expect(store.untaggedManifests()).toEqual([]);
    expect(caught(() => store.statManifest(repo, image.digest)).code).toBe('MANIFEST_UNKNOWN');
  });

  it('refuses a manifest that gained a tag, keeping the manifest and the tag', () => {
    const image = ociManifest();
    store.putManifest(repo, image.digest, image);
    const listed = store.untaggedManifests({ olderThan: new Date(Date.now() + 1000) }).map((m) => m.digest);
    store.putTag(repo, 'late', { digest: image.digest });
    const before = dump(file);
    expect(caughtCode(() => store.collectManifest(repo, listed[0], {}, { olderThan: new Date(Date.now() + 1000) }))).toEqual({
      code: 'MANIFEST_REFERENCED',
      detail: { tags: ['late'] },
    });
    expect(dump(file)).toEqual(before);
    expect(store.getTag(repo, 'late').digest).toBe(image.digest);
  });
});
