// Bytes cut into multipart parts as they arrive: a body read into memory one
// part at a time, each full part handed on (to be uploaded while the next
// is read), what is left over kept for the caller. The body is never
// destroyed: for a request, that would destroy the socket before the client
// hears why; the caller answers and discards the rest.

import type { Hash } from 'node:crypto';
import { finished, type Readable } from 'node:stream';
import type { CompletedPart } from '@aws-sdk/client-s3';
import { BlobStoreError } from '../errors.js';

/** How many bytes a read may take, and the hash it feeds. */
interface Meter {
  /** Fed every byte of the body, in order; none when nothing hashes. */
  hash?: Hash;
  /** The most bytes this body may have before the read fails with `tooLarge()`. */
  limit: number;
  tooLarge: () => Error;
  /** Bytes the body claims to have: more fails at once, fewer fails at the end. */
  expected?: number;
}

/**
 * Reads `body` after `initial` bytes, handing each full part of `partSize`
 * bytes to `onPart` and waiting for it before reading on.
 * @returns how many bytes the body had, and the bytes after the last full part.
 * @throws BlobStoreError SIZE_INVALID (more or fewer bytes than expected),
 * BLOB_UPLOAD_INVALID (the body closed before its end); what `meter.tooLarge`
 * makes; what the body fails with; what `onPart` throws.
 */
export function readParts(
  body: Readable,
  initial: Buffer,
  partSize: number,
  meter: Meter,
  onPart: (part: Buffer) => Promise<void>,
): Promise<{ received: number; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let received = 0;
    let pending: Buffer[] = initial.length > 0 ? [initial] : [];
    let pendingSize = initial.length;
    let failure: unknown;
    let busy = false;
    let ended = false;
    const fail = (error: unknown) => {
      if (failure !== undefined) return;
      failure = error;
      body.off('data', onData);
      body.pause();
      reject(error);
    };
    const end = () => {
      const short = meter.expected !== undefined && received !== meter.expected;
      if (short) return fail(new BlobStoreError('SIZE_INVALID', `body has ${received} bytes, ${meter.expected} expected`));
      if (failure === undefined) resolve({ received, rest: Buffer.concat(pending) });
    };
    const drain = async () => {
      busy = true;
      body.pause();
      try {
        while (pendingSize >= partSize && failure === undefined) {
          const all = Buffer.concat(pending);
          const rest = all.subarray(partSize);
          pending = rest.length > 0 ? [rest] : [];
          pendingSize = rest.length;
          await onPart(all.subarray(0, partSize));
        }
      } catch (error) {
        return fail(error);
      }
      busy = false;
      if (failure !== undefined) return;
      if (ended) end();
      else body.resume();
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      const refused = refusal(meter, received);
      if (refused !== undefined) return fail(refused);
      meter.hash?.update(chunk);
      pending.push(chunk);
      pendingSize += chunk.length;
      if (pendingSize >= partSize && !busy) void drain();
    };
    body.on('error', fail);
    // finished() and not a 'close' listener: a client that went away before
    // the read started has closed the request already, which finished() reports at once.
    finished(body, { writable: false }, (error) => {
      if (error) return fail(new BlobStoreError('BLOB_UPLOAD_INVALID', 'the client went away mid-body', { cause: error }));
      ended = true;
      if (!busy) end();
    });
    body.on('data', onData);
    body.resume();
  });
}

/** Why a body of `received` bytes so far is refused, if it is. */
function refusal(meter: Meter, received: number): Error | undefined {
  if (received > meter.limit) return meter.tooLarge();
  if (meter.expected !== undefined && received > meter.expected) {
    return new BlobStoreError('SIZE_INVALID', 'body is longer than its Content-Length or Content-Range');
  }
  return undefined;
}

/**
 * Parts uploaded a few at a time: `add` waits while `concurrency` are in
 * flight, so that a writer holds at most that many parts and the one it reads.
 */
export class PartUploads {
  readonly #upload: (number: number, part: Buffer) => Promise<CompletedPart>;
  readonly #concurrency: number;
  readonly #inflight = new Set<Promise<void>>();
  readonly #done: CompletedPart[] = [];
  #failure: { error: unknown } | undefined;

  constructor(upload: (number: number, part: Buffer) => Promise<CompletedPart>, concurrency: number) {
    this.#upload = upload;
    this.#concurrency = concurrency;
  }

  /** Starts uploading `part` as part `number` once there is room. @throws what an earlier part failed with. */
  async add(number: number, part: Buffer): Promise<void> {
    while (this.#inflight.size >= this.#concurrency) await Promise.race(this.#inflight);
    if (this.#failure !== undefined) throw this.#failure.error;
    const running: Promise<void> = this.#upload(number, part).then(
      (done) => void this.#done.push(done),
      (error: unknown) => void (this.#failure ??= { error }),
    );
    const tracked = running.finally(() => this.#inflight.delete(tracked));
    this.#inflight.add(tracked);
  }

  /** Waits for every part. @returns them in order. @throws what a part failed with. */
  async all(): Promise<CompletedPart[]> {
    await Promise.all(this.#inflight);
    if (this.#failure !== undefined) throw this.#failure.error;
    return [...this.#done].sort((a, b) => a.PartNumber! - b.PartNumber!);
  }

  /** Waits for every part in flight, whatever they do. Never throws. */
  async settle(): Promise<void> {
    await Promise.all(this.#inflight);
  }
}
