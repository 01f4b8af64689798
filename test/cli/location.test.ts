// Where every command finds the registry: --data, --database, REGMETA_DATA,
// REGMETA_DATABASE and the config file of --config or REGMETA_CONFIG, read
// from serve's options table with serve's precedence (flag > environment >
// file > default), and refused in the same words, by every command alike.

import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openStore } from 'regmeta';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Exit } from '../../src/cli/exit.js';
import { COMMANDS } from '../../src/cli/main.js';
import { putImage } from './data.js';
import { isOneLineError, regmeta, tempDir, type Run } from './run.js';

let dir: string;
let config: string;
let digest: string;
let copies = 0;

/** Each command that opens a registry, with arguments that succeed on the one built below. */
const ARGS: Record<string, () => string[]> = {
  import: () => [join(dir, 'source'), '--dry-run'],
  check: () => [],
  gc: () => ['--dry-run'],
  backup: () => [join(dir, `copy-${copies++}.db`)],
  migrate: () => ['--to', 'postgres://regmeta@127.0.0.1:1/none', '--verify-only'],
  repos: () => [],
  tags: () => ['acme/web'],
  lookup: () => ['acme/web', digest],
  history: () => ['acme/web', 'v1'],
  manifest: () => ['acme/web', 'v1'],
  events: () => [],
  notify: () => ['status'],
  stats: () => [],
  usage: () => [],
};

const commands = await Promise.all(COMMANDS.map((c) => c.load()));
/** The commands that take --config and --data (serve reads the whole table: test/cli/config.test.ts). */
const located = commands.filter((c) => c.name !== 'serve' && 'config' in c.options && 'data' in c.options).map((c) => c.name);
const withDatabase = commands.filter((c) => located.includes(c.name) && 'database' in c.options).map((c) => c.name);

beforeAll(() => {
  dir = tempDir('regmeta-location-');
  const data = join(dir, 'registry');
  mkdirSync(data);
  const store = openStore(join(data, 'metadata.db'));
  try {
    digest = putImage(store, data, 'acme/web').digest;
    store.putTag('acme/web', 'v1', { digest }, { actor: 'alice' });
  } finally {
    store.close();
  }
  mkdirSync(join(dir, 'source', 'repositories'), { recursive: true });
  mkdirSync(join(dir, 'source', 'blobs'));
  mkdirSync(join(dir, 'empty'));
  // A relative path in the file is relative to the file.
  config = join(dir, 'regmeta.yaml');
  writeFileSync(config, 'listen: 127.0.0.1:5999\ndata: registry\nlimits: { idleTimeout: 5m }\n');
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** `run` for each of `names`, two at a time (a spawn each, on a small machine). */
async function each(names: string[], run: (name: string) => Promise<Run>): Promise<Map<string, Run>> {
  const runs = new Map<string, Run>();
  for (let i = 0; i < names.length; i += 2) {
    const pair = names.slice(i, i + 2);
    const done = await Promise.all(pair.map(run));
    pair.forEach((name, j) => runs.set(name, done[j]));
  }
  return runs;
}

describe('every command that opens a registry', () => {
  it('is listed here, with arguments to run it by', () => {
    expect([...located].sort()).toEqual(Object.keys(ARGS).sort());
  });

  it("finds it by serve's config file, named by --config or REGMETA_CONFIG, its relative paths the file's", async () => {
    const inspecting = located.filter((name) => name !== 'migrate');
    const byFlag = await each(inspecting, (name) => regmeta([name, ...ARGS[name](), '--config', config]));
    const byEnv = await each(inspecting, (name) => regmeta([name, ...ARGS[name]()], { env: { REGMETA_CONFIG: config } }));
    for (const [name, run] of [...byFlag, ...byEnv]) expect([name, run.status, run.stderr.includes('regmeta ')]).toEqual([name, Exit.OK, false]);
  });

  it('takes --data over REGMETA_DATA over the file, as serve does', async () => {
    const empty = join(dir, 'empty');
    const flag = await regmeta(['repos', '--config', config, '--data', empty], { env: { REGMETA_DATA: join(dir, 'registry') } });
    expect(flag.status).toBe(Exit.DATABASE);
    expect(flag.stderr).toContain(`no database at ${join(empty, 'metadata.db')}`);
    const env = await regmeta(['repos', '--config', config], { env: { REGMETA_DATA: empty } });
    expect(env.status).toBe(Exit.DATABASE);
    const file = await regmeta(['repos', '--config', config, '--json']);
    expect(JSON.parse(file.stdout)).toEqual(['acme/web']);
  });

  it('refuses a REGMETA_DATABASE that is no PostgreSQL URL in the same one line, exit 2, before opening anything', async () => {
    const runs = await each(withDatabase, (name) => regmeta([name, ...ARGS[name]()], { env: { REGMETA_DATABASE: 'mysql://root@localhost/registry' } }));
    for (const [name, run] of runs) {
      expect([name, run.status, isOneLineError(run.stderr)]).toEqual([name, Exit.USAGE, true]);
      expect(run.stderr).toContain(`regmeta ${name}: REGMETA_DATABASE: expected a postgres:// or postgresql:// URL`);
    }
  });

  it('refuses a config file with a mistake in the same one line, exit 2, whichever option the mistake is in', async () => {
    const wrong = join(dir, 'wrong.yaml');
    writeFileSync(wrong, `dta: registry\n`);
    const runs = await each(located, (name) => regmeta([name, ...ARGS[name](), '--config', wrong]));
    for (const [name, run] of runs) {
      expect([name, run.status, isOneLineError(run.stderr)]).toEqual([name, Exit.USAGE, true]);
      expect(run.stderr).toContain(`regmeta ${name}: config ${wrong}: dta: unknown key (did you mean data?)`);
    }
  });
});
