// The log of `regmeta serve` on stdout, written in batches.
//
// Why: stdout is written synchronously when it is a file or a pipe, so a
// line per request would cost a write(2) per request, a large part of a
// cheap request's time. Lines wait at most FLUSH_AFTER_MS (or until
// FLUSH_BYTES have gathered) and go out in one write; the command's own lines
// take the same buffer and flush it, warnings and faults (stderr) flush it
// first, so the order of events stays, and the process flushes it on its way out.

/** How long a line may wait, in ms: short enough for someone tailing the log. */
export const FLUSH_AFTER_MS = 100;
/** How much may gather before a write regardless. */
export const FLUSH_BYTES = 64 * 1024;

/** Lines for one writer, flushed on a timer, on size, and on demand. */
export class LineBuffer {
  readonly #write: (text: string) => void;
  #pending = '';
  #timer: NodeJS.Timeout | undefined;
  readonly #onExit = () => this.flush();

  /** Lines go to `write` (default: stdout), and whatever is pending is flushed when the process exits. */
  constructor(write: (text: string) => void = (text) => process.stdout.write(text)) {
    this.#write = write;
    process.on('exit', this.#onExit);
  }

  /** Adds one line (without its newline). */
  line(text: string): void {
    this.write(`${text}\n`);
  }

  /** Adds text that ends in a newline: one line or several (what pino hands its destination). */
  write(text: string): void {
    this.#pending += text;
    if (this.#pending.length >= FLUSH_BYTES) this.flush();
    // Unref'd: a pending line never keeps the process alive; the exit handler writes it.
    else this.#timer ??= setTimeout(() => this.flush(), FLUSH_AFTER_MS).unref();
  }

  /** Writes what is pending now. */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending === '') return;
    const text = this.#pending;
    this.#pending = '';
    this.#write(text);
  }

  /** Flushes and stops listening for the process's exit. */
  close(): void {
    this.flush();
    process.off('exit', this.#onExit);
  }
}
