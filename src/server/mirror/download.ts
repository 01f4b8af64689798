// A blob fetched from an upstream once per digest in this process: its bytes
// spooled to a file of this process's (spool.ts) while they are hashed, and
// read by every client that asks meanwhile, each at its own pace (the recent
// ones from memory: buffered.ts). No client gets the last byte of its answer
// before the digest has checked out: a blob whose bytes do not match, or
// whose upstream dies or stalls, is thrown away, every client's connection
// cut. A verified blob goes into the blob store and is linked in each
// repository that asked for it.

import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { BlobFile, StagedBlob } from '../../blobstore/index.js';
import type { LockedAction } from '../../store/index.js';
import { HttpError } from '../errors.js';
import { upstreamUnavailable } from './auth.js';
import type { MirrorParts, MirrorTarget } from './types.js';
import { isUpstreamError } from './calls.js';
import { BufferedSpool } from './buffered.js';
import { Spool } from './spool.js';
import { upstreamBlob, type UpstreamBlob } from './upstream-blob.js';

/** The fewest bytes a reader keeping up with the upstream waits for, unless its answer ends sooner. */
const MIN_READ = 256 << 10;

/** The downloads of one registry's mirrors: at most one per digest at a time. */
export class Downloads {
  readonly #parts: MirrorParts;
  readonly #spool: Spool;
  readonly #running = new Map<string, Download>();

  constructor(parts: MirrorParts) {
    this.#parts = parts;
    this.#spool = new Spool(parts.dataDir);
  }

  /** The download of `digest` running now, if any. */
  running(digest: string): Download | undefined {
    return this.#running.get(digest);
  }

  /**
   * Joins the download of `digest`, started from the target's upstream
   * unless one is running, as a reader (who must `leave` it once done); the
   * blob is linked in `name` once kept. Synchronous: two requests never
   * start two downloads.
   */
  join(target: MirrorTarget, name: string, digest: string): Download {
    let download = this.#running.get(digest);
    if (download === undefined) {
      const started = new Download(this.#parts, target, name, digest, this.#spool, () => {
        if (this.#running.get(digest) === started) this.#running.delete(digest);
      });
      this.#running.set(digest, started);
      started.start();
      download = started;
    }
    download.names.add(name);
    download.enter();
    return download;
  }

  /** Fails every running download: the registry is closing. Removes the spool directory when none was running. Never rejects. */
  async close(): Promise<void> {
    for (const download of this.#running.values()) download.abort();
    await this.#spool.close(this.#running.size === 0);
  }
}

/** One blob on its way from the upstream. */
export class Download {
  /** The repositories to link the blob in once it is kept. */
  readonly names = new Set<string>();
  /**
   * Resolves once the upstream answered with the blob (`size` set when it
   * sent one); rejects with its refusal (NotFoundError BLOB_UNKNOWN, HttpError
   * UPSTREAM_UNAVAILABLE or SIZE_INVALID) or a local failure.
   */
  readonly ready: Promise<void>;
  /** Resolves once the blob is verified and its keeping over (kept or not); rejects as `ready`, or when the body fails. */
  readonly finished: Promise<void>;
  /** The blob's size, from the upstream's Content-Length (else known once finished). */
  size: number | undefined;
  readonly #parts: MirrorParts;
  readonly #target: MirrorTarget;
  readonly #name: string;
  readonly #digest: string;
  readonly #spools: Spool;
  /** The spool file, once made. */
  #spool: string | undefined;
  readonly #onSettled: () => void;
  #file: BufferedSpool | undefined;
  /** The upstream's body, while it is read. */
  #body: Readable | undefined;
  #aborted = false;
  #verified = false;
  #failure: Error | undefined;
  #settled = false;
  #readers = 0;
  #wakers: (() => void)[] = [];
  #answered: () => void = () => {};
  #refused: (error: Error) => void = () => {};
  #kept: () => void = () => {};
  #lost: (error: Error) => void = () => {};

  constructor(parts: MirrorParts, target: MirrorTarget, name: string, digest: string, spools: Spool, onSettled: () => void) {
    this.#parts = parts;
    this.#target = target;
    this.#name = name;
    this.#digest = digest;
    this.#spools = spools;
    this.#onSettled = onSettled;
    this.ready = new Promise<void>((resolve, reject) => {
      this.#answered = resolve;
      this.#refused = reject;
    });
    this.finished = new Promise<void>((resolve, reject) => {
      this.#kept = resolve;
      this.#lost = reject;
    });
    // Awaited only by the clients there are: none may be left to hear of a failure.
    this.ready.catch(() => {});
    this.finished.catch(() => {});
  }

  /** Counts a reader in: the spool stays open for it until it leaves. */
  enter(): void {
    this.#readers++;
  }

  /** Counts a reader out; once the download is over, the last one closes the spool. */
  leave(): void {
    this.#readers--;
    this.#release();
  }

  /**
   * The spool as a client reads it, for an answer whose last byte is
   * `last`: the bytes before it as they arrive, `last` itself once the blob
   * is verified. Its reads wait for bytes; they throw what failed the
   * download. Closing it is leaving's business.
   */
  file(last: number): BlobFile {
    return { read: (buffer, offset, length, position) => this.#read(buffer, offset, length, position, last), close: async () => {} };
  }

  /** Resolves once the blob's digest has checked out. @throws what failed the download. */
  async verified(): Promise<void> {
    for (;;) {
      if (this.#failure !== undefined) throw this.#failure;
      if (this.#verified) return;
      await this.#progress();
    }
  }

  /** Stops the download, as a failure: the registry is closing. */
  abort(): void {
    this.#aborted = true;
    this.#body?.destroy(new Error('the registry is closing'));
  }

  /** Runs the download: the upstream's answer, the body into the spool, the blob kept. Never throws. */
  start(): void {
    void this.#run();
  }

  async #run(): Promise<void> {
    let blob: UpstreamBlob | undefined;
    try {
      blob = await upstreamBlob('GET', this.#target, this.#name, this.#digest);
      if (this.#aborted) throw new Error('the registry is closing');
      this.#checkSize(blob.size ?? 0);
      const created = await this.#spools.create(this.#digest);
      this.#spool = created.file;
      this.#file = new BufferedSpool(created.handle);
    } catch (error) {
      blob?.body.destroy();
      return this.#fail(error);
    }
    this.size = blob.size;
    this.#answered();
    try {
      this.#body = blob.body;
      await this.#receive(blob.body, this.#file);
    } catch (error) {
      blob.body.destroy();
      return this.#fail(error);
    }
    this.#verified = true;
    this.#wake();
    await this.#keep();
  }

  /** Writes the body to the spool, hashing it, and checks its length and digest. @throws UPSTREAM_UNAVAILABLE when they are wrong or the body fails; the spool's error. */
  async #receive(body: Readable, file: BufferedSpool): Promise<void> {
    try {
      await this.#spoolBody(body, file);
    } catch (error) {
      // No write may be under way once the spool is removed.
      await file.stop();
      throw error;
    }
  }

  /** #receive's work, without the stop on failure. */
  async #spoolBody(body: Readable, file: BufferedSpool): Promise<void> {
    const algorithm = this.#digest.slice(0, this.#digest.indexOf(':'));
    const hash = createHash(algorithm);
    const { counters } = this.#parts;
    const { prefix } = this.#target.mirror.options;
    const chunks = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = await chunks.next();
      } catch (error) {
        // The upstream's own failure (a timeout) as it is; a closing registry's abort is no upstream's fault.
        throw error instanceof HttpError || this.#aborted ? error : this.#broken('broke off');
      }
      if (next.done) break;
      const chunk = next.value;
      this.#checkSize(file.received + chunk.length);
      hash.update(chunk);
      file.append(chunk);
      counters.upstreamBytes(prefix, chunk.length);
      this.#wake();
      if (file.full) await file.settle();
    }
    if (this.size !== undefined && file.received !== this.size) throw this.#broken('ended early');
    const actual = `${algorithm}:${hash.digest('hex')}`;
    if (actual !== this.#digest) {
      this.#parts.onWarning(`mirror ${prefix}: the upstream sent bytes whose digest is ${actual} for blob ${this.#digest} of ${this.#name}: thrown away`);
      throw upstreamUnavailable(this.#target.mirror.upstream.origin, `it sent blob ${this.#digest} with bytes of another digest`);
    }
    this.size = file.received;
    // A blob reaches the store only flushed, as a pushed one does.
    await file.flush();
  }

  #broken(how: string): HttpError {
    const of = this.size === undefined ? '' : ` of ${this.size}`;
    return upstreamUnavailable(this.#target.mirror.upstream.origin, `its answer for blob ${this.#digest} ${how} after ${this.#file?.received ?? 0}${of} bytes`);
  }

  /** @throws HttpError SIZE_INVALID (413) when `size` is over the blob store's limit. */
  #checkSize(size: number): void {
    const limit = this.#parts.blobs.maxBlobSize;
    if (size > limit) throw new HttpError('SIZE_INVALID', `blob ${this.#digest} is larger than this registry's limit of ${limit} bytes`, { status: 413 });
  }

  /** Puts the verified spool into the blob store and links it in every repository that asked. Never throws: a failure is a warning. */
  async #keep(): Promise<void> {
    const { blobs, store, onWarning } = this.#parts;
    let staged: StagedBlob | undefined;
    try {
      staged = await blobs.put(this.#digest, { file: this.#spool!, link: true });
      let place: LockedAction | undefined = staged.place;
      // Names added while linking are linked too (a Set's iteration sees them).
      for (const name of this.names) {
        await store.linkBlob(name, { digest: this.#digest, size: staged.size }, { actor: 'mirror' }, place === undefined ? {} : { place });
        place = undefined;
      }
      // From here on a request finds the blob linked, with no await between.
      this.#settle();
    } catch (error) {
      this.#settle();
      onWarning(`mirror ${this.#target.mirror.options.prefix}: blob ${this.#digest} was fetched but not kept: ${(error as Error).message}`);
    } finally {
      await staged?.discard();
    }
    await rm(this.#spool!, { force: true }).catch(() => {});
    this.#kept();
  }

  /** Cuts every reader off and throws the download away. */
  async #fail(error: unknown): Promise<void> {
    this.#failure = error instanceof Error ? error : new Error(String(error));
    // Clients still waiting for the answer hear the failure as their answer.
    this.#refused(this.#failure);
    if (isUpstreamError(error)) this.#parts.counters.upstreamError(this.#target.mirror.options.prefix);
    this.#wake();
    this.#settle();
    if (this.#spool !== undefined) await rm(this.#spool, { force: true }).catch(() => {});
    this.#lost(this.#failure);
  }

  /** Out of the running: the next request finds the blob kept, or starts a download of its own. */
  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#onSettled();
    this.#release();
  }

  #release(): void {
    if (!this.#settled || this.#readers > 0 || this.#file === undefined) return;
    const file = this.#file;
    this.#file = undefined;
    file.close();
  }

  async #read(buffer: Buffer, offset: number, length: number, position: number, last: number): Promise<number> {
    for (;;) {
      if (this.#failure !== undefined) throw this.#failure;
      const file = this.#file!;
      const received = file.received;
      if (this.#verified) return position < received ? file.read(buffer, offset, length, position, received) : 0;
      const limit = Math.min(received, last);
      // A piece per few upstream chunks, not per chunk: each costs the client's answer a socket write.
      if (position < limit && limit - position >= Math.min(length, last - position, MIN_READ)) return file.read(buffer, offset, length, position, limit);
      await this.#progress();
    }
  }

  #progress(): Promise<void> {
    return new Promise((resolve) => this.#wakers.push(resolve));
  }

  #wake(): void {
    const wakers = this.#wakers;
    this.#wakers = [];
    for (const wake of wakers) wake();
  }
}
