// A distribution storage in a bucket (distribution's s3 driver, rootdirectory
// = the prefix): the v2 tree listed with ListObjectsV2 (one paged listing,
// no per-directory requests), link files read with small GETs, blob data
// offered to a blob store as an object, which an S3 store on the same
// service copies server-side.

import type { Readable } from 'node:stream';
import type { DistributionFile, DistributionStorage } from '../distribution.js';
import type { BlobSource, BlobStat, S3Options } from '../types.js';
import { Bucket } from './client.js';
import { readRange } from './reads.js';

/** The v2 tree under key prefix `root` ('' for the bucket's root) of a bucket. */
export class BucketDistribution implements DistributionStorage {
  readonly location: string;
  readonly #bucket: Bucket;
  readonly #root: string;

  private constructor(bucket: Bucket, root: string) {
    this.#bucket = bucket;
    this.#root = root;
    this.location = `s3://${bucket.name}/${root}`;
  }

  /**
   * The distribution storage under the options' prefix: its
   * docker/registry/v2, or the prefix itself when it is that tree (both
   * hold repositories/ and blobs/).
   * @returns undefined when neither is.
   * @throws BlobStoreError STORAGE_UNAVAILABLE; the storage's error.
   */
  static async find(options: S3Options): Promise<BucketDistribution | undefined> {
    const bucket = new Bucket(options);
    const base = options.prefix.replace(/^\/+|\/+$/g, '');
    for (const candidate of [join(base, 'docker/registry/v2'), base]) {
      const found = new BucketDistribution(bucket, candidate);
      if ((await found.#any('repositories')) && (await found.#any('blobs'))) return found;
    }
    await bucket.destroy();
    return undefined;
  }

  async #any(dir: string): Promise<boolean> {
    for await (const _ of this.#bucket.list(`${this.#key(dir)}/`)) return true;
    return false;
  }

  async *files(dir: string): AsyncIterable<DistributionFile> {
    const cut = this.#root === '' ? 0 : this.#root.length + 1;
    for await (const object of this.#bucket.list(`${this.#key(dir)}/`)) {
      if (!object.key.endsWith('/')) yield { path: object.key.slice(cut), size: object.size, modified: object.modified };
    }
  }

  read(path: string): Promise<Buffer | undefined> {
    return this.#bucket.getBytes(this.#key(path));
  }

  stat(path: string): Promise<BlobStat | undefined> {
    return this.#bucket.head(this.#key(path));
  }

  source(path: string): BlobSource {
    const key = this.#key(path);
    const { name: bucket, endpoint } = this.#bucket;
    return { object: { bucket, key, ...(endpoint === undefined ? {} : { endpoint }) }, read: (): Readable => readRange(this.#bucket, key) };
  }

  locate(path: string): string {
    return `s3://${this.#bucket.name}/${this.#key(path)}`;
  }

  #key(path: string): string {
    return join(this.#root, path);
  }
}

function join(prefix: string, path: string): string {
  return prefix === '' ? path : path === '' ? prefix : `${prefix}/${path}`;
}
