// `regmeta backup` while another process keeps writing: the copy is a sound
// regmeta database holding a consistent state.

import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openStore } from 'regmeta';
import { afterAll, describe, expect, it } from 'vitest';
import { putImage } from './data.js';
import { isOneLineError, regmeta, tempDir } from './run.js';

let dir: string;
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('backup', () => {
  it('copies the database online while a writer process writes, and the copy is sound', async () => {
    dir = tempDir();
    const data = join(dir, 'data');
    mkdirSync(data);
    const file = join(data, 'metadata.db');
    const store = openStore(file);
    const digests: string[] = [];
    try {
      for (let i = 0; i < 40; i++) digests.push(putImage(store, data, 'bk/x').digest);
    } finally {
      store.close();
    }
    const script = join(import.meta.dirname, 'tag-writer.ts');
    const writer = spawn(process.execPath, ['--import', 'tsx', script, file, 'bk/x', ...digests], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => writer.once('exit', resolve));
    try {
      await new Promise<void>((resolve, reject) => {
        writer.stdout.once('data', () => resolve());
        writer.once('exit', () => reject(new Error('writer exited')));
      });
      const target = join(dir, 'copy.db');
      // One page a step: the writer's commits restart the copy many times over.
      const run = await regmeta(['backup', target, '--pages-per-step', '1', '--data', data, '--json']);
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ file: target });
      // The writer was still writing all along.
      expect(writer.exitCode).toBe(null);

      const copy = new Database(target, { readonly: true });
      try {
        expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
        expect(copy.pragma('foreign_key_check')).toEqual([]);
        expect(copy.prepare('SELECT count(*) FROM manifest').pluck().get()).toBe(40);
        // Consistent: the tags equal a replay of the copy's own event log.
        const tags = Object.fromEntries(
          (copy.prepare("SELECT t.name, m.digest FROM tag t JOIN manifest m ON m.id = t.manifest_id").all() as { name: string; digest: string }[]).map((r) => [r.name, r.digest]),
        );
        const replay: Record<string, string> = {};
        for (const e of copy.prepare("SELECT tag, digest, type FROM event WHERE object_type = 'TAG' ORDER BY seq").all() as { tag: string; digest: string; type: string }[]) {
          if (e.type === 'DELETE') delete replay[e.tag];
          else replay[e.tag] = e.digest;
        }
        expect(Object.keys(tags).length).toBeGreaterThan(0);
        expect(tags).toEqual(replay);
      } finally {
        copy.close();
      }
      // The copy is a regmeta store that the commands read.
      const copyData = join(dir, 'copydata');
      mkdirSync(copyData);
      copyFileSync(target, join(copyData, 'metadata.db'));
      const check = await regmeta(['check', '--data', copyData, '--no-files']);
      expect(check.status).toBe(0);

      // An existing target is refused without --force.
      const again = await regmeta(['backup', target, '--data', data]);
      expect(again.status).toBe(5);
      expect(isOneLineError(again.stderr)).toBe(true);
      expect(existsSync(target)).toBe(true);
    } finally {
      writer.kill('SIGKILL');
      await exited;
    }
  });
});
