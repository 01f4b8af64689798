// Upload sessions in a bucket, where S3's rules show: parts of at least
// 5 MiB but chunks of any size (the tail kept in the bucket), a session fed
// by two blob stores (two replicas) in turns, taken over after its writer
// died (a process killed mid-chunk: from the built dist/, so `npm run
// build` first), and a wrong digest or a failed body leaving nothing visible.

import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { asyncStore, openStore, type Store } from 'regmeta';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { S3BlobStore } from '../../../src/blobstore/s3/store.js';
import type { BlobStoreOptions } from '../../../src/blobstore/types.js';
import { sha256, streamOf } from '../helpers.js';
import { rawBucket } from './client.js';
import { startS3Server, type S3Server } from './server.js';

const MiB = 1024 ** 2;
const PART = 5 * MiB;

let server: S3Server;
let raw: ReturnType<typeof rawBucket>;
beforeAll(async () => {
  server = await startS3Server();
  raw = rawBucket(server);
});
afterAll(async () => {
  raw.destroy();
  await server.cleanup();
});

/** `length` bytes that differ from `seed` to `seed`, so that a misplaced piece shows. */
function bytes(length: number, seed: number): Buffer {
  const buffer = Buffer.alloc(length);
  for (let i = 0; i < length; i += 4096) buffer.writeUInt32BE((i * 31 + seed) >>> 0, i);
  return buffer;
}

describe('upload sessions in a bucket', () => {
  let metadata: Store;
  let prefix: string;
  const opened: S3BlobStore[] = [];
  /** A blob store on the shared bucket prefix and session table: one replica. */
  const replica = (options: BlobStoreOptions = {}) => {
    const blobs = new S3BlobStore({ ...server.options, prefix, partSize: PART }, { sessions: metadata.uploads, maxBlobSize: 1024 ** 3, ...options });
    opened.push(blobs);
    return blobs;
  };
  beforeEach(() => {
    metadata = asyncStore(openStore(':memory:'));
    prefix = `t/${randomUUID()}`;
  });
  afterEach(async () => {
    for (const blobs of opened.splice(0)) await blobs.destroy();
    await metadata.close();
  });

  it('takes chunks smaller and larger than a part from two replicas in turns, keeping one state and tail', async () => {
    const [a, b] = [replica(), replica()];
    const chunks = [bytes(MiB, 1), bytes(7 * MiB, 2), bytes(3 * MiB, 3), bytes(100, 4)];
    const upload = await a.startUpload('acme/app', 'a');
    for (const [i, chunk] of chunks.entries()) {
      const writer = i % 2 === 0 ? a : b;
      const handle = await writer.upload('acme/app', upload.id);
      await writer.append(handle, streamOf([chunk]), chunk.length);
    }
    const size = chunks.reduce((total, chunk) => total + chunk.length, 0);
    // The bytes past the last full part wait in one tail, beside one state: the committed size's.
    expect(await raw.keys(`${prefix}/uploads/`)).toEqual([`${prefix}/uploads/${upload.id}/state-${size}`, `${prefix}/uploads/${upload.id}/tail-${size}`]);
    const whole = Buffer.concat(chunks);
    const digest = sha256(whole);
    const staged = await a.finish(await a.upload('acme/app', upload.id), digest);
    expect(staged.size).toBe(size);
    // a did not feed every byte: it hashed the completed object.
    expect(a.rehashedUploads).toBe(1);
    await staged.place();
    await staged.discard();
    expect((await a.stat(digest))?.size).toBe(size);
    expect(sha256(Buffer.concat(await collectBuffers(b.read(digest))))).toBe(digest);
    expect(await raw.keys(`${prefix}/uploads/`)).toEqual([]);
  });

  it('hashes nothing again when one replica fed the whole session', async () => {
    const a = replica();
    const upload = await a.startUpload('acme/app', 'a');
    const chunks = [bytes(6 * MiB, 5), bytes(2 * MiB, 6)];
    for (const chunk of chunks) await a.append(upload, streamOf([chunk]));
    const digest = sha256(Buffer.concat(chunks));
    await (await a.finish(upload, digest)).place();
    expect(a.rehashedUploads).toBe(0);
    expect((await a.stat(digest))?.size).toBe(8 * MiB);
  });

  it('is taken over after its writer died holding it, whatever the dead writer left uncommitted', async () => {
    const a = replica();
    const upload = await a.startUpload('acme/app', 'a');
    const first = bytes(6 * MiB, 7);
    await a.append(upload, streamOf([first]));
    // a dies in its next append: its claim stays until the lease runs out, and what it wrote for a size it never committed stays too.
    expect(await metadata.uploads.claim('acme/app', upload.id, 'a-process-that-died', 300)).toEqual({ size: first.length });
    await raw.write(`${prefix}/uploads/${upload.id}/tail-${first.length + 10}`, 'never committed');
    const b = replica({ claimLease: 300 });
    const there = await b.upload('acme/app', upload.id);
    const second = bytes(10, 8);
    await b.append(there, streamOf([second]));
    expect(there.size).toBe(first.length + 10);
    const digest = sha256(Buffer.concat([first, second]));
    await (await b.finish(there, digest)).place();
    expect(sha256(Buffer.concat(await collectBuffers(b.read(digest))))).toBe(digest);
  });

  it('is taken over from a writer process killed mid-chunk, at the size it last committed', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'regmeta-s3-sessions-')), 'metadata.db');
    const shared = asyncStore(openStore(file));
    try {
      const [first, stalled] = [2 * MiB, 6 * MiB];
      const child = spawn(process.execPath, [path.join(import.meta.dirname, 'dying-writer.mjs'), file, prefix, String(first), String(stalled)], {
        env: { ...process.env, REGMETA_TEST_S3: JSON.stringify(server.options) },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const id = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (data: Buffer) => {
          const match = /SESSION (\S+)/.exec((out += data.toString()));
          if (match) resolve(match[1]);
        });
        child.once('exit', (code) => reject(new Error(`the writer exited (${code}) before it stalled`)));
      });
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      const b = new S3BlobStore({ ...server.options, prefix, partSize: PART }, { sessions: shared.uploads, maxBlobSize: 1024 ** 3 });
      opened.push(b);
      const there = await b.upload('acme/app', id);
      expect(there.size).toBe(first);
      const rest = bytes(4 * MiB, 15);
      await b.append(there, streamOf([rest]));
      const digest = sha256(Buffer.concat([Buffer.alloc(first, 1), rest]));
      await (await b.finish(there, digest)).place();
      expect(b.rehashedUploads).toBe(1);
      expect((await b.stat(digest))?.size).toBe(first + rest.length);
    } finally {
      await shared.close();
      rmSync(path.dirname(file), { recursive: true, force: true });
    }
  });

  it('leaves nothing visible and nothing kept for a digest the bytes do not have, from a session or a put', async () => {
    const a = replica();
    const upload = await a.startUpload('acme/app', 'a');
    const content = bytes(6 * MiB, 9);
    await a.append(upload, streamOf([content]));
    const wrong = sha256('something else');
    await expect(a.finish(upload, wrong)).rejects.toMatchObject({ code: 'DIGEST_INVALID', detail: { digest: sha256(content) } });
    await expect(a.put(wrong, streamOf([content]))).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
    expect(await a.stat(wrong)).toBeUndefined();
    expect(await a.stat(sha256(content))).toBeUndefined();
    expect(await raw.keys(`${prefix}/`)).toEqual([]);
  });

  it('stays at its previous size when a body larger than a part fails half way', async () => {
    const a = replica();
    const upload = await a.startUpload('acme/app', 'a');
    const kept = bytes(MiB, 10);
    await a.append(upload, streamOf([kept]));
    await expect(a.append(upload, streamOf([bytes(7 * MiB, 11)], new Error('reset')))).rejects.toThrow('reset');
    expect(upload.size).toBe(MiB);
    const more = bytes(6 * MiB, 12);
    await a.append(upload, streamOf([more]));
    const digest = sha256(Buffer.concat([kept, more]));
    await (await a.finish(upload, digest)).place();
    expect((await a.stat(digest))?.size).toBe(7 * MiB);
  });

  it('puts a blob larger than a part through a multipart temporary, and places it by copy', async () => {
    const a = replica();
    const content = bytes(11 * MiB, 13);
    const digest = sha256(content);
    const staged = await a.put(digest, streamOf([content]));
    expect(await a.stat(digest)).toBeUndefined();
    expect((await raw.keys(`${prefix}/uploads/`)).length).toBe(1);
    await staged.place();
    await staged.discard();
    expect(await raw.keys(`${prefix}/uploads/`)).toEqual([]);
    expect(sha256(Buffer.concat(await collectBuffers(a.read(digest))))).toBe(digest);
  });

  it("sweeps objects under uploads/ that no session names and keeps a live session's", async () => {
    const a = replica();
    const live = await a.startUpload('acme/app', 'a');
    await a.append(live, streamOf([bytes(MiB, 14)]));
    const orphan = randomUUID();
    await raw.write(`${prefix}/uploads/${orphan}/state-10`, JSON.stringify({ uploadId: 'gone', parts: [], tail: 10 }));
    await raw.write(`${prefix}/uploads/${orphan}/tail-10`, '0123456789');
    await raw.write(`${prefix}/uploads/put-${randomUUID()}`, 'a put that died');
    const liveKeys = [`${prefix}/uploads/${live.id}/state-${MiB}`, `${prefix}/uploads/${live.id}/tail-${MiB}`];
    // Young strays stay.
    expect(await a.sweepUploads()).toEqual({ expired: 0, strays: [] });
    const { expired, strays } = await a.sweepUploads({ strayBefore: new Date(Date.now() + 60_000) });
    expect(expired).toBe(0);
    expect(strays).toHaveLength(3);
    expect(await raw.keys(`${prefix}/`)).toEqual(liveKeys);
    await a.cancel(live);
    expect(await raw.keys(`${prefix}/`)).toEqual([]);
  });
});

describe('stray multipart uploads', () => {
  it('are aborted once older than the sweep asks, when no session names them; a live one stays', async () => {
    const metadata = asyncStore(openStore(':memory:'));
    const prefix = `t/${randomUUID()}`;
    const blobs = new S3BlobStore({ ...server.options, prefix, partSize: PART }, { sessions: metadata.uploads, maxBlobSize: 1024 ** 3 });
    try {
      // A session with a multipart upload open (more than a part), and one no session names.
      const live = await blobs.startUpload('acme/app', 'a');
      await blobs.append(live, streamOf([bytes(PART + 4096, 3)]));
      const stray = `${prefix}/uploads/${randomUUID()}/data`;
      await raw.startMultipart(stray);
      expect(await raw.multipartKeys(`${prefix}/`)).toEqual([`${prefix}/uploads/${live.id}/data`, stray].sort());
      const { strays } = await blobs.sweepUploads({ strayBefore: new Date(Date.now() + 60_000) });
      expect(strays.filter((where) => where.includes('?uploadId='))).toHaveLength(1);
      expect(await raw.multipartKeys(`${prefix}/`)).toEqual([`${prefix}/uploads/${live.id}/data`]);
      await blobs.cancel(live);
      expect(await raw.multipartKeys(`${prefix}/`)).toEqual([]);
    } finally {
      await blobs.destroy();
      await metadata.close();
    }
  });

  it('do not stop a sweep on a service that cannot list them (501): the stray objects go all the same', async () => {
    const bare = await startS3Server({ withoutUploadListing: true });
    const bareRaw = rawBucket(bare);
    const metadata = asyncStore(openStore(':memory:'));
    const blobs = new S3BlobStore({ ...bare.options, prefix: 'bare' }, { sessions: metadata.uploads });
    try {
      await bareRaw.startMultipart(`bare/uploads/${randomUUID()}/data`);
      await expect(bareRaw.multipartKeys('bare/')).rejects.toMatchObject({ $metadata: { httpStatusCode: 501 } });
      await bareRaw.write(`bare/uploads/${randomUUID()}/tail-3`, 'abc');
      const { strays } = await blobs.sweepUploads({ strayBefore: new Date(Date.now() + 60_000) });
      expect(strays).toHaveLength(1);
      expect(await bareRaw.keys('bare/')).toEqual([]);
    } finally {
      await blobs.destroy();
      await metadata.close();
      bareRaw.destroy();
      await bare.cleanup();
    }
  });
});

async function collectBuffers(stream: AsyncIterable<unknown>): Promise<Buffer[]> {
  const all: Buffer[] = [];
  for await (const chunk of stream) all.push(chunk as Buffer);
  return all;
}
