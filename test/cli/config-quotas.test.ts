// serve's quotas: --quota NAMESPACE=SIZE (REGMETA_QUOTAS, `quotas` in the
// config file as {namespace, maxSize} mappings); a bad entry is one line
// naming the key and the entry; --print-config writes it back readable.

import { describe, expect, it } from 'vitest';
import { parseServeArgs } from '../../src/cli/commands/serve.js';
import { configFile, problems } from './config-files.js';

describe('--quota', () => {
  it('defaults to none', () => {
    expect(parseServeArgs([], {})!.config.quotas).toEqual([]);
  });

  it('reads NAMESPACE=SIZE from repeated flags, a comma-separated variable, and the file', () => {
    expect(parseServeArgs(['--quota', 'acme=10GiB', '--quota', 'beta=512'], {})!.config.quotas).toEqual([
      { namespace: 'acme', maxSize: 10 * 1024 ** 3 },
      { namespace: 'beta', maxSize: 512 },
    ]);
    expect(parseServeArgs([], { REGMETA_QUOTAS: 'acme=1MiB, beta=2MiB' })!.config.quotas).toEqual([
      { namespace: 'acme', maxSize: 1024 ** 2 },
      { namespace: 'beta', maxSize: 2 * 1024 ** 2 },
    ]);
    const file = configFile('regmeta.yaml', 'quotas:\n  - namespace: acme\n    maxSize: 10GiB\n  - { namespace: beta, maxSize: 1000 }\n');
    expect(parseServeArgs(['--config', file], {})!.config.quotas).toEqual([
      { namespace: 'acme', maxSize: 10 * 1024 ** 3 },
      { namespace: 'beta', maxSize: 1000 },
    ]);
  });

  it('refuses a bad entry in one line naming the key and the entry', () => {
    const cases: [string, string][] = [
      ['quotas:\n  - { namespace: acme/app, maxSize: 1GiB }\n', 'entry 1: namespace "acme/app" is not a namespace'],
      ['quotas:\n  - { namespace: acme, maxSize: 10GB }\n', 'entry 1: maxSize "10GB" is not a size'],
      ['quotas:\n  - { namespace: acme, maxSize: 1 }\n  - { namespace: acme, maxSize: 2 }\n', 'entry 2: namespace acme has a quota already'],
      ['quotas:\n  - { namespace: acme, max: 1 }\n', 'entry 1: unknown key "max"'],
      ['quotas: { acme: 1 }\n', 'expected a list of {namespace, maxSize}'],
    ];
    for (const [text, clause] of cases) {
      const lines = problems(() => parseServeArgs(['--config', configFile('regmeta.yaml', text)], {}));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^config \S+regmeta.yaml: quotas: /);
      expect(lines[0]).toContain(clause);
    }
    const [flag] = problems(() => parseServeArgs(['--quota', 'acme'], {}));
    expect(flag).toContain('expected NAMESPACE=SIZE');
  });
});
