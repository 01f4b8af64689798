// The S3 store's keys and URLs: blobs where distribution keeps them (so a
// distribution bucket's blobs are served in place), nothing of
// distribution's repositories/ listed, and pre-signed GETs a client fetches
// itself, whole or a range, that a changed signature spoils.

import { randomUUID } from 'node:crypto';
import { text } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3BlobStore } from '../../../src/blobstore/s3/store.js';
import { collect, sha256, streamOf } from '../helpers.js';
import { rawBucket } from './client.js';
import { startS3Server, type S3Server } from './server.js';

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

/** A store under a fresh prefix, and what it was given. */
function storeUnder(prefix = `t/${randomUUID()}/docker/registry/v2`) {
  return { prefix, blobs: new S3BlobStore({ ...server.options, prefix }, { maxBlobSize: 64 * 1024 ** 2 }) };
}

describe("the S3 store's layout", () => {
  it("puts a blob at distribution's key under the prefix, and writes nothing else", async () => {
    const { prefix, blobs } = storeUnder();
    const digest = sha256('layered');
    const staged = await blobs.put(digest, streamOf(['layered']));
    await staged.place();
    await staged.discard();
    const hex = digest.slice('sha256:'.length);
    const key = `${prefix}/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
    expect(await raw.read(key)).toBe('layered');
    expect(await raw.keys(`${prefix}/`)).toEqual([key]);
    expect(blobs.location(digest)).toBe(`s3://${server.bucket}/${key}`);
    await blobs.destroy();
  });

  it("serves a blob distribution wrote, and lists none of distribution's repositories/", async () => {
    const { prefix, blobs } = storeUnder();
    const hex = sha256('from distribution').slice('sha256:'.length);
    await raw.write(`${prefix}/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`, 'from distribution');
    await raw.write(`${prefix}/repositories/acme/app/_layers/sha256/${hex}/link`, `sha256:${hex}`);
    expect(await text(blobs.read(`sha256:${hex}`))).toBe('from distribution');
    expect((await collect(blobs.list())).map((file) => file.digest)).toEqual([`sha256:${hex}`]);
    await blobs.destroy();
  });

  it('keeps the bucket root when the prefix is empty', async () => {
    const bucketRoot = new S3BlobStore({ ...server.options, prefix: '' });
    const digest = sha256(`root ${randomUUID()}`);
    expect(bucketRoot.location(digest)).toMatch(new RegExp(`^s3://${server.bucket}/blobs/sha256/`));
    await bucketRoot.destroy();
  });
});

describe('signedUrl', () => {
  it('gives a URL fetch() gets the blob from, whole or a range, and that a changed signature spoils', async () => {
    const { blobs } = storeUnder();
    const digest = sha256('0123456789');
    await (await blobs.put(digest, streamOf(['0123456789']))).place();
    const url = (await blobs.signedUrl(digest, 60))!;
    expect(url).toMatch(/X-Amz-Signature=/);
    const whole = await fetch(url);
    expect(whole.status).toBe(200);
    expect(await whole.text()).toBe('0123456789');
    const range = await fetch(url, { headers: { Range: 'bytes=2-5' } });
    expect(range.status).toBe(206);
    expect(await range.text()).toBe('2345');
    const tampered = url.replace(/X-Amz-Signature=([0-9a-f])/, (_, c: string) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`);
    expect((await fetch(tampered)).status).toBe(403);
    await blobs.destroy();
  });
});
