// Units for people and options: durations (`24h`, `1h30m`) and counts,
// with nothing else to import, so any command and the config loader can use them.

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** A duration such as `24h`, `30m`, `1h30m`, `7d` or `0` in milliseconds; undefined when it is not one. */
export function durationMs(text: string): number | undefined {
  if (text === '0') return 0;
  const parts = /^(?:\d+(?:ms|s|m|h|d|w))+$/.test(text) ? text.match(/\d+(?:ms|s|m|h|d|w)/g) : null;
  if (!parts) return undefined;
  return parts.reduce((sum, part) => {
    const [, n, unit] = /^(\d+)(\D+)$/.exec(part)!;
    return sum + Number(n) * UNITS[unit];
  }, 0);
}

/** Milliseconds as the shortest duration durationMs reads back: 90000 → `1m30s`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0';
  let rest = ms;
  let text = '';
  for (const unit of ['w', 'd', 'h', 'm', 's', 'ms']) {
    const n = Math.floor(rest / UNITS[unit]);
    if (n > 0) text += `${n}${unit}`;
    rest -= n * UNITS[unit];
  }
  return text;
}

/** A count with its noun, singular for one: `1 manifest`, `2 manifests`, `0 repositories` (with `plural`). */
export function counted(n: number, noun: string, plural = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`;
}
