// Helpers any benchmark here can share: timing, medians, a seeded random
// source, a markdown table, and progress that stays off piped output.

/** The median of `values` (the mean of the middle two for an even count). @throws Error on an empty list. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Which clock timePerOp reads: 'cpu' is the process's user+system CPU time,
 * which leaves out the time the process waits descheduled on a busy shared
 * machine (and also time blocked on I/O such as fsync); 'wall' is elapsed time.
 */
export type Clock = 'cpu' | 'wall';

/** The clock named by the BENCH_CLOCK environment variable, 'cpu' unless it says 'wall'. @throws Error on any other value. */
export function clockFromEnv(): Clock {
  const value = process.env.BENCH_CLOCK ?? 'cpu';
  if (value !== 'cpu' && value !== 'wall') throw new Error(`BENCH_CLOCK must be cpu or wall, not ${value}`);
  return value;
}

/** Runs `fn` once and returns the time it took on `clock`, in microseconds per op for `ops` ops. */
export function timePerOp(ops: number, fn: () => void, clock: Clock = 'cpu'): number {
  if (clock === 'wall') {
    const start = process.hrtime.bigint();
    fn();
    return Number(process.hrtime.bigint() - start) / 1000 / ops;
  }
  const start = process.cpuUsage();
  fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / ops;
}

/** A small seeded generator (mulberry32): the same inputs every run, so runs compare. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random integer in [0, n) from `random`. */
export function randomInt(random: () => number, n: number): number {
  return Math.floor(random() * n);
}

/** A number with `digits` significant digits at most, for table cells. */
export function formatNumber(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 10 ** digits) return value.toFixed(0);
  return String(Number(value.toPrecision(digits)));
}

/** A ratio as "1.23×". */
export function formatRatio(value: number): string {
  return `${value.toFixed(2)}×`;
}

/**
 * A GitHub-flavoured markdown table. `align` gives 'l' or 'r' per column
 * (default: first column left, the rest right, as numbers read best).
 */
export function markdownTable(headers: readonly string[], rows: readonly (readonly string[])[], align?: readonly ('l' | 'r')[]): string {
  const aligns = headers.map((_, i) => align?.[i] ?? (i === 0 ? 'l' : 'r'));
  const widths = headers.map((h, i) => Math.max(3, h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const cell = (text: string, i: number) => (aligns[i] === 'r' ? text.padStart(widths[i]) : text.padEnd(widths[i]));
  const line = (cells: readonly string[]) => `| ${headers.map((_, i) => cell(cells[i] ?? '', i)).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (aligns[i] === 'r' ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w))).join(' | ')} |`;
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

const interactive = process.stderr.isTTY === true;

/** Shows `message` on stderr, overwriting the previous one, only when stderr is a terminal. */
export function progress(message: string): void {
  if (interactive) process.stderr.write(`\r\x1b[K${message}`);
}

/** Clears the progress line (again only on a terminal). */
export function progressDone(): void {
  if (interactive) process.stderr.write('\r\x1b[K');
}
