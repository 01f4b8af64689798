// What every blob store test uses: digests of bytes, and streams that fail on cue.

import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';

export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A stream of `chunks`, then (when `failure` is given) that error instead of an end. */
export function streamOf(chunks: (string | Buffer)[], failure?: Error): Readable {
  let i = 0;
  return new Readable({
    read() {
      if (i < chunks.length) this.push(Buffer.from(chunks[i++]));
      else if (failure) this.destroy(failure);
      else this.push(null);
    },
  });
}

/** Everything an async iterable yields, in order (Array.fromAsync, which Node 20 lacks). */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}
