// FaultsOnce: each subject reported once, in a bounded memory.

import { describe, expect, it } from 'vitest';
import { FaultsOnce } from '../../src/server/faults.js';

describe('FaultsOnce', () => {
  it('reports a subject once, and again only after it has been forgotten to make room', () => {
    const reported: unknown[] = [];
    const faults = new FaultsOnce((error) => reported.push(error), 2);
    faults.once('a', () => 'a1');
    faults.once('a', () => 'a2');
    faults.once('b', () => 'b1');
    expect(reported).toEqual(['a1', 'b1']);
    faults.once('c', () => 'c1'); // full: 'a', the oldest, is forgotten
    faults.once('b', () => 'b2');
    faults.once('a', () => 'a3');
    expect(reported).toEqual(['a1', 'b1', 'c1', 'a3']);
  });

  it('neither builds the fault for a subject already reported nor lets a failing logger through', () => {
    let built = 0;
    const faults = new FaultsOnce(() => {
      throw new Error('the log is gone');
    });
    expect(() => faults.once('x', () => ++built)).not.toThrow();
    faults.once('x', () => ++built);
    expect(built).toBe(1);
  });
});
