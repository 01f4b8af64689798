// The SQLite digest lock (blob_lock) as only SQLite has it: a holder process
// killed mid-action, a lease taken over while its action ran, the
// synchronous face meeting an asynchronous holder, and the queue of one
// store's own calls on a digest. Real files, a real child process; steps
// ordered by latches and the child's messages, never by sleeps.

import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { asyncStore, openStore, type MetadataStore, type Store } from 'regmeta';
import { blobDigest, caught, rejection, tempDir } from '../fixtures.js';

const WORKERS = join(dirname(fileURLToPath(import.meta.url)), 'workers');
const ROOT = join(WORKERS, '..', '..', '..');
const repo = 'acme/app';

let dir: string;
let remove: () => void;
let file: string;
const opened: MetadataStore[] = [];
beforeEach(() => {
  ({ dir, remove } = tempDir());
  file = join(dir, 'metadata.db');
});
afterEach(() => {
  for (const store of opened.splice(0)) store.close();
  remove();
});

function open(options?: { busyTimeout?: number }): MetadataStore {
  const store = openStore(file, options);
  opened.push(store);
  return store;
}

function latch(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** An action that opens `started` and then awaits `gate`. */
function gated(gate: Promise<void>): { action: () => Promise<void>; started: Promise<void> } {
  const started = latch();
  return {
    action: async () => {
      started.open();
      await gate;
    },
    started: started.promise,
  };
}

function lockRows(): { digest: string; owner: string; holder: string | null }[] {
  const db = new Database(file);
  try {
    return db.prepare('SELECT digest, owner, holder FROM blob_lock ORDER BY digest').all() as { digest: string; owner: string; holder: string | null }[];
  } finally {
    db.close();
  }
}

/** A lock-holder worker (workers/lock-holder.ts) on `digest`, and its messages. */
function holder(digest: string) {
  const child = spawn(process.execPath, ['--import', 'tsx/esm', join(WORKERS, 'lock-holder.ts'), JSON.stringify({ file, digest })], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const messages = new Map<string, () => void>();
  const said = (key: string) =>
    new Promise<void>((resolve, reject) => {
      messages.set(key, resolve);
      child.on('exit', () => reject(new Error(`the holder exited before it said ${key}`)));
    });
  const holding = said('holding');
  const linked = said('linked');
  linked.catch(() => {});
  createInterface({ input: child.stdout! }).on('line', (line) => {
    for (const key of Object.keys(JSON.parse(line) as object)) messages.get(key)?.();
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  return { child, holding, linked, exited, release: () => child.stdin!.write('release\n') };
}

describe('a holder in another process', () => {
  it('is waited for by the asynchronous face, and refused by the synchronous one past its busy timeout', async () => {
    open().close();
    const digest = blobDigest('elsewhere');
    const other = holder(digest);
    try {
      await other.holding;
      const sync = open({ busyTimeout: 0 });
      expect(caught(() => sync.linkBlob(repo, { digest, size: 5 })).code).toBe('DATABASE_BUSY');
      const store = asyncStore(sync);
      let ran = false;
      let settled = false;
      const unknown = store.whileBlobUnknown(digest, () => void (ran = true)).finally(() => (settled = true));
      for (let i = 0; i < 5; i++) await store.allBlobs();
      expect(settled).toBe(false);
      other.release();
      await other.linked;
      expect(await unknown).toBe(false);
      expect(ran).toBe(false);
      expect((await store.statBlob(repo, digest)).size).toBe(5);
      expect(lockRows()).toEqual([]);
    } finally {
      other.child.kill('SIGKILL');
    }
  });
});

describe('a holder process killed mid-action', () => {
  it('loses the lock at once: another process takes it without waiting out the lease, on either face', async () => {
    open().close();
    const [first, second] = [blobDigest('killed-1'), blobDigest('killed-2')];
    const holders = [first, second].map(holder);
    try {
      await Promise.all(holders.map((h) => h.holding));
      expect(lockRows().map((row) => row.digest)).toEqual([first, second].sort());
      // A busy timeout of 0: the synchronous face does not wait at all.
      const sync = open({ busyTimeout: 0 });
      let ran = false;
      expect(caught(() => sync.whileBlobUnknown(first, () => void (ran = true))).code).toBe('DATABASE_BUSY');
      expect(ran).toBe(false);
      for (const h of holders) h.child.kill('SIGKILL');
      await Promise.all(holders.map((h) => h.exited));
      expect(sync.whileBlobUnknown(first, () => void (ran = true))).toBe(true);
      expect(ran).toBe(true);
      const store = asyncStore(sync);
      await store.linkBlob(repo, { digest: second, size: 5 }, {}, { place: async () => {} });
      expect((await store.statBlob(repo, second)).size).toBe(5);
      expect(lockRows()).toEqual([]);
    } finally {
      for (const h of holders) h.child.kill('SIGKILL');
    }
  });
});

describe('a lease taken over while its action ran', () => {
  it('fails the call with LOCK_LOST, writes nothing, and leaves the new holder its lock', async () => {
    const store = asyncStore(open());
    const digest = blobDigest('lost');
    const gate = latch();
    const place = gated(gate.promise);
    const linking = store.linkBlob(repo, { digest, size: 5 }, {}, { place: place.action });
    await place.started;
    // What another process does once this one's lease ran out: takes the row over.
    const thief = randomUUID();
    const db = new Database(file);
    db.prepare('UPDATE blob_lock SET owner = ? WHERE digest = ?').run(thief, digest);
    db.close();
    gate.open();
    const error = await rejection(linking);
    expect(error.code).toBe('LOCK_LOST');
    expect(error.detail).toEqual({ digest });
    expect((await rejection(store.statBlob(repo, digest))).code).toBe('NAME_UNKNOWN');
    expect(lockRows().map((row) => row.owner)).toEqual([thief]);
  });
});

describe('the synchronous face and an asynchronous holder', () => {
  it('refuses at once with DATABASE_BUSY a digest this process holds across awaits, and goes on once it is let go', async () => {
    const sync = open();
    const store = asyncStore(sync);
    const other = open();
    const digest = blobDigest('mine');
    const gate = latch();
    const remove = gated(gate.promise);
    const unknown = store.whileBlobUnknown(digest, remove.action);
    await remove.started;
    for (const face of [sync, other]) {
      expect(caught(() => face.linkBlob(repo, { digest, size: 5 })).code).toBe('DATABASE_BUSY');
      expect(caught(() => face.whileBlobUnknown(digest, () => {})).code).toBe('DATABASE_BUSY');
    }
    // Another digest, and this one's known blobs, are not held up.
    other.linkBlob(repo, { digest: blobDigest('free'), size: 1 });
    gate.open();
    expect(await unknown).toBe(true);
    other.linkBlob(repo, { digest, size: 5 });
    expect(sync.statBlob(repo, digest).size).toBe(5);
    expect(lockRows()).toEqual([]);
  });
});

describe("one store's own calls on a digest", () => {
  it('queue behind the one that holds it, in call order', async () => {
    const store: Store = asyncStore(open());
    const digest = blobDigest('queued');
    const gate = latch();
    const started = latch();
    const order: string[] = [];
    const first = store.whileBlobUnknown(digest, async () => {
      started.open();
      await gate.promise;
      order.push('first removed');
    });
    await started.promise;
    const linking = store.linkBlob(repo, { digest, size: 5 }, {}, { place: async () => void order.push('placed') });
    const last = store.whileBlobUnknown(digest, () => void order.push('last removed'));
    gate.open();
    expect(await Promise.all([first, linking, last])).toEqual([true, undefined, false]);
    expect(order).toEqual(['first removed', 'placed']);
    expect(lockRows()).toEqual([]);
  });
});
