// A blob store on a fresh temporary data directory, and streams that fail on cue.

import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { DirectoryBlobStore, type BlobStoreOptions } from '../../../src/blobstore/index.js';

export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

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

/** A stream of `chunks`, then (when `failure` is given) that error instead of an end. */
export function streamOf(chunks: (string | Buffer)[], failure?: Error): Readable {
  let i = 0;
  return new Readable({
    read() {
      if (i < chunks.length) this.push(Buffer.from(chunks[i++]));
      else if (failure) this.destroy(failure);
      else this.push(null);
    },
  });
}
