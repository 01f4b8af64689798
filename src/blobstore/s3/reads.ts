// Reads of a blob in the bucket: a stream of a range (one GET), and a blob
// opened for positional reads, which serves reads in sequence from one GET
// stream and starts another, from the position asked for, when a read jumps.

import { Readable } from 'node:stream';
import type { Bucket } from './client.js';
import { storageError } from './client.js';
import type { BlobFile } from '../types.js';

/** Bytes `start`..`end` of `key` as a stream; a missing object fails the stream. */
export function readRange(bucket: Bucket, key: string, start?: number, end?: number): Readable {
  async function* bytes(): AsyncGenerator<Buffer> {
    const got = await bucket.get(key, start, end);
    if (got === undefined) throw Object.assign(new Error('no such blob'), { code: 'ENOENT' });
    try {
      for await (const chunk of got.body) yield chunk as Buffer;
    } catch (error) {
      throw storageError(error);
    } finally {
      got.body.destroy();
    }
  }
  return Readable.from(bytes(), { objectMode: false });
}

/** The object `key` opened for positional reads, or undefined when it is not there (one GET either way). */
export async function openObject(bucket: Bucket, key: string): Promise<BlobFile | undefined> {
  const first = await bucket.get(key);
  if (first === undefined) return undefined;
  return new ObjectFile(bucket, key, first.size, first.body);
}

class ObjectFile implements BlobFile {
  readonly #bucket: Bucket;
  readonly #key: string;
  readonly #size: number;
  #stream: AsyncIterator<Buffer> | undefined;
  #body: Readable | undefined;
  // Where the stream is, and what it gave that no read took yet.
  #position = 0;
  #pending: Buffer = Buffer.alloc(0);

  constructor(bucket: Bucket, key: string, size: number, body: Readable) {
    this.#bucket = bucket;
    this.#key = key;
    this.#size = size;
    this.#attach(body, 0);
  }

  #attach(body: Readable, position: number): void {
    this.#body = body;
    this.#stream = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    this.#position = position;
    this.#pending = Buffer.alloc(0) as Buffer;
  }

  /** @throws the storage's error; an Error when the blob went away meanwhile. */
  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    if (position >= this.#size || length <= 0) return 0;
    if (this.#stream === undefined || position !== this.#position) await this.#seek(position);
    let copied = 0;
    const wanted = Math.min(length, this.#size - position);
    while (copied < wanted) {
      if (this.#pending.length === 0) {
        let next: IteratorResult<Buffer>;
        try {
          next = await this.#stream!.next();
        } catch (error) {
          this.#drop();
          throw storageError(error);
        }
        if (next.done) break;
        this.#pending = next.value;
      }
      const n = this.#pending.copy(buffer, offset + copied, 0, Math.min(this.#pending.length, wanted - copied));
      this.#pending = this.#pending.subarray(n);
      copied += n;
    }
    this.#position += copied;
    return copied;
  }

  /** Starts a stream at `position`, dropping the one there was. */
  async #seek(position: number): Promise<void> {
    this.#drop();
    const got = await this.#bucket.get(this.#key, position);
    if (got === undefined) throw Object.assign(new Error('the blob went away while it was read'), { code: 'ENOENT' });
    this.#attach(got.body, position);
  }

  #drop(): void {
    this.#body?.destroy();
    this.#body = this.#stream = undefined;
  }

  async close(): Promise<void> {
    this.#drop();
  }
}
