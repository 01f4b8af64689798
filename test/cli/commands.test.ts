// The inspection commands and the error contract, through the real command:
// exit codes, one-line errors on stderr, --json output, and no file created
// or changed by a command that fails.

import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openStore } from 'regmeta';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { putImage, putIndex } from './data.js';
import { isOneLineError, regmeta, serve, tempDir } from './run.js';

let dir: string;
let data: string;
const made = {} as {
  one: ReturnType<typeof putImage>;
  two: ReturnType<typeof putImage>;
  api: ReturnType<typeof putImage>;
  index: ReturnType<typeof putIndex>;
};

beforeAll(() => {
  dir = tempDir();
  data = join(dir, 'data');
  mkdirSync(data);
  const store = openStore(join(data, 'metadata.db'));
  try {
    made.one = putImage(store, data, 'acme/web');
    made.two = putImage(store, data, 'acme/web', 'bob');
    store.putTag('acme/web', 'v1', made.one, { actor: 'alice' });
    store.putTag('acme/web', 'v1', made.two, { actor: 'bob' });
    store.putTag('acme/web', 'latest', made.two, { actor: 'bob' });
    made.api = putImage(store, data, 'acme/api');
    made.index = putIndex(store, 'acme/api', [made.api]);
    store.putTag('acme/api', 'multi', made.index, { actor: 'alice' });
  } finally {
    store.close();
  }
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function hashOf(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

describe('inspection commands', () => {
  it('print repositories, tags, lookups, history, manifests, events and stats', async () => {
    const [repos, tags, lookup, history, raw, info, events, stats, envRepos] = await Promise.all([
      regmeta(['repos', '--data', data, '--json']),
      regmeta(['tags', 'acme/web', '--data', data, '--json']),
      regmeta(['lookup', 'acme/web', made.two.digest, '--data', data]),
      regmeta(['history', 'acme/web', 'v1', '--data', data, '--json']),
      regmeta(['manifest', 'acme/web', 'v1', '--data', data]),
      regmeta(['manifest', 'acme/web', made.one.digest, '--data', data, '--json']),
      regmeta(['events', '--actor', 'bob', '--object', 'TAG', '--data', data, '--json']),
      regmeta(['stats', '--data', data, '--json']),
      regmeta(['repos'], { env: { REGMETA_DATA: data } }),
    ]);
    for (const run of [repos, tags, lookup, history, raw, info, events, stats, envRepos]) {
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
    }
    expect(JSON.parse(repos.stdout)).toEqual(['acme/api', 'acme/web']);
    expect(envRepos.stdout).toBe('acme/api\nacme/web\n');
    expect(JSON.parse(tags.stdout)).toEqual([
      { tag: 'latest', digest: made.two.digest, mediaType: made.two.mediaType, size: made.two.size },
      { tag: 'v1', digest: made.two.digest, mediaType: made.two.mediaType, size: made.two.size },
    ]);
    expect(lookup.stdout).toBe('latest\nv1\n');
    expect(JSON.parse(history.stdout).map((h: { digest: string }) => h.digest)).toEqual([made.two.digest, made.one.digest]);
    expect(Buffer.compare(raw.stdoutBytes, made.two.payload)).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ repo: 'acme/web', digest: made.one.digest, size: made.one.size, tags: [] });
    const bobTags = JSON.parse(events.stdout) as { type: string; actor: string; object: { id: string }; previousDigest?: string }[];
    // Newest first: latest created, then v1 moved from one to two.
    expect(bobTags.map((e) => [e.type, e.object.id])).toEqual([
      ['CREATE', 'acme/web:latest'],
      ['UPDATE', 'acme/web:v1'],
    ]);
    expect(bobTags[1].previousDigest).toBe(made.one.digest);
    expect(JSON.parse(stats.stdout)).toMatchObject({
      repositories: 2,
      manifests: 4,
      tags: 3,
      blobs: 6,
      largestRepositories: [{ repository: 'acme/web', manifests: 2, tags: 2, blobs: 4 }, { repository: 'acme/api' }],
    });
  });

  it('lookup exits 1 when no tag points at the digest; history of a tag never set is not found (4), in one line', async () => {
    const [lookup, history] = await Promise.all([
      regmeta(['lookup', 'acme/web', made.api.digest, '--data', data]),
      regmeta(['history', 'acme/web', 'never', '--data', data]),
    ]);
    expect([lookup.status, lookup.stdout, history.status, history.stdout]).toEqual([1, '', 4, '']);
    expect(isOneLineError(history.stderr)).toBe(true);
    expect(history.stderr).toContain('tag "never" was never set in acme/web');
  });

  it('an empty store lists nothing and exits 0; summaries count in the singular for one', async () => {
    const empty = join(tempDir(), 'data');
    mkdirSync(empty);
    openStore(join(empty, 'metadata.db')).close();
    const [repos, json, gc] = await Promise.all([
      regmeta(['repos', '--data', empty]),
      regmeta(['repos', '--data', empty, '--json']),
      // made.one is the one untagged manifest: v1 moved off it.
      regmeta(['gc', '--dry-run', '--grace', '0', '--data', data]),
    ]);
    expect([repos.status, repos.stdout, repos.stderr]).toEqual([0, '', '']);
    expect([json.status, json.stdout]).toEqual([0, '[]\n']);
    expect(gc.status).toBe(0);
    expect(gc.stderr).toMatch(/^would delete 1 manifest and \d+ blobs? \(/m);
  });

  it('manifest prints the exact bytes to a pipe, and a newline after them on a terminal', async (context) => {
    const { execFileSync } = await import('node:child_process');
    const { BIN } = await import('./run.js');
    const piped = await regmeta(['manifest', 'acme/web', 'v1', '--data', data]);
    expect(Buffer.compare(piped.stdoutBytes, made.two.payload)).toBe(0);
    let script = true;
    try {
      execFileSync('script', ['--version'], { stdio: 'ignore' });
    } catch {
      script = false;
    }
    // util-linux's script gives the command a terminal.
    if (!script) return context.skip();
    const command = [process.execPath, BIN, 'manifest', 'acme/web', 'v1', '--data', data].map((a) => `'${a}'`).join(' ');
    const onTerminal = execFileSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8' });
    // The terminal writes each newline as CR LF.
    expect(onTerminal).toBe(`${made.two.payload.toString('utf8').replace(/\n/g, '\r\n')}\r\n`);
  });

  it('every command has --help with an example', async () => {
    // Every usage text, read from its module; three of them through the real command.
    const names = ['import', 'check', 'gc', 'backup', 'repos', 'tags', 'lookup', 'history', 'manifest', 'events', 'stats', 'serve'];
    for (const name of names) {
      const module = (await import(`../../src/cli/commands/${name}.ts`)) as Record<string, { name?: string; usage?: string }>;
      const command = Object.values(module).find((value) => value?.name === name);
      expect(command?.usage, name).toMatch(/^usage: regmeta /);
      expect(command?.usage, name).toMatch(/example/);
    }
    const runs = await Promise.all(['import', 'gc', 'events'].map((name) => regmeta([name, '--help'])));
    for (const run of runs) {
      expect(run.status).toBe(0);
      expect(run.stdout).toMatch(/^usage: regmeta \w+/);
      expect(run.stdout).toMatch(/example/);
    }
  });

  it('events --follow prints events committed after it started, until SIGINT', async () => {
    const { spawn } = await import('node:child_process');
    const { BIN } = await import('./run.js');
    const child = spawn(process.execPath, [BIN, 'events', '--follow', '--json', '--actor', 'carol', '--data', data], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += String(c)));
    child.stderr.on('data', (c) => (err += String(c)));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const store = openStore(join(data, 'metadata.db'));
    try {
      // It prints only what is committed after it subscribed: keep writing
      // until a line arrives (bounded), with one event by someone else each time.
      for (let i = 0; i < 300 && !out.includes('\n') && child.exitCode === null; i++) {
        store.createEvent({ actor: 'dave', type: 'DELETE', object: { type: 'BLOB', id: made.one.config.digest } });
        store.createEvent({ actor: 'carol', type: 'DELETE', object: { type: 'BLOB', id: made.one.layer.digest } });
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      store.close();
    }
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(err).toBe('');
    const lines = out.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.length).toBeGreaterThan(0);
    for (const event of lines) expect(event).toMatchObject({ actor: 'carol', type: 'DELETE', object: { type: 'BLOB', id: made.one.layer.digest } });
  });
});

describe('errors', () => {
  it('a missing, empty, foreign or non-database file: exit 3, one line, nothing created or changed, serve included', async () => {
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    const zero = join(dir, 'zero');
    mkdirSync(zero);
    writeFileSync(join(zero, 'metadata.db'), '');
    const text = join(dir, 'text');
    mkdirSync(text);
    writeFileSync(join(text, 'metadata.db'), 'not a database at all, just some text that is long enough to fill a header '.repeat(3));
    const foreign = join(dir, 'foreign');
    mkdirSync(foreign);
    const db = new Database(join(foreign, 'metadata.db'));
    db.exec('CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES (1)');
    db.close();
    const before = [zero, text, foreign].map((d) => hashOf(join(d, 'metadata.db')));
    const runs = await Promise.all([
      regmeta(['repos', '--data', empty]),
      regmeta(['gc', '--data', empty]),
      regmeta(['tags', 'acme/web', '--data', zero]),
      regmeta(['events', '--data', text]),
      regmeta(['repos', '--data', foreign]),
      regmeta(['backup', join(dir, 'copy.db'), '--data', foreign]),
      regmeta(['import', join(dir, 'nowhere'), '--data', empty]),
      regmeta(['serve', '--data', text, '--listen', '127.0.0.1:0']),
    ]);
    runs.forEach((run, i) => {
      expect(run.status, `run ${i}: ${run.stderr}`).toBe(i === 6 ? 2 : 3);
      expect(isOneLineError(run.stderr), run.stderr).toBe(true);
      expect(run.stderr).toMatch(/hint:/);
      expect(run.stdout).toBe('');
    });
    expect(runs[0].stderr).toMatch(/no database at/);
    expect(runs[2].stderr).toMatch(/empty file/);
    expect(runs[3].stderr).toMatch(/not a SQLite database/);
    expect(runs[4].stderr).toMatch(/another program/);
    // serve opens the metadata as every command does: refused before anything is made beside it.
    expect(runs[7].stderr).toMatch(/not a SQLite database, not a regmeta store/);
    expect(readdirSync(text)).toEqual(['metadata.db']);
    expect(readdirSync(empty)).toEqual([]);
    expect([zero, text, foreign].map((d) => hashOf(join(d, 'metadata.db')))).toEqual(before);
    expect(existsSync(join(dir, 'copy.db'))).toBe(false);
  });

  it('a database with damaged pages: exit 3 in one line, and check lists the damage as a problem (exit 1)', async () => {
    const damaged = join(dir, 'damaged');
    mkdirSync(damaged);
    const file = join(damaged, 'metadata.db');
    const store = openStore(file);
    try {
      for (let i = 0; i < 20; i++) store.putTag(`damaged/r${i}`, 'v1', putImage(store, damaged, `damaged/r${i}`));
    } finally {
      store.close();
    }
    // The repository table's pages (table and indexes), found through SQLite,
    // overwritten in place: the header and the schema stay readable.
    const raw = new Database(file, { readonly: true });
    const pageSize = raw.pragma('page_size', { simple: true }) as number;
    const roots = raw.prepare("SELECT rootpage FROM sqlite_schema WHERE tbl_name = 'repository' AND rootpage > 1").pluck().all() as number[];
    raw.close();
    expect(roots.length).toBeGreaterThan(0);
    const fd = openSync(file, 'r+');
    for (const page of roots) writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, (page - 1) * pageSize);
    closeSync(fd);

    const [repos, stats, check] = await Promise.all([
      regmeta(['repos', '--data', damaged]),
      regmeta(['stats', '--data', damaged]),
      regmeta(['check', '--data', damaged, '--no-files', '--json']),
    ]);
    for (const run of [repos, stats]) {
      expect(run.status, run.stderr).toBe(3);
      expect(isOneLineError(run.stderr), run.stderr).toBe(true);
      expect(run.stderr).toMatch(/SQLITE_CORRUPT.*hint:/);
      expect(run.stdout).toBe('');
    }
    expect(check.status, check.stderr).toBe(1);
    const report = JSON.parse(check.stdout) as { ok: boolean; problems: { kind: string }[] };
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => p.kind)).toContain('integrity');
  });

  it('bad arguments exit 2, things not there exit 4, all in one line', async () => {
    const cases: [string[], number, RegExp][] = [
      [[], 2, /usage: regmeta/],
      [['frobnicate'], 2, /unknown command/],
      [['repos', '--bogus', '--data', data], 2, /Unknown option/],
      [['tags', '--data', data], 2, /missing argument/],
      [['tags', 'Not-A-Name', '--data', data], 2, /invalid repository name/],
      [['gc', '--grace', '5 parsecs', '--data', data], 2, /not a duration/],
      [['events', '--type', 'EXPLODE', '--data', data], 2, /--type must be/],
      [['manifest', 'acme/web', 'sha256:not-hex', '--data', data], 2, /invalid digest/],
      [['manifest', 'acme/web', 'Bad Tag', '--data', data], 2, /invalid tag/],
      [['tags', 'no/such', '--data', data], 4, /not known/],
      [['manifest', 'acme/web', 'sha256:' + '0'.repeat(64), '--data', data], 4, /not known/],
    ];
    const runs = await Promise.all(cases.map(([args]) => regmeta(args)));
    runs.forEach((run, i) => {
      const [args, status, message] = cases[i];
      expect(run.status, args.join(' ')).toBe(status);
      if (args.length === 0) {
        expect(run.stdout).toMatch(message);
        return;
      }
      expect(isOneLineError(run.stderr), run.stderr).toBe(true);
      expect(run.stderr).toMatch(message);
    });
  });
});

describe('serve', () => {
  it('runs the registry server on the data directory until SIGTERM', async () => {
    const server = await serve(data);
    let code;
    try {
      const response = await fetch(`${server.url}/v2/acme/web/tags/list`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ name: 'acme/web', tags: ['latest', 'v1'] });
    } finally {
      code = await server.stop();
    }
    expect(code).toBe(0);
  });
});

describe('events with a count and a reason', () => {
  it('prints a pull batch with its count and tag, and the reason of a change, in lines and in JSON; --type PULL selects the batches', async () => {
    const own = join(tempDir(), 'data');
    mkdirSync(own);
    const store = openStore(join(own, 'metadata.db'));
    let image: ReturnType<typeof putImage>;
    try {
      image = putImage(store, own, 'acme/web');
      store.createEvent({ actor: '', type: 'PULL', object: { type: 'MANIFEST', id: `acme/web@${image.digest}` }, repository: 'acme/web', tag: 'v1', digest: image.digest, count: 12 });
      store.createEvent({ actor: 'retention', type: 'DELETE', object: { type: 'TAG', id: 'acme/web:old' }, repository: 'acme/web', tag: 'old', reason: 'rule 1 (acme/*): not among the newest 2' });
    } finally {
      store.close();
    }
    const [lines, pulls] = await Promise.all([regmeta(['events', '--limit', '2', '--data', own]), regmeta(['events', '--type', 'pull', '--data', own, '--json'])]);
    expect(lines.stderr).toBe('');
    const [deleted, pulled] = lines.stdout.trim().split('\n');
    expect(deleted).toMatch(/DELETE\s+TAG\s+acme\/web:old\s+retention\s+\(rule 1 \(acme\/\*\): not among the newest 2\)$/);
    expect(pulled).toMatch(new RegExp(`PULL\\s+MANIFEST\\s+acme/web@${image!.digest}\\s+-\\s+12 pulls by v1$`));
    expect(JSON.parse(pulls.stdout)).toEqual([expect.objectContaining({ type: 'PULL', count: 12, tag: 'v1', digest: image!.digest })]);
  });
});
