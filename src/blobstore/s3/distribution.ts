// A distribution storage in a bucket (distribution's s3 driver, rootdirectory
// = the prefix): the v2 tree listed with ListObjectsV2 (one paged listing,
// no per-directory requests), link files read with small GETs, blob data
// offered to a blob store as an object, which one on the same service copies
// server-side.

import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { PassThrough, Readable } from 'node:stream';
import type { DistributionFile, DistributionStorage } from '../distribution.js';
import type { BlobSource, BlobStat, S3Options } from '../types.js';

/** An S3 error that says the key is not there. */
function notFound(error: unknown): boolean {
  const { name, $metadata } = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return name === 'NoSuchKey' || name === 'NotFound' || $metadata?.httpStatusCode === 404;
}

/** The v2 tree under `root` (a key prefix, no trailing slash; '' for the bucket's root) of `options.bucket`. */
export class BucketDistribution implements DistributionStorage {
  readonly location: string;

  constructor(
    private readonly client: S3Client,
    private readonly options: S3Options,
    private readonly root: string,
  ) {
    this.location = `s3://${options.bucket}/${root}`;
  }

  /**
   * The distribution storage under the options' prefix: its
   * docker/registry/v2, or the prefix itself when it is that tree (both
   * hold repositories/ and blobs/).
   * @returns undefined when neither is.
   * @throws the service's error.
   */
  static async find(client: S3Client, options: S3Options): Promise<BucketDistribution | undefined> {
    const base = options.prefix;
    for (const candidate of [join(base, 'docker/registry/v2'), base]) {
      const found = new BucketDistribution(client, options, candidate);
      if ((await found.#any('repositories')) && (await found.#any('blobs'))) return found;
    }
    return undefined;
  }

  async #any(dir: string): Promise<boolean> {
    const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: `${this.#key(dir)}/`, MaxKeys: 1 }));
    return (page.KeyCount ?? page.Contents?.length ?? 0) > 0;
  }

  async *files(dir: string): AsyncIterable<DistributionFile> {
    const prefix = `${this.#key(dir)}/`;
    const cut = this.root === '' ? 0 : this.root.length + 1;
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined || object.Key.endsWith('/')) continue;
        yield { path: object.Key.slice(cut), size: object.Size ?? 0, modified: object.LastModified ?? new Date(0) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async read(path: string): Promise<Buffer | undefined> {
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: this.#key(path) }));
      return Buffer.from(await object.Body!.transformToByteArray());
    } catch (error) {
      if (notFound(error)) return undefined;
      throw error;
    }
  }

  async stat(path: string): Promise<BlobStat | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: this.#key(path) }));
      return { size: head.ContentLength ?? 0, modified: head.LastModified ?? new Date(0) };
    } catch (error) {
      if (notFound(error)) return undefined;
      throw error;
    }
  }

  source(path: string): BlobSource {
    const key = this.#key(path);
    const { bucket, endpoint } = this.options;
    return { object: { bucket, key, ...(endpoint === undefined ? {} : { endpoint }) }, read: () => this.#stream(key) };
  }

  locate(path: string): string {
    return `s3://${this.options.bucket}/${this.#key(path)}`;
  }

  /** The object's bytes as a stream made at once; the GET's failure fails it. */
  #stream(key: string): Readable {
    const out = new PassThrough();
    this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: key })).then(
      (object) => {
        const body = object.Body as Readable;
        body.on('error', (error) => out.destroy(error));
        out.on('close', () => body.destroy());
        body.pipe(out);
      },
      (error: unknown) => out.destroy(notFound(error) ? Object.assign(new Error(`no object ${key}`), { code: 'ENOENT' }) : (error as Error)),
    );
    return out;
  }

  #key(path: string): string {
    return join(this.root, path);
  }
}

function join(prefix: string, path: string): string {
  return prefix === '' ? path : path === '' ? prefix : `${prefix}/${path}`;
}
