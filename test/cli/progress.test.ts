// The progress bar: drawn only on a terminal, with counts, rate and time left.

import { describe, expect, it } from 'vitest';
import { Progress } from '../../src/cli/progress.js';

function stream(isTTY: boolean) {
  const written: string[] = [];
  return { isTTY, columns: 100, written, write: (text: string) => written.push(text) > 0 };
}

describe('Progress', () => {
  it('draws counts, percentage, rate and time left on a terminal', () => {
    const out = stream(true);
    const progress = new Progress('import', { total: 200, stream: out });
    progress.update(50);
    const line = progress.render(Date.now() + 10_000);
    expect(line).toMatch(/^import \[#+\.+\] 50\/200 25% /);
    expect(line).toMatch(/\d+(\.\d)?\/s/);
    expect(line).toMatch(/left$/);
    progress.finish();
    expect(out.written.join('')).toContain('50/200');
    expect(out.written.at(-1)).toBe('\n');
  });

  it('counts without a bar when the total is unknown', () => {
    const progress = new Progress('gc', { stream: stream(true), unit: 'B' });
    progress.tick(3);
    expect(progress.render()).toMatch(/^gc 3 B [\d.]+ B\/s$/);
  });

  it('writes nothing when the stream is not a terminal', () => {
    const out = stream(false);
    const progress = new Progress('check', { total: 10, stream: out });
    for (let i = 0; i < 10; i++) progress.tick();
    progress.finish();
    expect(out.written).toEqual([]);
  });
});
