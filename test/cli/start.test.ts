// `npm start` as a supervisor or `docker stop` sees it: npm with one node
// process under it, nothing in between, and a signal sent to npm stops the
// server cleanly and leaves nothing running.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { isOneLineError, regmeta, tempDir } from './run.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** The pids of a process's children, from /proc. */
function childrenOf(pid: number): number[] {
  const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
  return text === '' ? [] : text.split(' ').map(Number);
}

function commandLine(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((part) => part !== '');
}

describe('npm start', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`runs one node process under npm, and ${signal} sent to npm stops it cleanly`, async () => {
      const data = tempDir('regmeta-start-');
      dirs.push(data);
      const npm = spawn('npm', ['start', '--silent'], {
        cwd: ROOT,
        env: { ...process.env, REGMETA_DATA: data, REGMETA_LISTEN: '127.0.0.1:0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const lines: Record<string, unknown>[] = [];
      const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)));
      const port = await new Promise<number>((resolve, reject) => {
        createInterface({ input: npm.stdout }).on('line', (line) => {
          if (!line.startsWith('{')) return;
          const entry = JSON.parse(line) as Record<string, unknown>;
          lines.push(entry);
          if (entry.msg === 'listening') resolve(entry.port as number);
        });
        void exited.then((code) => reject(new Error(`npm start exited ${code} before listening`)));
      });
      expect((await fetch(`http://127.0.0.1:${port}/v2/`)).status).toBe(200);

      const [server, ...others] = childrenOf(npm.pid!);
      expect(others).toEqual([]);
      expect(path.basename(commandLine(server)[0])).toBe('node');
      expect(commandLine(server).slice(1)).toEqual(['bin/regmeta.js', 'serve']);
      expect(childrenOf(server)).toEqual([]);

      npm.kill(signal);
      await exited;
      expect(lines.at(-1)).toMatchObject({ msg: 'stopped' });
      expect(existsSync(`/proc/${server}`)).toBe(false);
      await expect(fetch(`http://127.0.0.1:${port}/v2/`)).rejects.toThrow();
    });
  }

  it('creates no data directory when the port is taken: one line, exit 5', async () => {
    const { createServer } = await import('node:net');
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const dir = tempDir('regmeta-start-');
      dirs.push(dir);
      const data = path.join(dir, 'data');
      const listen = `127.0.0.1:${(taken.address() as { port: number }).port}`;
      const npm = spawn('npm', ['start', '--silent'], { cwd: ROOT, env: { ...process.env, REGMETA_DATA: data, REGMETA_LISTEN: listen }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      npm.stderr.on('data', (chunk) => (stderr += chunk));
      const code = await new Promise<number | null>((resolve) => npm.once('exit', (c) => resolve(c)));
      expect(code).toBe(5);
      expect(stderr).toMatch(new RegExp(`^regmeta serve: cannot listen on ${listen}: EADDRINUSE`, 'm'));
      expect(existsSync(data)).toBe(false);
      // The real command alike, with the data directory named by a flag.
      const served = await regmeta(['serve', '--listen', listen, '--data', data]);
      expect([served.status, isOneLineError(served.stderr), existsSync(data)]).toEqual([5, true, false]);
    } finally {
      taken.close();
    }
  });
});
