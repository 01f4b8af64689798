// A download's bytes on their way to its spool file. The most recent ones
// stay in memory, so that clients keeping up with the upstream copy them
// from there instead of reading the file back; they are written to the file
// in batches, in the background, so that the upstream is read on while a
// batch is written. A client that falls behind the window reads the file:
// a slow client costs no memory.

import type { FileHandle } from 'node:fs/promises';

const MiB = 1 << 20;
/** The most recent bytes kept in memory once written (more while a write is under way). */
const WINDOW = 16 * MiB;
/** Bytes gathered before a write: one system call per batch, not per upstream chunk. */
const BATCH = MiB;
/** Bytes received but not yet written past which the upstream waits for the file. */
const MAX_UNWRITTEN = 8 * MiB;
const EMPTY = Buffer.alloc(0);

/** The spool file of one download and its window of recent bytes. */
export class BufferedSpool {
  readonly #handle: FileHandle;
  /** The window: upstream chunks from `#head` on, each starting at the offset in `#starts`. */
  #chunks: Buffer[] = [];
  #starts: number[] = [];
  #head = 0;
  /** Where the window starts: every byte before it is written. */
  #windowStart = 0;
  /** Chunks not yet handed to a write. */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #received = 0;
  #written = 0;
  /** The write under way; it never rejects (its failure is kept in `#error`). */
  #writing: Promise<void> | undefined;
  #error: Error | undefined;
  /** Set once the body is over: every pending byte is written, however few. */
  #draining = false;

  constructor(handle: FileHandle) {
    this.#handle = handle;
  }

  /** The bytes received so far. */
  get received(): number {
    return this.#received;
  }

  /** True when the upstream should wait for the file (`settle`) before its next chunk. */
  get full(): boolean {
    return this.#received - this.#written > MAX_UNWRITTEN;
  }

  /** Takes the next chunk of the body; the spool keeps a reference to it. @throws a failed write's error. */
  append(chunk: Buffer): void {
    if (this.#error !== undefined) throw this.#error;
    this.#chunks.push(chunk);
    this.#starts.push(this.#received);
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    this.#received += chunk.length;
    this.#schedule();
  }

  /** Resolves once few enough bytes are unwritten. @throws a failed write's error. */
  async settle(): Promise<void> {
    while (this.#writing !== undefined && this.full) await this.#writing;
    if (this.#error !== undefined) throw this.#error;
  }

  /** Writes every byte received and flushes the file to disk. @throws the write's or the flush's error. */
  async flush(): Promise<void> {
    this.#draining = true;
    this.#schedule();
    while (this.#writing !== undefined) await this.#writing;
    if (this.#error !== undefined) throw this.#error;
    await this.#handle.sync();
  }

  /** Writes nothing more, and resolves once the write under way is over: the download failed. */
  async stop(): Promise<void> {
    this.#pending = [];
    this.#pendingBytes = 0;
    while (this.#writing !== undefined) await this.#writing;
  }

  /**
   * Reads bytes from `position` (below `end`, at most `received`) into
   * `buffer`: from memory inside the window, else from the file (up to the
   * window, all of it written). @returns the count read, more than 0.
   * @throws the file's read error.
   */
  async read(buffer: Buffer, offset: number, length: number, position: number, end: number): Promise<number> {
    const want = Math.min(length, end - position);
    if (position >= this.#windowStart) return this.#copy(buffer, offset, want, position);
    return (await this.#handle.read(buffer, offset, Math.min(want, this.#windowStart - position), position)).bytesRead;
  }

  /** Lets go of the window and closes the file; only once nothing writes or reads. */
  close(): void {
    this.#chunks = [];
    this.#starts = [];
    this.#head = 0;
    this.#windowStart = this.#written;
    void this.#handle.close().catch(() => {});
  }

  #copy(buffer: Buffer, offset: number, length: number, position: number): number {
    const chunks = this.#chunks;
    const starts = this.#starts;
    // The chunk holding `position`: the last one starting at or before it.
    let low = this.#head;
    let high = chunks.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (starts[middle] <= position) low = middle;
      else high = middle - 1;
    }
    let copied = 0;
    for (let i = low; copied < length && i < chunks.length; i++) {
      const from = position + copied - starts[i];
      copied += chunks[i].copy(buffer, offset + copied, from, Math.min(chunks[i].length, from + length - copied));
    }
    return copied;
  }

  /** Starts a write of the pending chunks when there are enough of them and none is under way. */
  #schedule(): void {
    if (this.#writing !== undefined || this.#error !== undefined || this.#pendingBytes === 0) return;
    if (this.#pendingBytes < BATCH && !this.#draining) return;
    const buffers = this.#pending;
    const bytes = this.#pendingBytes;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#writing = this.#write(buffers, this.#written).then(
      () => {
        this.#written += bytes;
        this.#writing = undefined;
        this.#trim();
        this.#schedule();
      },
      (error: unknown) => {
        this.#error = error instanceof Error ? error : new Error(String(error));
        this.#writing = undefined;
      },
    );
  }

  async #write(buffers: Buffer[], position: number): Promise<void> {
    while (buffers.length > 0) {
      // A short write (more buffers than one system call takes) goes on from where it stopped.
      let { bytesWritten } = await this.#handle.writev(buffers, position);
      position += bytesWritten;
      let done = 0;
      while (done < buffers.length && bytesWritten >= buffers[done].length) bytesWritten -= buffers[done++].length;
      buffers = buffers.slice(done);
      if (bytesWritten > 0) buffers[0] = buffers[0].subarray(bytesWritten);
    }
  }

  /** Drops the oldest chunks that are written and outside the window. */
  #trim(): void {
    const chunks = this.#chunks;
    while (this.#head < chunks.length) {
      const end = this.#starts[this.#head] + chunks[this.#head].length;
      if (end > this.#written || this.#received - end < WINDOW) break;
      chunks[this.#head++] = EMPTY;
      this.#windowStart = end;
    }
    if (this.#head > 1024 && this.#head * 2 > chunks.length) {
      this.#chunks = chunks.slice(this.#head);
      this.#starts = this.#starts.slice(this.#head);
      this.#head = 0;
    }
  }
}
