// `regmeta --version` and `-v`, through the real command: the version of the
// package it runs from, read from its package.json.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { regmeta } from './run.js';

const { version } = JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };

describe('regmeta --version', () => {
  it('prints the package version and exits 0, as --version and as -v', async () => {
    const runs = await Promise.all([regmeta(['--version']), regmeta(['-v'])]);
    for (const run of runs) {
      expect([run.status, run.stdout, run.stderr]).toEqual([0, `${version}\n`, '']);
    }
  });

  it('is listed in the top-level help', async () => {
    const run = await regmeta(['--help']);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^ {2}-v, --version +print the version and exit$/m);
    expect(run.stdout).toMatch(/^ {2}-h, --help +print this help and exit$/m);
  });
});
