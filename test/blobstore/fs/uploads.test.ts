// Upload sessions on the directory store, as files under uploads/: init
// leaves other processes' files, a failed body and a crash mid-chunk are cut
// back off the file, a process that did not feed a session hashes its file
// again once, and sweeps remove stray files but never a session's. What
// every backend does is in test/blobstore/contract/.

import { appendFileSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { UploadSessions } from 'regmeta';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirectoryBlobStore } from '../../../src/blobstore/fs/directory.js';
import { sessionTables } from '../contract/backends.js';
import { sha256, streamOf } from '../helpers.js';
import { tempStore, type TestStore } from './helpers.js';

describe.each(sessionTables)('sessions $name', (table) => {
  let t: TestStore;
  let sessions: UploadSessions;
  let closeTable: () => Promise<void>;
  beforeEach(() => {
    ({ sessions, close: closeTable } = table.open());
    t = tempStore({ maxBlobSize: 1000, maxUploadsPerAddress: 2, sessions });
  });
  afterEach(async () => {
    t.cleanup();
    await closeTable();
  });

  const uploads = () => readdirSync(path.join(t.dir, 'uploads'));

  it("init creates blobs/ and uploads/ and leaves what is in uploads/: another process's sessions", async () => {
    const upload = await t.blobs.startUpload('acme/app', 'a');
    writeFileSync(path.join(t.dir, 'uploads', 'left-over'), 'x');
    t.blobs.init();
    expect(uploads().sort()).toEqual(['left-over', upload.id].sort());
    expect(statSync(path.join(t.dir, 'blobs')).isDirectory()).toBe(true);
  });

  it('places the finished file at blobs/<alg>/<2 hex>/<hex>, at once, and leaves nothing under uploads/', async () => {
    const upload = await t.blobs.startUpload('acme/app', 'a');
    await t.blobs.append(upload, streamOf(['hello world']));
    const staged = await t.blobs.finish(upload, sha256('hello world'));
    expect(staged.place()).toBeUndefined();
    await staged.discard();
    expect(readFileSync(t.file(sha256('hello world')), 'utf8')).toBe('hello world');
    expect(uploads()).toEqual([]);
  });

  it('cuts a body that fails half way back off the file', async () => {
    const upload = await t.blobs.startUpload('acme/app', 'a');
    await t.blobs.append(upload, streamOf(['kept ']));
    await expect(t.blobs.append(upload, streamOf(['lost bytes'], new Error('reset')))).rejects.toThrow();
    expect(statSync(path.join(t.dir, 'uploads', upload.id)).size).toBe(5);
  });

  it('hashes the committed bytes of a session another process fed again, once, then goes on', async () => {
    const other = new DirectoryBlobStore(t.dir, { maxBlobSize: 1000, sessions });
    const upload = await t.blobs.startUpload('acme/app', 'a');
    await t.blobs.append(upload, streamOf(['first ']));
    const there = await other.upload('acme/app', upload.id);
    await other.append(there, streamOf(['second ']));
    await other.append(there, streamOf(['third']));
    expect(other.rehashedUploads).toBe(1);
    const back = await t.blobs.upload('acme/app', upload.id);
    (await t.blobs.finish(back, sha256('first second third'))).place();
    expect(t.blobs.rehashedUploads).toBe(1);
    expect(readFileSync(t.file(sha256('first second third')), 'utf8')).toBe('first second third');
  });

  it('cuts a file longer than its committed size (a crash mid-chunk) back before the next chunk', async () => {
    const upload = await t.blobs.startUpload('acme/app', 'a');
    await t.blobs.append(upload, streamOf(['kept']));
    appendFileSync(path.join(t.dir, 'uploads', upload.id), 'half a chunk');
    const other = new DirectoryBlobStore(t.dir, { maxBlobSize: 1000, sessions });
    const there = await other.upload('acme/app', upload.id);
    await other.append(there, streamOf([' and more']), (u) => (expect(u.size).toBe(4), 9));
    expect(readFileSync(path.join(t.dir, 'uploads', upload.id), 'utf8')).toBe('kept and more');
    (await other.finish(there, sha256('kept and more'))).place();
  });

  it('appends nothing while another writer holds the session past a lease', async () => {
    const upload = await t.blobs.startUpload('acme/app', 'a');
    await sessions.claim('acme/app', upload.id, 'a-slow-writer', 60_000);
    const other = new DirectoryBlobStore(t.dir, { sessions, claimLease: 100 });
    await expect(other.append(await other.upload('acme/app', upload.id), streamOf(['x']))).rejects.toMatchObject({ code: 'TOOMANYREQUESTS' });
    expect(statSync(path.join(t.dir, 'uploads', upload.id)).size).toBe(0);
  });

  it("sweeps remove old files that no session names, and never a session's file however old", async () => {
    const upload = await t.blobs.startUpload('acme/app', 'a');
    const stray = path.join(t.dir, 'uploads', '0b5e1e7e-0000-4000-8000-000000000000');
    writeFileSync(stray, 'left by a crash');
    const young = path.join(t.dir, 'uploads', 'young');
    writeFileSync(young, 'just written');
    const old = new Date(Date.now() - 3_600_000);
    for (const file of [stray, path.join(t.dir, 'uploads', upload.id)]) utimesSync(file, old, old);
    const { strays } = await t.blobs.sweepUploads({ strayBefore: new Date(Date.now() - 60_000) });
    expect(strays).toEqual([stray]);
    expect(uploads().sort()).toEqual([upload.id, 'young'].sort());
  });
});
