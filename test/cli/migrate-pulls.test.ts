// `regmeta migrate --to postgres://…` keeps a mirror's pull times: copied as
// they are, and read as none from a SQLite file written before they existed
// (schema version 5), which the migration reads without upgrading.

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openStore } from 'regmeta';
import { openPostgresStore } from 'regmeta/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Exit } from '../../src/cli/exit.js';
import { blobDigest } from '../store/fixtures.js';
import { startPostgres, type PostgresServer } from '../store/postgres/server.js';
import { migrate, type Summary } from './migrate-fixture.js';
import { tempDir } from './run.js';

let pg: PostgresServer;
const dirs: string[] = [];
beforeAll(async () => {
  pg = await startPostgres();
});
afterAll(async () => {
  await pg?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A SQLite registry in a new directory with hub/a pulled at 1000 ms and hub/b never pulled. */
function source(): string {
  const data = tempDir('regmeta-migrate-pulls-');
  dirs.push(data);
  const store = openStore(join(data, 'metadata.db'));
  try {
    store.linkBlob('hub/a', { digest: blobDigest('a'), size: 1 }, { actor: 'mirror' });
    store.linkBlob('hub/b', { digest: blobDigest('b'), size: 2 }, { actor: 'mirror' });
    store.recordPulls([{ repo: 'hub/a', at: new Date(1000) }]);
  } finally {
    store.close();
  }
  return data;
}

async function pullsIn(url: string): Promise<Record<string, number | undefined>> {
  const store = await openPostgresStore(url);
  try {
    return Object.fromEntries((await store.namespaceUsage('hub')).map((r) => [r.name, r.pulledAt?.getTime()]));
  } finally {
    await store.close();
  }
}

describe('regmeta migrate and the pulls of cached repositories', () => {
  it('copies each repository\'s last pull', async () => {
    const data = source();
    const url = await pg.createDatabase();
    const run = await migrate(['--data', data, '--to', url, '--json']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(Exit.OK);
    expect((JSON.parse(run.stdout) as Summary).mismatches).toEqual([]);
    expect(await pullsIn(url)).toEqual({ 'hub/a': 1000, 'hub/b': undefined });
  }, 60_000);

  it('reads a version-5 file, which has no pulls, as never pulled, and leaves the file as it was', async () => {
    const data = source();
    const db = new Database(join(data, 'metadata.db'));
    db.exec('ALTER TABLE repository DROP COLUMN pulled_at; PRAGMA user_version = 5');
    db.close();
    const url = await pg.createDatabase();
    const run = await migrate(['--data', data, '--to', url, '--json']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(Exit.OK);
    expect((JSON.parse(run.stdout) as Summary).mismatches).toEqual([]);
    expect(await pullsIn(url)).toEqual({ 'hub/a': undefined, 'hub/b': undefined });
    const after = new Database(join(data, 'metadata.db'), { readonly: true });
    try {
      expect(after.pragma('user_version', { simple: true })).toBe(5);
    } finally {
      after.close();
    }
  }, 60_000);
});
