// The base images the container test builds the Containerfile on, since no
// public image registry can be reached here: Debian's own packages laid out
// by mmdebstrap (from this machine's Debian mirror) and imported into podman,
// then, as a company's base image would, this machine's CA bundle and npm
// registry, so that npm inside the build reaches the registry the way npm on
// this machine does. The Debian image is kept under a tag naming its inputs
// (minutes to make); the derived one is remade each run (a second).

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Debian 13: its nodejs (20.19) satisfies the engines field; Debian 12's (18) does not. */
export const SUITE = 'trixie';
/** node and npm for the build and the run; python3, make and g++ for better-sqlite3's addon; passwd for useradd. */
const PACKAGES = ['nodejs', 'npm', 'python3', 'make', 'g++', 'ca-certificates', 'passwd'];
const DEFAULT_MIRROR = 'http://deb.debian.org/debian';
const NPM_DEFAULT_REGISTRY = 'https://registry.npmjs.org/';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end; a non-zero exit is a result, not a throw. */
export function run(program: string, args: string[], options: { timeout?: number; cwd?: string } = {}): Promise<Run> {
  return new Promise((done) => {
    execFile(program, args, { maxBuffer: 256 << 20, timeout: options.timeout ?? 120_000, cwd: options.cwd }, (error, stdout, stderr) =>
      done({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** Runs a program and throws with its output when it fails. */
export async function must(program: string, args: string[], options: { timeout?: number; cwd?: string } = {}): Promise<string> {
  const result = await run(program, args, options);
  if (result.code !== 0) {
    throw new Error(`${program} ${args.join(' ')} exited ${result.code}:\n${result.stderr.slice(-8000)}\n${result.stdout.slice(-4000)}`);
  }
  return result.stdout;
}

/**
 * The Debian archive this machine's apt uses (the entry carrying its own
 * release's suite in /etc/apt/sources.list or sources.list.d), else Debian's
 * default mirror.
 */
export function debianMirror(): string {
  const release = /^VERSION_CODENAME=(.*)$/m.exec(readText('/etc/os-release'))?.[1]?.replace(/"/g, '');
  if (release === undefined || release === '') return DEFAULT_MIRROR;
  const entries: { uris: string[]; suites: string[] }[] = [];
  const files = ['/etc/apt/sources.list', ...listDir('/etc/apt/sources.list.d').map((name) => `/etc/apt/sources.list.d/${name}`)];
  for (const file of files) {
    const text = readText(file);
    if (file.endsWith('.list')) {
      for (const line of text.split('\n')) {
        // deb [options] uri suite components…
        const fields = line.replace(/#.*/, '').replace(/\[[^\]]*\]/, '').trim().split(/\s+/);
        if (fields[0] === 'deb' && fields.length >= 3) entries.push({ uris: [fields[1]!], suites: [fields[2]!] });
      }
    } else if (file.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'mi').exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
        if (/^Enabled:\s*no/im.test(stanza) || !field('Types').includes('deb')) continue;
        entries.push({ uris: field('URIs'), suites: field('Suites') });
      }
    }
  }
  return entries.find((entry) => entry.suites.includes(release))?.uris[0] ?? DEFAULT_MIRROR;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}

/** What the making of the base images cost, for the test's report. */
export interface BaseReport {
  debian: string;
  /** Seconds spent in mmdebstrap and podman import; undefined when the kept image was used. */
  madeIn?: number;
  derived: string;
}

/**
 * The Debian image (kept across runs under a tag naming suite, packages and
 * mirror), then the derived one with this machine's CA bundle and npm registry.
 * @throws when mmdebstrap, podman import or podman build fails.
 */
export async function baseImages(podman: (args: string[], timeout?: number) => Promise<string>): Promise<BaseReport> {
  const mirror = debianMirror();
  const debian = `localhost/regmeta-test/debian-node:${SUITE}-${shortHash(JSON.stringify([SUITE, PACKAGES, mirror]))}`;
  let madeIn: number | undefined;
  if ((await run('podman', ['image', 'exists', debian])).code !== 0) {
    const started = Date.now();
    const dir = mkdtempSync(path.join(tmpdir(), 'regmeta-debian-'));
    try {
      const tar = path.join(dir, 'base.tar');
      await must('mmdebstrap', ['--quiet', '--variant=apt', `--include=${PACKAGES.join(',')}`, SUITE, tar, mirror], { timeout: 15 * 60_000 });
      await podman(['import', '--change', 'CMD ["/bin/bash"]', tar, debian], 5 * 60_000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    madeIn = (Date.now() - started) / 1000;
  }
  return { debian, madeIn, derived: await derive(debian, podman) };
}

/**
 * The Debian image plus this machine's TLS trust (npm's cafile, Node's extra
 * CA certificates, the system bundle: each that exists, once) and npm's
 * registry when it is not the default.
 */
async function derive(debian: string, podman: (args: string[], timeout?: number) => Promise<string>): Promise<string> {
  const cafile = (await run('npm', ['config', 'get', 'cafile'])).stdout.trim();
  const registry = (await run('npm', ['config', 'get', 'registry'])).stdout.trim();
  const bundles = [...new Set([cafile, process.env.NODE_EXTRA_CA_CERTS ?? '', '/etc/ssl/certs/ca-certificates.crt'])].filter(
    (file) => file !== '' && file !== 'null' && file !== 'undefined' && existsSync(file),
  );
  const lines = [`FROM ${debian}`];
  const dir = mkdtempSync(path.join(tmpdir(), 'regmeta-derived-'));
  try {
    if (bundles.length > 0) {
      writeFileSync(path.join(dir, 'ca.pem'), bundles.map((file) => readFileSync(file, 'utf8')).join('\n'));
      lines.push('COPY ca.pem /usr/local/share/ca-bundle.pem', 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ca-bundle.pem');
    }
    if (registry !== '' && registry !== NPM_DEFAULT_REGISTRY) lines.push(`ENV npm_config_registry=${JSON.stringify(registry)}`);
    writeFileSync(path.join(dir, 'Containerfile'), `${lines.join('\n')}\n`);
    const tag = `localhost/regmeta-test/debian-node-ca:${SUITE}`;
    await podman(['build', '--isolation=chroot', '--quiet', '--tag', tag, dir], 5 * 60_000);
    return tag;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
