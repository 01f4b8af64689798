// The batched request log of `regmeta serve`.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { FLUSH_AFTER_MS, FLUSH_BYTES, LineBuffer } from '../../src/cli/log-buffer.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('LineBuffer', () => {
  it('writes gathered lines in one write, in order, once the delay has passed', () => {
    vi.useFakeTimers();
    const writes: string[] = [];
    const log = new LineBuffer((text) => writes.push(text));
    log.line('a');
    log.line('b');
    expect(writes).toEqual([]);
    vi.advanceTimersByTime(FLUSH_AFTER_MS);
    expect(writes).toEqual(['a\nb\n']);
    log.line('c');
    log.close();
    expect(writes).toEqual(['a\nb\n', 'c\n']);
  });

  it('writes at once when enough has gathered, and flushes on demand', () => {
    const writes: string[] = [];
    const log = new LineBuffer((text) => writes.push(text));
    log.line('x'.repeat(FLUSH_BYTES));
    expect(writes).toHaveLength(1);
    log.line('y');
    log.flush();
    log.flush();
    expect(writes).toEqual([`${'x'.repeat(FLUSH_BYTES)}\n`, 'y\n']);
    log.close();
  });
});
