// A directory blob store on a fresh temporary data directory.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DirectoryBlobStore } from '../../../src/blobstore/fs/directory.js';
import type { BlobStoreOptions } from '../../../src/blobstore/types.js';

export interface TestStore {
  dir: string;
  blobs: DirectoryBlobStore;
  /** Where blob `digest` lives under `dir`, spelled out independently of the code under test. */
  file(digest: string): string;
  cleanup(): void;
}

/** A store on a new temporary directory; `init` prepares it for uploads. */
export function tempStore(options: BlobStoreOptions = {}, init = true): TestStore {
  const dir = mkdtempSync(path.join(tmpdir(), 'regmeta-blobstore-'));
  const blobs = new DirectoryBlobStore(dir, options);
  if (init) blobs.init();
  return {
    dir,
    blobs,
    file(digest) {
      const [algorithm, hex] = digest.split(':');
      return path.join(dir, 'blobs', algorithm, hex.slice(0, 2), hex);
    },
    cleanup() {
      blobs.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
