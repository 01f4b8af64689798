// `regmeta passwd` as a real process: it writes bcrypt entries a real
// `regmeta serve` then authenticates against, keeps the file's other lines,
// creates it with mode 0600, reads the password from a pipe or, at a
// terminal, twice without echo; and serve names the entries it ignores.

import { spawn } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
import { setEntry } from '../../src/cli/commands/passwd.js';
import { BIN, isOneLineError, regmeta, serve, tempDir } from './run.js';

const verify = (password: string, hash: string) => bcrypt.compareSync(password, hash.replace(/^\$2y\$/, '$2b$'));
const basic = (user: string, password: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });

function entries(file: string): Record<string, string> {
  const found: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) found[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return found;
}

describe('regmeta passwd', () => {
  it('creates the file with mode 0600 and a bcrypt entry, changes it in place, and keeps every other line', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'htpasswd');
    const added = await regmeta(['passwd', file, 'alice'], { input: 'first password\n' });
    expect(added).toMatchObject({ status: 0, stdout: `added alice to ${file}\n`, stderr: '' });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(entries(file).alice).toMatch(/^\$2y\$10\$/);
    expect(verify('first password', entries(file).alice)).toBe(true);

    const others = ['# the team', `bob:${bcrypt.hashSync('bob-pw', 4)}`, 'carol:$apr1$abcdefgh$0123456789abcdefghijkl', ''];
    writeFileSync(file, `${others.slice(0, 2).join('\n')}\n${readFileSync(file, 'utf8')}${others.slice(2).join('\n')}`);
    const changed = await regmeta(['passwd', '--cost', '4', file, 'alice'], { input: 'second password\r\n' });
    expect(changed).toMatchObject({ status: 0, stdout: `changed the password of alice in ${file}\n` });
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines[0]).toBe('# the team');
    expect(lines[1]).toBe(others[1]);
    expect(lines[2]).toMatch(/^alice:\$2y\$04\$/);
    expect(lines[3]).toBe(others[2]);
    expect(lines).toHaveLength(5);
    expect(verify('second password', entries(file).alice)).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('writes a file that a real server authenticates against, and the server names the entry it ignores', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'htpasswd');
    writeFileSync(file, 'legacy:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n');
    expect((await regmeta(['passwd', '--cost', '4', file, 'alice'], { input: 'wonderland' })).status).toBe(0);
    const served = await serve(path.join(dir, 'data'), ['--htpasswd', file]);
    try {
      expect((await fetch(`${served.url}/v2/`, { headers: basic('alice', 'wonderland') })).status).toBe(200);
      expect((await fetch(`${served.url}/v2/`, { headers: basic('alice', 'looking-glass') })).status).toBe(401);
      expect((await fetch(`${served.url}/v2/`)).status).toBe(401);
      const warnings = served.stderr().trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(warnings).toEqual([
        {
          time: expect.any(String),
          level: 'warn',
          msg: `${file}:1: user "legacy" ignored, cannot log in: SHA1, not bcrypt (set a new password with 'regmeta passwd')`,
        },
      ]);
    } finally {
      expect(await served.stop()).toBe(0);
    }
  });

  it('refuses a bad user name, cost or password in one line, exit 2, leaving the file as it was', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'htpasswd');
    writeFileSync(file, 'keep:me\n');
    const cases: [string[], string, RegExp][] = [
      [['passwd', file, 'a:b'], 'pw\n', /user name "a:b" is not allowed/],
      [['passwd', file, '#x'], 'pw\n', /is not allowed/],
      [['passwd', '--cost', '3', file, 'a'], 'pw\n', /--cost wants a whole number from 4 to 31/],
      [['passwd', file, 'a'], '\n', /the password is empty/],
      [['passwd', file, 'a'], '', /the password is empty/],
      [['passwd', file, 'a'], `${'x'.repeat(73)}\n`, /over 72 bytes/],
      [['passwd', file], 'pw\n', /missing argument/],
    ];
    for (const [args, input, message] of cases) {
      const run = await regmeta(args, { input });
      expect(run.status, args.join(' ')).toBe(2);
      expect(isOneLineError(run.stderr)).toBe(true);
      expect(run.stderr).toMatch(message);
    }
    expect(readFileSync(file, 'utf8')).toBe('keep:me\n');
    const noDir = await regmeta(['passwd', path.join(dir, 'missing', 'htpasswd'), 'a'], { input: 'pw\n' });
    expect(noDir.status).toBe(5);
    expect(noDir.stderr).toMatch(/cannot write .*ENOENT/);
  });

  it('asks twice at a terminal, without echo, and refuses two passwords that differ', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'htpasswd');
    /** Runs passwd on a pseudo-terminal (util-linux script), typing each answer once its prompt is shown. */
    const typed = (answers: string[]) =>
      new Promise<{ status: number | null; output: string }>((resolve) => {
        const child = spawn('script', ['-qec', `${process.execPath} ${BIN} passwd --cost 4 ${file} tty-user`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
        let output = '';
        const prompts = ['password for tty-user: ', 'again: '];
        child.stdout.on('data', (chunk) => {
          output += String(chunk);
          while (prompts.length > 0 && output.includes(prompts[0])) {
            prompts.shift();
            child.stdin.write(`${answers.shift()}\r`);
          }
        });
        child.once('exit', (status) => resolve({ status, output }));
      });
    const ok = await typed(['hidden words', 'hidden words']);
    expect(ok.status).toBe(0);
    expect(ok.output).toContain('password for tty-user: ');
    expect(ok.output).toContain('again: ');
    expect(ok.output).not.toContain('hidden words');
    expect(verify('hidden words', entries(file)['tty-user'])).toBe(true);

    const differ = await typed(['one thing', 'another']);
    expect(differ.status).toBe(2);
    expect(differ.output).toMatch(/the two passwords differ/);
    expect(verify('hidden words', entries(file)['tty-user'])).toBe(true);
  });
});

describe('setEntry', () => {
  it('replaces the first line of the user, drops later ones, and appends a new user', () => {
    expect(setEntry('', 'a', 'H')).toEqual({ text: 'a:H\n', added: true });
    expect(setEntry('# c\nb:x\n', 'a', 'H')).toEqual({ text: '# c\nb:x\na:H\n', added: true });
    expect(setEntry('a:1\nb:x\n a:2\n#a:3\n', 'a', 'H')).toEqual({ text: 'a:H\nb:x\n#a:3\n', added: false });
    expect(setEntry('b:x', 'b', 'H')).toEqual({ text: 'b:H\n', added: false });
  });
});
