// `regmeta gc` and `regmeta check` on data directories populated through the
// store, with real blob files.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { asyncStore, openStore } from 'regmeta';
import { afterAll, describe, expect, it } from 'vitest';
import { sweep } from '../../src/cli/commands/gc.js';
import { DEFAULT_GRACE, parseDuration } from '../../src/cli/time.js';
import { blobPath, putBlob, putImage, putIndex, sha256 } from './data.js';
import { dumpState, regmeta, tamperPayload, tempDir } from './run.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = tempDir();
  dirs.push(dir);
  const data = join(dir, 'data');
  mkdirSync(data);
  return data;
}

describe('gc', () => {
  it("expires idle upload sessions and removes stray upload files past the grace period, never a live session's file", async () => {
    const data = dataDir();
    const uploads = join(data, 'uploads');
    mkdirSync(uploads);
    const server = openStore(join(data, 'metadata.db'));
    const live = server.uploads.open('acme/app', '10.0.0.1', 0);
    const idle = server.uploads.open('acme/app', '10.0.0.1', 0);
    const stray = join(uploads, '0b5e1e7e-0000-4000-8000-000000000000');
    for (const file of [join(uploads, live.id), join(uploads, idle.id), stray]) writeFileSync(file, 'bytes');
    // Every file is old; the live session was used just now, the idle one two days ago.
    const old = new Date(Date.now() - 3 * 86_400_000);
    for (const file of [join(uploads, live.id), join(uploads, idle.id), stray]) utimesSync(file, old, old);
    const raw = new Database(join(data, 'metadata.db'));
    raw.prepare('UPDATE upload_session SET updated_at = ? WHERE id = ?').run(old.getTime(), idle.id);
    raw.close();
    try {
      const swept = await regmeta(['gc', '--grace', '1h', '--data', data, '--json']);
      expect(swept.status).toBe(0);
      expect(JSON.parse(swept.stdout)).toMatchObject({ uploadsExpired: 1, uploadFilesRemoved: 1, problems: [] });
      expect(existsSync(join(uploads, live.id))).toBe(true);
      expect(existsSync(join(uploads, idle.id))).toBe(false);
      expect(existsSync(stray)).toBe(false);
      expect(server.uploads.get('acme/app', live.id).id).toBe(live.id);
      expect(() => server.uploads.get('acme/app', idle.id)).toThrow(expect.objectContaining({ code: 'BLOB_UPLOAD_UNKNOWN' }));
    } finally {
      server.close();
    }
  });

  it('sweeps untagged manifests (an index, then its children) and unreferenced blobs past the grace period', async () => {
    const data = dataDir();
    const file = join(data, 'metadata.db');
    const store = openStore(file);
    let keep, untagged, child, index, orphan;
    try {
      keep = putImage(store, data, 'gc/x');
      store.putTag('gc/x', 'keep', keep);
      untagged = putImage(store, data, 'gc/x');
      child = putImage(store, data, 'gc/x');
      index = putIndex(store, 'gc/x', [child]);
      orphan = putBlob(store, data, 'gc/x', Buffer.from('nobody references me'), 'application/octet-stream');
    } finally {
      store.close();
    }
    const garbageManifests = [untagged.digest, index.digest, child.digest].sort();
    const garbageBlobs = [untagged.config, untagged.layer, child.config, child.layer, orphan].map((b) => b.digest).sort();

    // Everything is seconds old: a grace of an hour protects it all.
    const graced = await regmeta(['gc', '--grace', '1h', '--data', data, '--json']);
    expect(graced.status).toBe(0);
    expect(JSON.parse(graced.stdout)).toMatchObject({ manifestsDeleted: [], blobsDeleted: [] });

    const before = dumpState(file);
    const dry = await regmeta(['gc', '--dry-run', '--grace', '0', '--data', data, '--json']);
    expect(dry.status).toBe(0);
    const wouldBe = JSON.parse(dry.stdout);
    expect(wouldBe.dryRun).toBe(true);
    expect(wouldBe.manifestsDeleted.map((m: { digest: string }) => m.digest).sort()).toEqual(garbageManifests);
    expect(wouldBe.blobsDeleted.map((b: { digest: string }) => b.digest).sort()).toEqual(garbageBlobs);
    expect(dumpState(file)).toEqual(before);
    for (const digest of garbageBlobs) expect(existsSync(blobPath(data, digest))).toBe(true);

    const run = await regmeta(['gc', '--grace', '0', '--data', data, '--json']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const done = JSON.parse(run.stdout);
    expect(done.manifestsDeleted.map((m: { digest: string }) => m.digest).sort()).toEqual(garbageManifests);
    expect(done.blobsDeleted.map((b: { digest: string }) => b.digest).sort()).toEqual(garbageBlobs);
    expect(done.filesRemoved).toBe(garbageBlobs.length);
    for (const digest of garbageBlobs) expect(existsSync(blobPath(data, digest))).toBe(false);
    for (const digest of [keep.config.digest, keep.layer.digest]) expect(existsSync(blobPath(data, digest))).toBe(true);

    const after = openStore(file);
    try {
      expect(after.getTag('gc/x', 'keep').digest).toBe(keep.digest);
      expect(after.untaggedManifests()).toEqual([]);
      const events = after.getEvents({ actor: 'GARBAGE_COLLECTOR', type: 'DELETE', perPage: 100 }).events;
      expect(events.filter((e) => e.object.type === 'BLOB').map((e) => e.object.id).sort()).toEqual(garbageBlobs);
      expect(events.filter((e) => e.object.type === 'MANIFEST').map((e) => e.digest).sort()).toEqual(garbageManifests);
    } finally {
      after.close();
    }
    const check = await regmeta(['check', '--data', data]);
    expect(check.status).toBe(0);
  });
});

describe('gc with a listing gone stale', () => {
  it('removes the files of the rows it deleted and of rows gone elsewhere, and keeps a blob linked again since the listing', async () => {
    const data = dataDir();
    const file = join(data, 'metadata.db');
    // Two connections: the sweep's, and a server's that acts between the
    // sweep's listing and its deletes.
    const server = openStore(file);
    const gcStore = openStore(file);
    let relinked, taken, gone;
    try {
      relinked = putBlob(server, data, 'stale/x', Buffer.from('pushed again after the listing'), 'application/octet-stream');
      taken = putBlob(server, data, 'stale/x', Buffer.from('deleted by someone else after the listing'), 'application/octet-stream');
      gone = putBlob(server, data, 'stale/x', Buffer.from('garbage all along'), 'application/octet-stream');
      // The grace boundary strictly after every link above (times are in ms).
      const linkedBy = Date.now();
      while (Date.now() <= linkedBy) {
        // a millisecond at most
      }
      const olderThan = new Date();
      let listed: string[] = [];
      const stale = new Proxy(gcStore, {
        get(target, property) {
          if (property === 'unreferencedBlobs') {
            return (options: { olderThan?: Date }) => {
              const listing = target.unreferencedBlobs(options);
              listed = listing.map((b) => b.digest);
              // Between the listing and the deletes: a push links one blob
              // afresh, and another collector deletes a second.
              server.linkBlob('stale/x', relinked!, { actor: 'alice' });
              server.deleteBlob(taken!.digest, { actor: 'other-gc' });
              return listing;
            };
          }
          const value = Reflect.get(target, property, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      const result = await sweep(asyncStore(stale), olderThan, { data });
      expect(listed.sort()).toEqual([relinked.digest, taken.digest, gone.digest].sort());
      expect(result.blobsDeleted.map((b) => b.digest)).toEqual([gone.digest]);
      expect(result.skipped).toBe(2);
      // gone's file with its row; taken's (its row deleted by another, its
      // file left behind) as a file no row names, older than the grace.
      expect(result.filesRemoved).toBe(2);
      expect(result.problems).toEqual([]);
      expect(existsSync(blobPath(data, gone.digest))).toBe(false);
      // Linked again: row and file stay, and the registry can still serve it.
      expect(existsSync(blobPath(data, relinked.digest))).toBe(true);
      expect(server.statBlob('stale/x', relinked.digest).size).toBe(relinked.size);
      expect(existsSync(blobPath(data, taken.digest))).toBe(false);
    } finally {
      server.close();
      gcStore.close(); // sweep closed it already; twice is harmless
    }
  });
});

describe('gc beside a writer', () => {
  it('skips what the writer changes under it, and leaves a consistent database', async () => {
    const data = dataDir();
    const file = join(data, 'metadata.db');
    const store = openStore(file);
    const digests: string[] = [];
    try {
      for (let i = 0; i < 40; i++) digests.push(putImage(store, data, 'race/x').digest);
    } finally {
      store.close();
    }
    const writer = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'tag-writer.ts'), file, 'race/x', ...digests], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((resolve) => writer.once('exit', resolve));
    try {
      await new Promise<void>((resolve, reject) => {
        writer.stdout.once('data', () => resolve());
        writer.once('exit', () => reject(new Error('writer exited')));
      });
      const run = await regmeta(['gc', '--grace', '0', '--data', data, '--json']);
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      const result = JSON.parse(run.stdout);
      expect(result.manifestsDeleted.length + result.skipped).toBeGreaterThan(0);
      expect(writer.exitCode).toBe(null);
    } finally {
      writer.kill('SIGKILL');
      await exited;
    }
    const check = await regmeta(['check', '--data', data, '--json']);
    expect(JSON.parse(check.stdout).problems).toEqual([]);
    expect(check.status).toBe(0);
  });
});

describe('check', () => {
  it('lists every problem of the database and the blob files and exits 1', async () => {
    const data = dataDir();
    const file = join(data, 'metadata.db');
    const store = openStore(file);
    let one, two;
    try {
      one = putImage(store, data, 'chk/x');
      two = putImage(store, data, 'chk/x');
      store.putTag('chk/x', 'one', one);
      store.putTag('chk/x', 'two', two);
    } finally {
      store.close();
    }
    const clean = await regmeta(['check', '--data', data, '--json']);
    expect(clean.status).toBe(0);
    expect(JSON.parse(clean.stdout)).toMatchObject({ ok: true, problems: [], checked: { manifests: 2, tags: 2, blobFiles: 4 } });

    // Damage: a manifest's bytes, a blob link, a blob file's content, a blob file.
    const db = new Database(file);
    const tampered = Buffer.from(one.payload);
    tampered[tampered.length - 2] ^= 1;
    tamperPayload(db, one.digest, tampered);
    db.prepare('DELETE FROM blob_link WHERE digest = :digest').run({ digest: two.layer.digest });
    db.close();
    writeFileSync(blobPath(data, two.config.digest), Buffer.alloc(two.config.size, 'x'));
    unlinkSync(blobPath(data, one.layer.digest));

    const [json, text, noFiles] = await Promise.all([
      regmeta(['check', '--data', data, '--json']),
      regmeta(['check', '--data', data]),
      regmeta(['check', '--data', data, '--no-files', '--json']),
    ]);
    expect([json.status, text.status, noFiles.status]).toEqual([1, 1, 1]);
    const problems = JSON.parse(json.stdout).problems as { kind: string; subject: string; detail: string }[];
    expect(problems.map((p) => `${p.kind} ${p.subject}`).sort()).toEqual(
      [
        `manifest-digest chk/x@${one.digest}`,
        `blob-link chk/x@${two.digest}`,
        `blob-file ${two.config.digest}`,
        `blob-file ${one.layer.digest}`,
      ].sort(),
    );
    expect(text.stdout.trim().split('\n')).toHaveLength(4);
    expect(text.stderr).toMatch(/4 problems/);
    expect((JSON.parse(noFiles.stdout).problems as { kind: string }[]).map((p) => p.kind).sort()).toEqual(['blob-link', 'manifest-digest']);
  });
});

describe('files no row names', () => {
  const subjects = (list: { subject: string }[]) => list.map((p) => p.subject).sort();

  it('check reports one younger than the grace period as pending and exits 0; past the grace, as a problem and exits 1', async () => {
    const data = dataDir();
    const store = openStore(join(data, 'metadata.db'));
    try {
      putImage(store, data, 'pending/x');
    } finally {
      store.close();
    }
    // As a crash between placing the file and committing its row leaves it.
    const digest = sha256('a push that died');
    const file = blobPath(data, digest);
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, 'a push that died');

    const [json, text] = await Promise.all([regmeta(['check', '--data', data, '--json']), regmeta(['check', '--data', data])]);
    expect([json.status, text.status]).toEqual([0, 0]);
    const fresh = JSON.parse(json.stdout);
    expect(fresh).toMatchObject({ ok: true, problems: [], pending: [{ kind: 'blob-pending', subject: digest }] });
    expect(text.stdout).toMatch(new RegExp(`^blob-pending  ${digest}  `));
    expect(text.stderr).toMatch(/: ok, 1 pending\n$/);

    const stale = new Date(Date.now() - parseDuration(DEFAULT_GRACE, 'test', 'grace') - 3600 * 1000);
    utimesSync(file, stale, stale);
    const [json2, text2] = await Promise.all([regmeta(['check', '--data', data, '--json']), regmeta(['check', '--data', data])]);
    expect([json2.status, text2.status]).toEqual([1, 1]);
    expect(JSON.parse(json2.stdout)).toMatchObject({ ok: false, problems: [{ kind: 'blob-orphan', subject: digest }], pending: [] });
    expect(text2.stderr).toMatch(/: 1 problem\n$/);
  });

  it('check lists them, as problems only past --grace; gc removes those past the grace, and never a file whose blob is known', async () => {
    const data = dataDir();
    const store = openStore(join(data, 'metadata.db'));
    let kept;
    try {
      // Linked just now: within the grace period, so its row stays, and with
      // it its file, however old the file looks.
      kept = putBlob(store, data, 'orphans/x', Buffer.from('a blob the store knows'), 'application/octet-stream');
    } finally {
      store.close();
    }
    const old = new Date(Date.now() - 2 * 3600 * 1000);
    const place = (name: string, bytes: string, mtime?: Date) => {
      const file = blobPath(data, name);
      mkdirSync(join(file, '..'), { recursive: true });
      writeFileSync(file, bytes);
      if (mtime) utimesSync(file, mtime, mtime);
      return file;
    };
    const crashed = place(sha256('left by a crash'), 'left by a crash', old);
    const fresh = place(sha256('being pushed right now'), 'being pushed right now');
    const temporary = `${blobPath(data, sha256('staged'))}.import-4242`;
    mkdirSync(join(temporary, '..'), { recursive: true });
    writeFileSync(temporary, 'staged');
    utimesSync(temporary, old, old);
    utimesSync(blobPath(data, kept!.digest), old, old);

    // Two hours is within check's default grace, as it is within gc's.
    const byDefault = await regmeta(['check', '--data', data, '--json']);
    expect(byDefault.status).toBe(0);
    expect(subjects(JSON.parse(byDefault.stdout).pending)).toEqual(
      [sha256('left by a crash'), sha256('being pushed right now'), temporary].sort(),
    );
    const checked = await regmeta(['check', '--grace', '1h', '--data', data, '--json']);
    expect(checked.status).toBe(1);
    const report = JSON.parse(checked.stdout);
    expect(subjects(report.problems)).toEqual([sha256('left by a crash'), temporary].sort());
    expect(report.problems.every((p: { kind: string }) => p.kind === 'blob-orphan')).toBe(true);
    expect(subjects(report.pending)).toEqual([sha256('being pushed right now')]);

    const swept = await regmeta(['gc', '--grace', '1h', '--data', data, '--json']);
    expect(swept.status).toBe(0);
    expect(existsSync(crashed)).toBe(false);
    expect(existsSync(temporary)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
    expect(existsSync(blobPath(data, kept!.digest))).toBe(true);
    expect(JSON.parse(swept.stdout).filesRemoved).toBe(2);
  });
});
