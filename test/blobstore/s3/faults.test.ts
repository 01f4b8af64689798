// An S3 that went away: every call fails fast with STORAGE_UNAVAILABLE (a
// 503 with Retry-After for a registry's client), naming no credential, and
// the same blob store works again once the service is back.

import { randomUUID } from 'node:crypto';
import { text } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobStoreError } from '../../../src/blobstore/errors.js';
import { S3BlobStore } from '../../../src/blobstore/s3/store.js';
import { toWireError } from '../../../src/server/errors.js';
import { sha256, streamOf } from '../helpers.js';
import { startS3Server, type S3Server } from './server.js';

let server: S3Server;
beforeAll(async () => {
  server = await startS3Server();
});
afterAll(async () => {
  await server.cleanup();
});

describe('an S3 that cannot be reached', () => {
  it('fails each call with STORAGE_UNAVAILABLE, a 503 with Retry-After, and recovers when the service is back', async () => {
    const blobs = new S3BlobStore({ ...server.options, prefix: `t/${randomUUID()}` });
    const digest = sha256('kept');
    await (await blobs.put(digest, streamOf(['kept']))).place();
    const upload = await blobs.startUpload('acme/app', 'a');
    await server.stop();
    try {
      const calls: [string, () => Promise<unknown>][] = [
        ['stat', () => blobs.stat(digest)],
        ['open', () => blobs.open(digest)],
        ['read', () => text(blobs.read(digest))],
        ['put', async () => (await blobs.put(sha256('new'), streamOf(['new']))).place()],
        ['append', () => blobs.append(upload, streamOf(['x']))],
        ['checkWritable', () => blobs.checkWritable()],
        ['delete', async () => blobs.delete(digest)],
      ];
      for (const [name, call] of calls) {
        const error = await call().then(() => undefined, (e: unknown) => e);
        expect(error, name).toBeInstanceOf(BlobStoreError);
        expect(error, name).toMatchObject({ code: 'STORAGE_UNAVAILABLE', retryAfter: 1 });
        expect(String((error as Error).message)).not.toMatch(/S3RVER|Signature|Credential/);
        expect(toWireError(error)).toMatchObject({ status: 503, code: 'UNAVAILABLE', headers: { 'Retry-After': '1' } });
      }
      // The append failed: the session is where it was.
      expect(upload.size).toBe(0);
    } finally {
      await server.start();
    }
    expect(await text(blobs.read(digest))).toBe('kept');
    await blobs.append(upload, streamOf(['after']));
    await (await blobs.finish(upload, sha256('after'))).place();
    expect(await text(blobs.read(sha256('after')))).toBe('after');
    await blobs.destroy();
  });
});
