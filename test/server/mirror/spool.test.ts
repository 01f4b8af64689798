// The spool directories of processes sharing one data directory: each
// process spools in a directory of its own, and at first use removes only
// what processes known to be gone left (a dead pid, a pid reused by another
// process), and of the others only what is a day old.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Spool, sweep } from '../../../src/server/mirror/spool.js';
import { processIdentity } from '../../../src/store/sqlite/process-identity.js';

const dir = mkdtempSync(join(tmpdir(), 'regmeta-spool-'));
const DIGEST = `sha256:${'ab'.repeat(32)}`;
const TWO_DAYS_AGO = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `<root>/<name>` with an owner marker of `owner` and the files `files`; each made two days old when `old`. */
function leftBy(root: string, name: string, owner: string | undefined, files: Record<string, boolean>, old = false): string {
  const where = join(root, name);
  mkdirSync(where, { recursive: true });
  if (owner !== undefined) writeFileSync(join(where, '.owner'), owner);
  for (const [file, stale] of Object.entries(files)) {
    writeFileSync(join(where, file), 'spooled bytes');
    if (stale) utimesSync(join(where, file), TWO_DAYS_AGO, TWO_DAYS_AGO);
  }
  if (old) utimesSync(where, TWO_DAYS_AGO, TWO_DAYS_AGO);
  return where;
}

const list = (where: string) => (existsSync(where) ? readdirSync(where).sort() : undefined);

describe('spool directories on a shared data directory', () => {
  it('gives each process a directory of its own: a second one starting leaves the first one\'s files alone', async () => {
    const data = mkdtempSync(join(dir, 'data-'));
    const first = new Spool(data);
    const second = new Spool(data);
    const a = await first.create(DIGEST);
    await a.handle.write('half of a blob');
    const b = await second.create(DIGEST);
    expect(a.file).not.toBe(b.file);
    expect(existsSync(a.file)).toBe(true);
    await Promise.all([a.handle.close(), b.handle.close()]);
    rmSync(a.file);
    rmSync(b.file);
    // Closed with nothing running: its directory goes.
    await first.close(true);
    expect(list(join(data, 'mirror'))).toHaveLength(1);
  });

  it('makes its directory again when another process took it for left over', async () => {
    const data = mkdtempSync(join(dir, 'data-'));
    const spool = new Spool(data);
    const first = await spool.create(DIGEST);
    await first.handle.close();
    rmSync(join(data, 'mirror'), { recursive: true });
    const again = await spool.create(DIGEST);
    await again.handle.close();
    expect(existsSync(again.file)).toBe(true);
  });

  it('removes what gone processes left, and of the others only what is a day old', async () => {
    const root = join(mkdtempSync(join(dir, 'data-')), 'mirror');
    const mine = processIdentity();
    expect(mine).not.toBeNull();
    const [boot, namespace, pid] = mine!.split('|');
    const exited = spawnSync(process.execPath, ['-e', '']).pid!;
    const dead = leftBy(root, 'dead', `${boot}|${namespace}|${exited}|12345`, { fresh: false });
    // This process's pid, but another start time: a process that died and whose pid was given again.
    const reused = leftBy(root, 'reused', `${boot}|${namespace}|${pid}|1`, { fresh: false });
    const alive = leftBy(root, 'alive', mine!, { old: true, fresh: false }, true);
    const aliveIdle = leftBy(root, 'alive-idle', mine!, {}, true);
    const elsewhere = leftBy(root, 'elsewhere', `another-boot|${namespace}|${pid}|1`, { old: true, fresh: false });
    const elsewhereIdle = leftBy(root, 'elsewhere-idle', 'another-boot|pid:[1]|7|1', {}, true);
    const elsewhereNew = leftBy(root, 'elsewhere-new', 'another-boot|pid:[1]|7|1', {});
    const unmarked = leftBy(root, 'unmarked', undefined, { old: true, fresh: false });
    writeFileSync(join(root, 'legacy-old'), 'spooled bytes');
    utimesSync(join(root, 'legacy-old'), TWO_DAYS_AGO, TWO_DAYS_AGO);
    writeFileSync(join(root, 'legacy-new'), 'spooled bytes');

    await sweep(root, 'own');

    expect(list(dead)).toBeUndefined();
    expect(list(reused)).toBeUndefined();
    expect(list(alive)).toEqual(['.owner', 'fresh']);
    expect(list(aliveIdle)).toEqual(['.owner']);
    expect(list(elsewhere)).toEqual(['.owner', 'fresh']);
    expect(list(elsewhereIdle)).toBeUndefined();
    expect(list(elsewhereNew)).toEqual(['.owner']);
    expect(list(unmarked)).toEqual(['fresh']);
    expect(list(root)).toContain('legacy-new');
    expect(list(root)).not.toContain('legacy-old');
  });
});
