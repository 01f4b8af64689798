// A plain AWS SDK client on the test S3 server, for tests that look at the
// bucket behind the blob store's back, as an operator or distribution would.

import { CreateMultipartUploadCommand, GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { text } from 'node:stream/consumers';
import type { Readable } from 'node:stream';
import type { S3Server } from './server.js';

/** A raw client of `server`'s bucket. */
export function rawBucket(server: S3Server) {
  const client = new S3Client({
    ...server.options,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const Bucket = server.bucket;
  return {
    /** The object's text, or undefined when it is not there. */
    async read(key: string): Promise<string | undefined> {
      try {
        const out = await client.send(new GetObjectCommand({ Bucket, Key: key }));
        return await text(out.Body as Readable);
      } catch (error) {
        if ((error as { name?: string }).name === 'NoSuchKey') return undefined;
        throw error;
      }
    },
    async write(key: string, body: string): Promise<void> {
      await client.send(new PutObjectCommand({ Bucket, Key: key, Body: body }));
    },
    /** Every key under `prefix`. */
    async keys(prefix: string): Promise<string[]> {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket, Prefix: prefix, ContinuationToken: token }));
        keys.push(...(page.Contents ?? []).map((item) => item.Key!));
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token !== undefined);
      return keys.sort();
    },
    /** Begins a multipart upload of `key`, as a writer that died before it wrote anything else would leave it. */
    async startMultipart(key: string): Promise<string> {
      return (await client.send(new CreateMultipartUploadCommand({ Bucket, Key: key }))).UploadId!;
    },
    /** The keys of the multipart uploads under `prefix` (one page: the tests hold few). */
    async multipartKeys(prefix: string): Promise<string[]> {
      const page = await client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: prefix }));
      return (page.Uploads ?? []).map((upload) => upload.Key!).sort();
    },
    destroy: () => client.destroy(),
  };
}
