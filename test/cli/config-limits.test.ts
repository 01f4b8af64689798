// Config and access files built to exhaust the reader: alias bombs, nesting
// deeper than any real file, thousands of unknown keys. Each is refused by
// the real command at once, in one line, with exit 2, and starts nothing.

import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isOneLineError, regmeta, tempDir } from './run.js';

function file(dir: string, name: string, text: string): string {
  const at = path.join(dir, name);
  writeFileSync(at, text);
  return at;
}

/** Nine anchors of nine aliases each: 9^9 (387 million) strings once expanded. */
const ALIAS_BOMB = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]', ...'bcdefghi'.split('').map((n, i) => `${n}: &${n} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(',')}]`)].join('\n');
const DEEP = 100_000;

/** Runs `regmeta serve` on `args`; its exit code, stderr, and how long it took. */
async function refused(dir: string, args: string[]) {
  const began = Date.now();
  const run = await regmeta(['serve', '--data', path.join(dir, 'data'), ...args]);
  return { ...run, ms: Date.now() - began };
}

/** The shape every case must have: exit 2, one line naming the file, nothing created, in seconds. */
function expectRefused(run: Awaited<ReturnType<typeof refused>>, dir: string, pattern: RegExp): void {
  expect(run.stderr).toMatch(pattern);
  expect(isOneLineError(run.stderr)).toBe(true);
  expect(run.status).toBe(2);
  expect(run.ms).toBeLessThan(10_000);
  expect(existsSync(path.join(dir, 'data'))).toBe(false);
}

describe('a hostile config file', () => {
  it('with an alias bomb', async () => {
    const dir = tempDir('regmeta-hostile-');
    const config = file(dir, 'regmeta.yaml', `${ALIAS_BOMB}\n`);
    expectRefused(await refused(dir, ['--config', config]), dir, /^regmeta serve: config .*regmeta\.yaml: .*aliases/);
  });

  it('nested 100,000 deep, in JSON and in YAML', async () => {
    const dir = tempDir('regmeta-hostile-');
    const json = file(dir, 'regmeta.json', `{"limits": ${'['.repeat(DEEP)}${']'.repeat(DEEP)}}`);
    expectRefused(await refused(dir, ['--config', json]), dir, /^regmeta serve: config .*regmeta\.json: nested deeper than \d+ levels/);
    const yaml = file(dir, 'regmeta.yaml', `listen: ${'['.repeat(DEEP)}${']'.repeat(DEEP)}\n`);
    expectRefused(await refused(dir, ['--config', yaml]), dir, /^regmeta serve: config .*regmeta\.yaml: nested deeper than \d+ levels at line 1, column \d+/);
    const block = file(dir, 'block.yaml', `notify:\n${Array.from({ length: 2000 }, (_, i) => `${' '.repeat(i)}- `).join('\n')}x\n`);
    expectRefused(await refused(dir, ['--config', block]), dir, /^regmeta serve: config .*block\.yaml: nested deeper than \d+ levels/);
  });

  it('with 20,000 unknown keys: one line with the count and the first few', async () => {
    const dir = tempDir('regmeta-hostile-');
    const keys = Array.from({ length: 20_000 }, (_, i) => `option_${i}_${'x'.repeat(24)}`);
    const config = file(dir, 'regmeta.yaml', keys.map((k) => `${k}: 1\n`).join(''));
    const run = await refused(dir, ['--config', config]);
    expectRefused(run, dir, /^regmeta serve: config .*regmeta\.yaml: 20000 unknown keys: option_0_x+, option_1_x+, option_2_x+, option_3_x+, option_4_x+, …$/m);
    // A few stay one line each, with a suggestion.
    const few = file(dir, 'few.yaml', 'listens: :5000\ncolour: blue\n');
    const two = await refused(dir, ['--config', few]);
    expect(two.status).toBe(2);
    expect(two.stderr.trim().split('\n')).toEqual([
      `regmeta serve: config ${few}: listens: unknown key (did you mean listen?)`,
      `regmeta serve: config ${few}: colour: unknown key`,
    ]);
  });
});

describe('a hostile access file', () => {
  it('with an alias bomb, or nested 100,000 deep', async () => {
    const dir = tempDir('regmeta-hostile-');
    const bomb = file(dir, 'access.yaml', `${ALIAS_BOMB}\nrules: []\n`);
    expectRefused(await refused(dir, ['--access', bomb]), dir, /^regmeta serve: access .*access\.yaml: .*aliases/);
    const deep = file(dir, 'access.json', `{"rules": ${'['.repeat(DEEP)}${']'.repeat(DEEP)}}`);
    expectRefused(await refused(dir, ['--access', deep]), dir, /^regmeta serve: access .*access\.json: nested deeper than \d+ levels/);
  });
});
