// Failed password checks per client address, in fixed windows: after
// `max` failures within a window the address must wait for the window to end.
// This slows password guessing down, and keeps one client from spending the
// password check threads everyone shares.

/** Counts failed attempts per client address and says when one must wait. */
export class FailureLimiter {
  // Insertion order is the order windows started in (a renewed window is
  // deleted and set again), so the first entry is always the one to expire
  // first: evicting it keeps memory bounded at O(1) a request.
  readonly #entries = new Map<string, { count: number; resetAt: number }>();

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

  /**
   * Counts an attempt from `address` as failed until `refund` says otherwise:
   * counting before the check, not after it, stops a client from starting
   * many checks at once before any has failed.
   * @returns 0 when the attempt may go ahead, else the seconds until it may (at least 1).
   */
  charge(address: string | undefined): number {
    if (this.max === Infinity) return 0;
    const key = clientKey(address ?? '');
    const now = this.now();
    let entry = this.#entries.get(key);
    if (entry === undefined || entry.resetAt <= now) {
      entry = { count: 0, resetAt: now + this.windowMs };
      this.#entries.delete(key);
      this.#entries.set(key, entry);
      while (this.#entries.size > Math.max(1, this.tracked)) this.#entries.delete(this.#entries.keys().next().value!);
    }
    if (entry.count >= this.max) return Math.max(1, Math.ceil((entry.resetAt - now) / 1000));
    entry.count += 1;
    return 0;
  }

  /** Takes back one charged attempt: it succeeded, or never ran. */
  refund(address: string | undefined): void {
    const entry = this.#entries.get(clientKey(address ?? ''));
    if (entry !== undefined && entry.count > 0) entry.count -= 1;
  }

  /** How many addresses are remembered now. */
  get size(): number {
    return this.#entries.size;
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
