// The `regmeta` command put on the PATH from a clone, the ways the README
// gives besides a global install of the tarball (test/package/node-lines.test.ts
// covers that one): `npm link`, and `npx --package=<clone>`. Both point at this
// checkout, whose dist/ `npm test` has built; scripts are off so that neither
// rebuilds it under other tests' running processes.

import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };

let work: string;
let env: NodeJS.ProcessEnv;

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'regmeta-command-'));
  // Without what an enclosing `npm test` set (npm_*): each npm below reads its own configuration, and a cache of its own.
  env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('npm_')));
  env.npm_config_cache = path.join(work, 'cache');
  env.npm_config_ignore_scripts = 'true';
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('the regmeta command from a clone', () => {
  it('`npm link` puts it in the global prefix: <prefix>/bin/regmeta --version', async () => {
    const prefix = path.join(work, 'prefix');
    await run('npm', ['link', '--no-audit', '--no-fund'], { cwd: ROOT, env: { ...env, npm_config_prefix: prefix } });
    const { stdout } = await run(path.join(prefix, 'bin/regmeta'), ['--version'], { env });
    expect(stdout).toBe(`${version}\n`);
  });

  it('`npx --package=<clone> regmeta` runs it from any directory', async () => {
    const elsewhere = path.join(work, 'elsewhere');
    mkdirSync(elsewhere);
    const { stdout } = await run('npx', ['--yes', `--package=${ROOT}`, 'regmeta', '--version'], { cwd: elsewhere, env });
    expect(stdout).toBe(`${version}\n`);
  });
});
