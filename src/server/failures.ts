// Failed password checks per client address, in fixed windows: after `max`
// failures within a window the address must wait for the window to end.
// This slows password guessing down, and keeps one client from spending the
// password check threads everyone shares.
//
// Only a check that failed counts. So that concurrent guesses cannot overrun
// the limit, an address runs at most as many checks at once as it has
// failures left; further ones wait for a running one to end rather than
// being refused, since any of them may be right.

interface Window {
  count: number;
  resetAt: number;
}

interface Checks {
  running: number;
  waiting: (() => void)[];
}

/** Counts failed attempts per client address and says when one must wait. */
export class FailureLimiter {
  // Insertion order is the order windows started in (a renewed window is
  // deleted and set again), so the first entry is always the one to expire
  // first: evicting it keeps memory bounded at O(1) a request.
  readonly #windows = new Map<string, Window>();
  // Checks running per address, and the attempts waiting for one to end; an
  // entry lives only while either is non-zero, so its size is bounded by the
  // requests in progress.
  readonly #checks = new Map<string, Checks>();

  /**
   * @param max failures an address may have within a window (Infinity: no limit).
   * @param windowMs how long a window lasts, from the first failure in it.
   * @param tracked how many addresses to remember; beyond that the oldest windows are forgotten.
   * @param now the clock, in ms (tests may pass their own).
   */
  constructor(
    readonly max: number,
    readonly windowMs: number,
    readonly tracked: number,
    readonly now: () => number = Date.now,
  ) {}

  /** @returns 0 when `address` has failures left in its window, else the seconds until it has (at least 1). */
  refusal(address: string | undefined): number {
    if (this.max === Infinity) return 0;
    const window = this.#current(clientKey(address ?? ''));
    if (window === undefined || window.count < this.max) return 0;
    return Math.max(1, Math.ceil((window.resetAt - this.now()) / 1000));
  }

  /**
   * Waits until `address` may start a check: while its running checks and
   * its failures fill its limit, for one of those checks to end. An admitted
   * check must be ended with `settle`.
   * @returns 0 when admitted, else the seconds until the address may try again (at least 1).
   */
  async admit(address: string | undefined): Promise<number> {
    if (this.max === Infinity) return 0;
    const key = clientKey(address ?? '');
    for (;;) {
      const wait = this.refusal(address);
      if (wait > 0) return wait;
      const checks = this.#checks.get(key) ?? { running: 0, waiting: [] };
      this.#checks.set(key, checks);
      if ((this.#current(key)?.count ?? 0) + checks.running < this.max) {
        checks.running += 1;
        return 0;
      }
      await new Promise<void>((resolve) => checks.waiting.push(resolve));
    }
  }

  /** Ends a check `admit` let start; a failed one counts against the address. */
  settle(address: string | undefined, failed: boolean): void {
    if (this.max === Infinity) return;
    const key = clientKey(address ?? '');
    if (failed) this.#fail(key);
    const checks = this.#checks.get(key);
    if (checks === undefined) return;
    checks.running = Math.max(0, checks.running - 1);
    // Every waiter looks again: one may start now, or all are refused.
    for (const wake of checks.waiting.splice(0)) wake();
    if (checks.running === 0) this.#checks.delete(key);
  }

  /** How many addresses are remembered now. */
  get size(): number {
    return this.#windows.size;
  }

  /** The address's window, unless it has ended. */
  #current(key: string): Window | undefined {
    const window = this.#windows.get(key);
    return window !== undefined && window.resetAt > this.now() ? window : undefined;
  }

  #fail(key: string): void {
    let window = this.#current(key);
    if (window === undefined) {
      window = { count: 0, resetAt: this.now() + this.windowMs };
      this.#windows.delete(key);
      this.#windows.set(key, window);
      while (this.#windows.size > Math.max(1, this.tracked)) this.#windows.delete(this.#windows.keys().next().value!);
    }
    window.count += 1;
  }
}

/**
 * The key an address is counted under: IPv4 as is (also when mapped into
 * IPv6), IPv6 by its /64, since one client usually holds a whole /64 and
 * could otherwise take a fresh address for every attempt.
 */
export function clientKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  if (!address.includes(':')) return address;
  const [head, tail] = address.split('%')[0].toLowerCase().split('::');
  // An embedded IPv4 address is the last two groups.
  const groups = (text: string | undefined) => (text ? text.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : []);
  const before = groups(head);
  const after = groups(tail);
  const all = tail === undefined ? before : [...before, ...Array<string>(Math.max(0, 8 - before.length - after.length)).fill('0'), ...after];
  return `${all
    .slice(0, 4)
    .map((g) => (parseInt(g, 16) || 0).toString(16))
    .join(':')}::/64`;
}
