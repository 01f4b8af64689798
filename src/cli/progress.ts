// A progress bar on stderr for work that can take more than a second: counts,
// rate and time left. Only on a terminal: piped or logged stderr stays clean
// for the one-line errors.

/** Where the bar is drawn; process.stderr by default. */
interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): boolean;
}

const REDRAW_MS = 100;

/** A progress bar; every method is a no-op when the stream is not a terminal. */
export class Progress {
  readonly #stream: ProgressStream;
  readonly #enabled: boolean;
  readonly #label: string;
  readonly #unit: string;
  #total: number | undefined;
  #done = 0;
  #started = Date.now();
  #drawn = 0;

  /** `total` may be unknown (a counter without a bar) and set later. */
  constructor(label: string, options: { total?: number; unit?: string; stream?: ProgressStream } = {}) {
    this.#stream = options.stream ?? process.stderr;
    this.#enabled = this.#stream.isTTY === true;
    this.#label = label;
    this.#unit = options.unit ?? '';
    this.#total = options.total;
  }

  set total(total: number | undefined) {
    this.#total = total;
  }

  /** Counts `n` more done. */
  tick(n = 1): void {
    this.update(this.#done + n);
  }

  /** Sets how many are done. */
  update(done: number): void {
    this.#done = done;
    if (!this.#enabled) return;
    const now = Date.now();
    if (now - this.#drawn < REDRAW_MS) return;
    this.#drawn = now;
    this.#draw(now);
  }

  /** Draws the final state and ends the line. */
  finish(): void {
    if (!this.#enabled) return;
    this.#draw(Date.now());
    this.#stream.write('\n');
  }

  /** The line as drawn now; exported for tests through render(). */
  render(now = Date.now()): string {
    const seconds = Math.max((now - this.#started) / 1000, 0.001);
    const rate = this.#done / seconds;
    const unit = this.#unit ? ` ${this.#unit}` : '';
    const rateText = `${rate >= 100 ? Math.round(rate) : rate.toFixed(1)}${unit}/s`;
    const total = this.#total;
    if (total === undefined || total <= 0) return `${this.#label} ${this.#done}${unit} ${rateText}`;
    const fraction = Math.min(this.#done / total, 1);
    const left = rate > 0 ? Math.max(total - this.#done, 0) / rate : 0;
    const tail = ` ${this.#done}/${total}${unit} ${Math.floor(fraction * 100)}% ${rateText} ${formatSeconds(left)} left`;
    const width = Math.max(10, Math.min(40, (this.#stream.columns ?? 80) - this.#label.length - tail.length - 4));
    const full = Math.round(fraction * width);
    return `${this.#label} [${'#'.repeat(full)}${'.'.repeat(width - full)}]${tail}`;
  }

  #draw(now: number): void {
    // \r plus clear-to-end-of-line redraws in place.
    this.#stream.write(`\r${this.render(now)}\x1b[K`);
  }
}

function formatSeconds(seconds: number): string {
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
