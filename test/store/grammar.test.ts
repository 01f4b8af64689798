// The patterns of rules (repositories and tags) and the namespace of a name:
// the one grammar that access rules, retention, immutable tags and quotas share.

import { describe, expect, it } from 'vitest';
import { compilePattern, compileTagPattern, namespaceOf } from '../../src/store/grammar.js';

const matches = (compiled: RegExp | string, text: string) => {
  if (typeof compiled === 'string') throw new Error(compiled);
  return compiled.test(text);
};

describe('compileTagPattern', () => {
  it('matches any run with *, one character with ?, and the rest literally', () => {
    expect(matches(compileTagPattern('v*'), 'v1.2.3')).toBe(true);
    expect(matches(compileTagPattern('v*'), 'v')).toBe(true);
    expect(matches(compileTagPattern('v*'), 'dev')).toBe(false);
    expect(matches(compileTagPattern('latest'), 'latest')).toBe(true);
    expect(matches(compileTagPattern('latest'), 'latest2')).toBe(false);
    expect(matches(compileTagPattern('1.?'), '1.5')).toBe(true);
    expect(matches(compileTagPattern('1.?'), '1x5')).toBe(false);
    expect(matches(compileTagPattern('1.?'), '1.15')).toBe(false);
    expect(matches(compileTagPattern('*-rc*'), '2.0-rc1')).toBe(true);
  });

  it('refuses what no tag could contain, with a message', () => {
    for (const bad of ['', 'a/b', 'a b', '(x)', 'x'.repeat(129), '[0-9]', 'a+']) {
      expect(compileTagPattern(bad)).toMatch(/is not a tag pattern/);
    }
  });
});

describe('compilePattern', () => {
  it('matches within a segment with *, whole segments with **', () => {
    expect(matches(compilePattern('acme/*'), 'acme/app')).toBe(true);
    expect(matches(compilePattern('acme/*'), 'acme/team/app')).toBe(false);
    expect(matches(compilePattern('acme/**'), 'acme/team/app')).toBe(true);
    expect(matches(compilePattern('**'), 'x/y/z')).toBe(true);
    expect(compilePattern('Acme/*')).toMatch(/not a pattern segment/);
  });
});

describe('namespaceOf', () => {
  it('is the first path component, or the whole one-component name', () => {
    expect(namespaceOf('acme/team/app')).toBe('acme');
    expect(namespaceOf('acme/app')).toBe('acme');
    expect(namespaceOf('alpine')).toBe('alpine');
    expect(namespaceOf('docker.io/library/alpine')).toBe('docker.io');
  });
});
