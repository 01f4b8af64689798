// Starts the floor peer (bench/floor-server.ts) as a child process with the
// responses it is to answer, captured from our server.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Response } from './client.js';
import { ROOT } from './peers.js';

// Headers node:http writes by itself on every answer, ours and the floor's alike.
const OWN_HEADERS = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding']);

/** A captured answer as the floor replays it: the same status, headers (as spelled) and bytes. */
export function canned(res: Response): { status: number; headers: Record<string, string>; body: string } {
  const headers: Record<string, string> = {};
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    if (!OWN_HEADERS.has(res.rawHeaders[i].toLowerCase())) headers[res.rawHeaders[i]] = res.rawHeaders[i + 1];
  }
  return { status: res.status, headers, body: res.body.toString('base64') };
}

export interface Floor {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Starts the floor with `answers` ("METHOD /path?query" → canned answer).
 * @throws Error when it exits or prints no port within 30 s.
 */
export async function startFloor(answers: Record<string, ReturnType<typeof canned>>): Promise<Floor> {
  const dir = mkdtempSync(join(tmpdir(), 'regmeta-floor-'));
  const file = join(dir, 'canned.json');
  writeFileSync(file, JSON.stringify(answers));
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'floor-server.ts'), file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', () => child.kill('SIGKILL'));
  const port = await new Promise<number>((done, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error('the floor server printed no port within 30 s')), 30_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /"port":(\d+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        done(Number(match[1]));
      }
    });
    void exited.then(() => fail(new Error('the floor server exited before listening')));
  }).catch(async (error) => {
    await stop();
    throw error;
  });
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, stop };
}
