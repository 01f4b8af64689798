// The blob backends the contract suite runs against: every test of
// test/blobstore/contract/ runs once per entry of `backends` (and, for
// upload sessions, once per entry of `sessionTables`), through the BlobStore
// contract only, with the backend's name in the test's name.

import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { asyncStore, openStore, type Store, type UploadSessions } from 'regmeta';
import { afterAll } from 'vitest';
import { Bucket } from '../../../src/blobstore/s3/client.js';
import { Layout } from '../../../src/blobstore/s3/layout.js';
import { S3BlobStore } from '../../../src/blobstore/s3/store.js';
import { startS3Server, type S3Server } from '../s3/server.js';
import { DirectoryBlobStore } from '../../../src/blobstore/fs/directory.js';
import { MemorySessionTable } from '../../../src/blobstore/sessions.js';
import type { BlobStore, BlobStoreOptions, S3Options } from '../../../src/blobstore/types.js';

/** A fresh, empty storage of one backend, that several blob stores may share (as replicas share it). */
export interface Storage {
  /** A blob store on this storage, not yet init()ed; `cleanup` closes it. */
  open(options?: BlobStoreOptions): BlobStore;
  /** The sessions whose bytes the storage still holds, by id: what a finished or expired session must not leave. */
  uploadsKept(): Promise<string[]>;
  /** Closes every blob store opened and removes the storage. */
  cleanup(): Promise<void>;
}

/** One blob backend, as the contract suite drives it. */
export interface BlobBackend {
  /** Appears in every test's name. */
  name: string;
  create(): Promise<Storage>;
  /** A metadata store whose lock this backend's lock-held operations (place, delete, remove) run under. */
  metadata(): Promise<Store>;
}

const fs: BlobBackend = {
  name: 'fs',
  async create() {
    const dir = mkdtempSync(path.join(tmpdir(), 'regmeta-blobs-'));
    const opened: BlobStore[] = [];
    return {
      open(options) {
        const blobs = new DirectoryBlobStore(dir, options);
        opened.push(blobs);
        return blobs;
      },
      async uploadsKept() {
        try {
          return readdirSync(path.join(dir, 'uploads'));
        } catch {
          return [];
        }
      },
      async cleanup() {
        for (const blobs of opened) blobs.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  async metadata() {
    return asyncStore(openStore(':memory:'));
  },
};

// One S3 server per test file (vitest runs each file in its own worker),
// started on first use; a prefix per storage.
let s3server: Promise<S3Server> | undefined;
afterAll(async () => {
  const started = s3server;
  s3server = undefined;
  await (await started)?.cleanup();
});

const s3: BlobBackend = {
  name: 's3',
  async create() {
    const server = await (s3server ??= startS3Server());
    const options: S3Options = { ...server.options, prefix: `contract/${randomUUID()}` };
    const layout = new Layout(options.prefix);
    const bucket = new Bucket(options);
    const opened: S3BlobStore[] = [];
    return {
      open(blobOptions) {
        const blobs = new S3BlobStore(options, blobOptions);
        opened.push(blobs);
        return blobs;
      },
      async uploadsKept() {
        const ids = new Set<string>();
        for await (const object of bucket.list(layout.uploads)) ids.add(layout.sessionOf(object.key) ?? object.key);
        return [...ids];
      },
      async cleanup() {
        for (const blobs of opened) await blobs.destroy();
        await bucket.destroy();
      },
    };
  },
  // Its place, delete and remove are promises: the store holds the digest's lock across them.
  async metadata() {
    return asyncStore(openStore(':memory:'));
  },
};

export const backends: BlobBackend[] = [fs, s3];

/** A session table, and what closes it. */
export interface SessionTable {
  sessions: UploadSessions;
  close(): Promise<void>;
}

/** Where a blob store may keep its sessions: in memory, or in a metadata store (a SQLite one here). */
export const sessionTables: { name: string; open(): SessionTable }[] = [
  { name: 'in memory', open: () => ({ sessions: new MemorySessionTable(), close: async () => {} }) },
  {
    name: 'in a SQLite store',
    open: () => {
      const store = asyncStore(openStore(':memory:'));
      return { sessions: store.uploads, close: () => store.close() };
    },
  },
];
