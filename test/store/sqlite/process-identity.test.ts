// An upload claim on a SQLite store names its holder process; another
// process takes it at once only when it knows that process has exited (the
// pid gone, or reused by a process started later), never when it cannot
// tell (another boot, another pid namespace, no holder recorded).

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type MetadataStore } from 'regmeta';
import { tempDir } from '../fixtures.js';

let dir: string;
let remove: () => void;
let store: MetadataStore;
let file: string;
beforeEach(() => {
  ({ dir, remove } = tempDir());
  file = join(dir, 'metadata.db');
  store = openStore(file);
});
afterEach(() => {
  store.close();
  remove();
});

/** A session claimed by 'other' for a minute, its holder set to `holder` behind the store's back. */
function claimedBy(holder: string | null): string {
  const { id } = store.uploads.open('acme/app', '10.0.0.1', 0);
  const db = new Database(file);
  try {
    db.prepare("UPDATE upload_session SET owner = 'other', lease_until = ?, holder = ? WHERE id = ?").run(Date.now() + 60_000, holder, id);
  } finally {
    db.close();
  }
  return id;
}

const boot = () => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
const namespace = () => spawnSync('readlink', ['/proc/self/ns/pid'], { encoding: 'utf8' }).stdout.trim();
/** The pid of a process that has exited (and been reaped). */
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;
/** The start time of this process, as /proc/<pid>/stat writes it. */
const ownStart = () => readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[19];

describe.runIf(process.platform === 'linux')('a SQLite upload claim', () => {
  it('of a process that has exited on this machine is taken at once', () => {
    const id = claimedBy(`${boot()}|${namespace()}|${deadPid()}|1`);
    expect(store.uploads.claim('acme/app', id, 'me', 60_000)).toEqual({ size: 0 });
    expect(store.uploads.renew(id, 'me', 60_000)).toBe(true);
  });

  it('of a pid now held by a process started at another time is taken at once', () => {
    const id = claimedBy(`${boot()}|${namespace()}|${process.pid}|1`);
    expect(store.uploads.claim('acme/app', id, 'me', 60_000)).toEqual({ size: 0 });
  });

  it('of a live process stays its own', () => {
    const id = claimedBy(`${boot()}|${namespace()}|${process.pid}|${ownStart()}`);
    expect(store.uploads.claim('acme/app', id, 'me', 60_000)).toBe('busy');
  });

  it('that this process cannot judge lasts its lease: another boot, another pid namespace, no holder, a holder it cannot read', () => {
    for (const holder of [
      `00000000-0000-0000-0000-000000000000|${namespace()}|${deadPid()}|1`,
      `${boot()}|pid:[1]|${deadPid()}|1`,
      null,
      'garbage',
    ]) {
      expect(store.uploads.claim('acme/app', claimedBy(holder), 'me', 60_000)).toBe('busy');
    }
  });
});
