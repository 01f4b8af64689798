// The blob endpoints over an S3 bucket (RegistryOptions.storage), through
// the library: storageRedirect's 307 and what the request log and the fault
// callback see of it, and a HEAD that asks the bucket nothing, even for an
// object removed behind the registry's back.

import { randomUUID } from 'node:crypto';
import { DeleteObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawBucket } from '../blobstore/s3/client.js';
import { startS3Server, type S3Server } from '../blobstore/s3/server.js';
import { errorCode, pushBlob, startRegistry } from './helpers.js';

let s3: S3Server;
beforeAll(async () => {
  s3 = await startS3Server();
});
afterAll(async () => {
  await s3.cleanup();
});

describe('blobs in a bucket', () => {
  it('redirect: a 307 to a pre-signed URL that the log and the faults never see', async () => {
    const prefix = `server/${randomUUID()}`;
    const own = await startRegistry({ storage: { ...s3.options, prefix }, storageRedirect: true, metrics: true });
    try {
      const digest = await pushBlob(own.url, 'acme/app', 'signed away');
      const res = await fetch(`${own.url}/v2/acme/app/blobs/${digest}`, { redirect: 'manual' });
      expect(res.status).toBe(307);
      const location = res.headers.get('location')!;
      expect(new URL(location).searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
      expect(await (await fetch(location)).text()).toBe('signed away');
      const metrics = await (await fetch(`${own.url}/metrics`)).text();
      const seen = JSON.stringify(own.logs) + metrics;
      expect(seen).not.toContain(new URL(location).searchParams.get('X-Amz-Signature'));
      expect(seen).not.toMatch(/X-Amz-|S3RVER/);
      expect(own.logs.find((entry) => entry.status === 307)).toMatchObject({ method: 'GET', route: 'blob', path: `/v2/acme/app/blobs/${digest}` });
      expect(own.errors).toEqual([]);
    } finally {
      await own.close();
    }
  });

  it('an object removed behind its back: HEAD 200 from the metadata, GET 404 BLOB_UNKNOWN and one fault', async () => {
    const prefix = `server/${randomUUID()}`;
    const own = await startRegistry({ storage: { ...s3.options, prefix } });
    try {
      const digest = await pushBlob(own.url, 'acme/app', 'lost from the bucket');
      const hex = digest.slice('sha256:'.length);
      const [key] = (await rawBucket(s3).keys(prefix)).filter((k) => k.includes(hex));
      expect(key).toBeDefined();
      const client = new S3Client(s3.options);
      await client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key }));
      client.destroy();
      const head = await fetch(`${own.url}/v2/acme/app/blobs/${digest}`, { method: 'HEAD' });
      expect([head.status, head.headers.get('content-length')]).toEqual([200, '20']);
      for (let i = 0; i < 2; i++) {
        const get = await fetch(`${own.url}/v2/acme/app/blobs/${digest}`);
        expect([get.status, await errorCode(get)]).toEqual([404, 'BLOB_UNKNOWN']);
      }
      expect(own.errors).toHaveLength(1);
      expect(String(own.errors[0])).toContain(digest);
    } finally {
      await own.close();
    }
  });
});
