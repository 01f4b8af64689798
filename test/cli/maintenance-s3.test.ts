// `regmeta gc` and `regmeta check` on a registry whose blobs are in a bucket
// (--storage s3://…) of a real test S3 server: orphan objects found by
// listing and removed past the grace only, missing and resized objects
// reported, corrupt bytes caught by --deep re-hashing what the store reads.

import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import { asyncStore, openStore } from 'regmeta';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectoryBlobStore } from '../../src/blobstore/fs/directory.js';
import { Bucket } from '../../src/blobstore/s3/client.js';
import { S3BlobStore } from '../../src/blobstore/s3/store.js';
import type { BlobStore } from '../../src/blobstore/types.js';
import { startS3Server, type S3Server } from '../blobstore/s3/server.js';
import { putBlob, putImage, sha256 } from './data.js';
import { regmeta, tempDir } from './run.js';

let s3: S3Server;
let s3dir: string;
let client: S3Client;
const dirs: string[] = [];
let prefixes = 0;

beforeAll(async () => {
  s3dir = mkdtempSync(join(tmpdir(), 'regmeta-s3-ops-'));
  s3 = await startS3Server({ dir: s3dir });
  client = new S3Client({ ...s3.options, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
});

afterAll(async () => {
  client?.destroy();
  await s3?.cleanup();
  rmSync(s3dir, { recursive: true, force: true });
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A registry: SQLite metadata in a data directory, blobs in a fresh prefix of the bucket. */
function registry() {
  const data = tempDir('regmeta-s3-ops-');
  dirs.push(data);
  const prefix = `ops-${++prefixes}`;
  const url = `s3://${s3.bucket}/${prefix}?endpoint=${encodeURIComponent(s3.endpoint)}&forcePathStyle=true`;
  const blobs = new S3BlobStore({ ...s3.options, prefix });
  return { data, prefix, url, blobs, key: (digest: string) => `${prefix}/blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}/data` };
}

/** Stores `bytes` as a blob in the bucket, as a push would. */
async function putObject(blobs: BlobStore, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const staged = await blobs.put(digest, Readable.from([bytes]));
  await staged.place();
  return digest;
}

/** Moves an object's time back, as the test server keeps it: its file's mtime. */
function backdate(key: string, when: Date): void {
  const file = join(s3dir, s3.bucket, `${key}._S3rver_object`);
  expect(existsSync(file)).toBe(true);
  utimesSync(file, when, when);
}

/** Copies every blob file under <data>/blobs into the bucket and removes the directory's: the registry's blobs are then in S3 only. */
async function intoBucket(data: string, blobs: BlobStore): Promise<void> {
  const directory = new DirectoryBlobStore(data);
  for await (const file of directory.list()) {
    const staged = await blobs.put(file.digest!, directory.read(file.digest!));
    await staged.place();
  }
  rmSync(join(data, 'blobs'), { recursive: true, force: true });
}

/** A registry with one tagged image whose blobs (config and layer) are in the bucket. */
async function withImage() {
  const reg = registry();
  const store = openStore(join(reg.data, 'metadata.db'));
  let image;
  try {
    image = putImage(store, reg.data, 'ops/app');
    store.putTag('ops/app', 'v1', { digest: image.digest }, { actor: 'alice' });
  } finally {
    store.close();
  }
  await intoBucket(reg.data, reg.blobs);
  return { ...reg, image };
}

const put = (key: string, body: Buffer) => client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body, ContentLength: body.length }));

describe('gc on S3', () => {
  it('removes an orphan object older than the grace, keeps a young one and every object a row names', async () => {
    const reg = registry();
    const store = openStore(join(reg.data, 'metadata.db'));
    let known;
    try {
      known = putBlob(store, reg.data, 'orphans/x', Buffer.from('a blob the store knows'), 'application/octet-stream');
    } finally {
      store.close();
    }
    await intoBucket(reg.data, reg.blobs);
    const old = await putObject(reg.blobs, Buffer.from('left by a crash'));
    const young = await putObject(reg.blobs, Buffer.from('being pushed right now'));
    const twoHoursAgo = new Date(Date.now() - 2 * 3600 * 1000);
    backdate(reg.key(old), twoHoursAgo);
    // Its row is young (linked just now): the object stays however old it looks.
    backdate(reg.key(known!.digest), twoHoursAgo);

    const checked = await regmeta(['check', '--grace', '1h', '--data', reg.data, '--storage', reg.url, '--json']);
    expect(checked.status).toBe(1);
    const report = JSON.parse(checked.stdout);
    expect(report.problems).toMatchObject([{ kind: 'blob-orphan', subject: old }]);
    expect(report.pending).toMatchObject([{ kind: 'blob-pending', subject: young }]);
    expect(report.problems[0].detail).toContain(reg.prefix);

    const swept = await regmeta(['gc', '--grace', '1h', '--data', reg.data, '--storage', reg.url, '--json']);
    expect(swept.status, swept.stderr).toBe(0);
    expect(JSON.parse(swept.stdout)).toMatchObject({ filesRemoved: 1, problems: [] });
    expect(await reg.blobs.stat(old)).toBeUndefined();
    expect(await reg.blobs.stat(young)).toBeDefined();
    expect(await reg.blobs.stat(known!.digest)).toBeDefined();
  });

  it("removes a collected blob's object after its row", async () => {
    const { data, url, blobs, image } = await withImage();
    const store = openStore(join(data, 'metadata.db'));
    try {
      store.deleteTag('ops/app', 'v1', { actor: 'alice' });
    } finally {
      store.close();
    }
    const swept = await regmeta(['gc', '--grace', '0', '--data', data, '--storage', url, '--json']);
    expect(swept.status, swept.stderr).toBe(0);
    const result = JSON.parse(swept.stdout);
    expect(result.manifestsDeleted).toHaveLength(1);
    expect(result.blobsDeleted.map((b: { digest: string }) => b.digest).sort()).toEqual([image.config.digest, image.layer.digest].sort());
    expect(result.filesRemoved).toBe(2);
    expect(await blobs.stat(image.layer.digest)).toBeUndefined();
    expect(await blobs.stat(image.config.digest)).toBeUndefined();
  });
});

describe('gc on S3: upload sessions', () => {
  it("expires a session idle past a day, with its objects, and aborts its multipart upload", async () => {
    const reg = registry();
    const file = join(reg.data, 'metadata.db');
    const store = asyncStore(openStore(file));
    let id: string;
    try {
      const blobs = new S3BlobStore({ ...s3.options, prefix: reg.prefix, partSize: 5 * 1024 * 1024 }, { sessions: store.uploads, maxBlobSize: 1024 ** 3 });
      const upload = await blobs.startUpload('ops/app', '127.0.0.1');
      // Above one part (the blob limit small enough for 5 MiB parts to reach it): a multipart upload is open for it.
      await blobs.append(upload, Readable.from([randomBytes(5 * 1024 * 1024 + 1)]));
      id = upload.id;
    } finally {
      await store.close();
    }
    const pending = () => readdirSync(join(s3dir, s3.bucket, '._S3rver_uploads')).filter((u) => readFileSync(join(s3dir, s3.bucket, '._S3rver_uploads', u, 'key'), 'utf8').includes(id));
    const objects = async () => {
      const found: string[] = [];
      for await (const object of new Bucket({ ...s3.options, prefix: '' }).list(`${reg.prefix}/uploads/${id}`)) found.push(object.key);
      return found;
    };
    expect(pending()).toHaveLength(1);
    expect(await objects()).not.toEqual([]);
    const db = new Database(file);
    db.prepare('UPDATE upload_session SET updated_at = 0, started_at = 0 WHERE id = ?').run(id);
    db.close();

    const swept = await regmeta(['gc', '--data', reg.data, '--storage', reg.url, '--json']);
    expect(swept.status, swept.stderr).toBe(0);
    expect(JSON.parse(swept.stdout)).toMatchObject({ uploadsExpired: 1, problems: [] });
    expect(pending()).toEqual([]);
    expect(await objects()).toEqual([]);
  });
});

describe('check on S3', () => {
  it('passes a sound registry, reports a missing object and one of the wrong size; --deep catches bytes changed in place', async () => {
    const { image, url, data, key } = await withImage();
    const check = async (...args: string[]) => {
      const run = await regmeta(['check', '--data', data, '--storage', url, '--json', ...args]);
      return { status: run.status, report: JSON.parse(run.stdout) as { problems: { kind: string; subject: string; detail: string }[]; checked: { blobFiles: number } } };
    };
    const sound = await check();
    expect(sound).toMatchObject({ status: 0, report: { problems: [], checked: { blobFiles: 2 } } });

    await client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key(image.layer.digest) }));
    const longer = Buffer.alloc(image.config.size + 9, 'y');
    await put(key(image.config.digest), longer);
    const damaged = await check();
    expect(damaged.status).toBe(1);
    const byDigest = Object.fromEntries(damaged.report.problems.map((p) => [p.subject, p]));
    expect(byDigest[image.layer.digest]).toMatchObject({ kind: 'blob-file', detail: expect.stringMatching(/^missing: .*ops-\d+\/blobs\/sha256\//) });
    expect(byDigest[image.config.digest]).toMatchObject({ kind: 'blob-file', detail: expect.stringMatching(new RegExp(`has ${longer.length} bytes, recorded ${image.config.size}$`)) });

    // The same sizes, other bytes: only re-hashing sees it.
    await put(key(image.layer.digest), Buffer.alloc(image.layer.size, 7));
    await put(key(image.config.digest), Buffer.alloc(image.config.size, 'x'));
    const shallow = await check('--no-deep');
    expect(shallow).toMatchObject({ status: 0, report: { problems: [] } });
    const deep = await check('--deep');
    expect(deep.status).toBe(1);
    expect(deep.report.problems.map((p) => `${p.kind} ${p.subject} ${/does not hash to its digest$/.test(p.detail)}`).sort()).toEqual(
      [`blob-file ${image.config.digest} true`, `blob-file ${image.layer.digest} true`].sort(),
    );
  });
});
