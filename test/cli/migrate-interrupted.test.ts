// `regmeta migrate` SIGKILLed mid-copy into a real PostgreSQL: the half-copied
// database refused by every store open, in one line; the migration run again
// goes on where it stopped, or stops in one line when something wrote there.

import { spawn } from 'node:child_process';
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import postgres from 'postgres';
import { openStore } from 'regmeta';
import { openPostgresStore } from 'regmeta/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Exit } from '../../src/cli/exit.js';
import { startPostgres, type PostgresServer } from '../store/postgres/server.js';
import { bulkStore, migrate, targetState, type Summary } from './migrate-fixture.js';
import { BIN, isOneLineError, tempDir, type Run } from './run.js';

let pg: PostgresServer;

beforeAll(async () => {
  pg = await startPostgres();
});

afterAll(async () => {
  await pg?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `regmeta ...args`, SIGKILLed if it has not exited within `ms`: what it printed, its exit code, and whether it had to be killed. */
function bounded(args: string[], ms: number): Promise<Run & { timedOut: boolean; seconds: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, ms);
    child.once('error', reject);
    child.once('close', (status) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      const stderr = Buffer.concat(err).toString('utf8');
      resolve({ status, stdout: stdoutBytes.toString('utf8'), stdoutBytes, stderr, timedOut, seconds: (Date.now() - started) / 1000 });
    });
  });
}

/** Starts `regmeta migrate` of the store in `dir` into `target`, a few rows a batch, and SIGKILLs it once it has copied some rows. */
async function killMidCopy(dir: string, target: string): Promise<Awaited<ReturnType<typeof targetState>>> {
  const child = spawn(process.execPath, [BIN, 'migrate', '--data', dir, '--to', target, '--batch', '3'], { stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  let copied = 0;
  // Polls the target: the kill comes once a batch has committed there.
  for (let waited = 0; copied === 0 && waited < 30_000; waited += 10) {
    await sleep(10);
    copied = (await targetState(target).catch(() => ({ copied: 0 }))).copied;
  }
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  const killed = await targetState(target);
  expect(killed.finished).toBe(false);
  expect(killed.copied).toBeGreaterThan(0);
  return killed;
}

describe('an interrupted migration', () => {
  it('continues where a SIGKILL stopped it when run again: every row copied once, verified', async () => {
    const dir = tempDir('regmeta-migrate-bulk-');
    try {
      bulkStore(dir, 400);
      const target = await pg.createDatabase();
      const killed = await killMidCopy(dir, target);

      // Half a registry: serve, the other commands and the store's API refuse it, in one line, and write nothing.
      const served = await bounded(['serve', '--listen', '127.0.0.1:0', '--data', dir, '--database', target], 20_000);
      expect(served.timedOut).toBe(false);
      expect(served.status).toBe(Exit.DATABASE);
      expect(isOneLineError(served.stderr)).toBe(true);
      expect(served.stderr).toContain('that has not finished');
      for (const command of [['tags', 'bulk/app'], ['stats']]) {
        const run = await bounded([...command, '--data', dir, '--database', target], 20_000);
        expect(run.status).toBe(Exit.DATABASE);
        expect(isOneLineError(run.stderr)).toBe(true);
        expect(run.stderr).toContain("run 'regmeta migrate --to <url>' again");
      }
      await expect(openPostgresStore(target)).rejects.toMatchObject({ code: 'DATABASE_INCOMPLETE' });
      expect(await targetState(target)).toEqual(killed);

      // The same store written to since: what changed below the marks would be missed.
      const changed = tempDir('regmeta-migrate-changed-');
      copyFileSync(join(dir, 'metadata.db'), join(changed, 'metadata.db'));
      const store = openStore(join(changed, 'metadata.db'));
      store.putTag('bulk/app', 't0', store.getTag('bulk/app', 't1'));
      store.close();
      const refused = await migrate(['--data', changed, '--to', target]);
      rmSync(changed, { recursive: true, force: true });
      expect(refused.status).toBe(Exit.DATABASE);
      expect(isOneLineError(refused.stderr)).toBe(true);
      expect(refused.stderr).toContain('was written to again');
      expect(await targetState(target)).toEqual(killed);

      const run = await migrate(['--data', dir, '--to', target, '--json']);
      expect(run.stderr).toBe('');
      expect(run.status).toBe(Exit.OK);
      const summary = JSON.parse(run.stdout) as Summary;
      expect(summary.resumed).toBe(true);
      expect(summary.mismatches).toEqual([]);
      const rows = summary.tables.reduce((sum, t) => sum + t.rows, 0);
      const copiedNow = summary.tables.reduce((sum, t) => sum + t.copied, 0);
      // The second run copied what the first had not, no more: the rest was not copied again.
      expect(killed.copied + copiedNow).toBe(rows);
      expect(await targetState(target)).toMatchObject({ copied: rows, finished: true });

      // Run once more after the end: nothing to copy, verified again.
      const again = JSON.parse((await migrate(['--data', dir, '--to', target, '--json'])).stdout) as Summary;
      expect(again.tables.every((t) => t.copied === 0 && t.verified)).toBe(true);
      expect((await migrate(['--data', dir, '--to', target, '--verify-only'])).status).toBe(Exit.OK);
      // Finished: the store opens, and a write takes a fresh id.
      const migrated = await openPostgresStore(target);
      try {
        await migrated.putTag('bulk/app', 'moved', await migrated.getTag('bulk/app', 't1'));
      } finally {
        await migrated.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('run again after something wrote to the half-copied database, exits at once in one line: it never hangs', async () => {
    const dir = tempDir('regmeta-migrate-written-');
    try {
      bulkStore(dir, 400);
      const target = await pg.createDatabase();
      await killMidCopy(dir, target);
      // An event written behind the migration's back (an older regmeta's server, a hand): its seq is one the copy brings.
      const sql = postgres(target, { max: 1, onnotice: () => {} });
      try {
        await sql`
          INSERT INTO event (seq, id, published_at, actor, type, object_type, object_id)
          VALUES (1, 'written-meanwhile', 0, 'someone', 'CREATE', 'REPOSITORY', 'stale/app')`;
      } finally {
        await sql.end();
      }
      const run = await bounded(['migrate', '--data', dir, '--to', target], 60_000);
      expect(run.timedOut).toBe(false);
      expect(run.status).toBe(Exit.DATABASE);
      expect(isOneLineError(run.stderr)).toBe(true);
      expect(run.stderr).toMatch(/holds rows in event that this migration did not copy .*migrate into an empty database/);
      expect(run.stderr).toContain('create an empty database');
      expect(run.seconds).toBeLessThan(30);
      // Still refused by serve: it is no registry.
      await expect(openPostgresStore(target)).rejects.toMatchObject({ code: 'DATABASE_INCOMPLETE' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
