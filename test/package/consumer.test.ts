// The package as a user gets it: `npm pack`, installed into a fresh project,
// used from a plain .mjs under node with no loader, type-checked by a strict
// TypeScript consumer (with and without skipLibCheck, by this repository's
// TypeScript and the newest), and its bin run through npx. `npm test` builds dist/
// first; this packs what is there.

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');

let project: string;
let packed: string[];

beforeAll(async () => {
  project = mkdtempSync(path.join(tmpdir(), 'regmeta-consumer-'));
  // --ignore-scripts: dist/ is built by `npm test`; rebuilding it here would
  // rewrite files under other tests' running CLI processes.
  const pack = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', project], { cwd: ROOT });
  const [info] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
  packed = info.files.map((f) => f.path);
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  // better-sqlite3 from this checkout, already compiled (a user's install
  // compiles or downloads it: that is better-sqlite3's business, not the
  // package shape under test), so that the install takes a second, offline.
  await run(
    'npm',
    ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', path.join(ROOT, 'node_modules/better-sqlite3'), path.join(project, info.filename)],
    { cwd: project },
  );
  // A TypeScript user of node:http has Node's types.
  mkdirSync(path.join(project, 'node_modules/@types'), { recursive: true });
  symlinkSync(path.join(ROOT, 'node_modules/@types/node'), path.join(project, 'node_modules/@types/node'));
  writeFileSync(path.join(project, 'consumer.ts'), readFileSync(path.join(FIXTURES, 'consumer.ts')));
}, 180_000);

afterAll(() => {
  rmSync(project, { recursive: true, force: true });
});

/** A strict consumer's tsconfig (exactOptionalPropertyTypes, noUncheckedIndexedAccess) for consumer.ts. */
function consumerConfig(resolution: 'NodeNext' | 'Bundler', skipLibCheck: boolean): object {
  return {
    compilerOptions: {
      strict: true,
      exactOptionalPropertyTypes: true,
      noUncheckedIndexedAccess: true,
      module: resolution === 'NodeNext' ? 'NodeNext' : 'ESNext',
      moduleResolution: resolution,
      target: 'ES2022',
      skipLibCheck,
      noEmit: true,
      types: ['node'],
    },
    files: ['consumer.ts'],
  };
}

let newest: Promise<string> | undefined;

/** The newest TypeScript, from the npm registry, installed beside the consumer once: the path of its tsc. */
function newestTsc(): Promise<string> {
  newest ??= (async () => {
    const dir = path.join(project, 'typescript-newest');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ private: true }));
    await run('npm', ['install', '--no-audit', '--no-fund', '--no-save', 'typescript@latest'], { cwd: dir });
    return path.join(dir, 'node_modules/typescript/bin/tsc');
  })();
  return newest;
}

describe('the packed package', () => {
  it('ships the build, the schemas, the bin, README, docs and LICENSE, and nothing else', () => {
    const tops = new Set(packed.map((file) => file.split('/')[0]));
    expect([...tops].sort()).toEqual(['LICENSE', 'README.md', 'bin', 'dist', 'docs', 'package.json', 'schema.postgres.sql', 'schema.sql']);
    expect(packed).toContain('dist/index.d.ts');
    expect(packed).toContain('dist/postgres.d.ts');
    expect(packed).toContain('dist/server.d.ts');
    expect(packed.some((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))).toBe(false);
  });

  it('runs from a plain .mjs under node with no loader: the store, the grammar, the handler and startRegistry', async () => {
    const script = path.join(project, 'consumer.mjs');
    writeFileSync(script, readFileSync(path.join(FIXTURES, 'consumer.mjs')));
    const { stdout } = await run(process.execPath, [script], { cwd: project });
    expect(JSON.parse(stdout)).toEqual({
      tag: { mediaType: 'application/vnd.oci.image.manifest.v1+json', size: expect.any(Number), digest: expect.stringMatching(/^sha256:/) },
      reference: { tag: 'v1' },
      digestValid: true,
      notFound: 'MANIFEST_UNKNOWN',
      embedded: 200,
      started: 200,
      postgres: 'ARGUMENT_INVALID',
    });
  });

  // Most strict projects check their libraries' declarations too
  // (skipLibCheck off): every declaration a consumer reaches must compile
  // with only what installing regmeta gives it, under the TypeScript this
  // repository builds with and under the newest one.
  for (const typescript of ['devDependency', 'newest'] as const) {
    for (const resolution of ['NodeNext', 'Bundler'] as const) {
      for (const skipLibCheck of [true, false]) {
        it(`type-checks a strict consumer with the ${typescript} TypeScript, moduleResolution ${resolution}, skipLibCheck ${skipLibCheck}`, async () => {
          const tsc = typescript === 'devDependency' ? TSC : await newestTsc();
          const config = `tsconfig.${typescript}.${resolution}.${skipLibCheck}.json`;
          writeFileSync(path.join(project, config), JSON.stringify(consumerConfig(resolution, skipLibCheck)));
          const result = await run(process.execPath, [tsc, '-p', config], { cwd: project }).catch((error: { stdout: string }) => error);
          expect(result.stdout).toBe('');
        });
      }
    }
  }

  it('leaves the types of better-sqlite3 to regmeta: a consumer does not get them', () => {
    expect(existsSync(path.join(project, 'node_modules/@types/better-sqlite3'))).toBe(false);
  });

  it('runs `npx regmeta --help`', async () => {
    const { stdout } = await run('npx', ['--no-install', 'regmeta', '--help'], { cwd: project });
    expect(stdout).toMatch(/^usage: regmeta <command>/);
    expect(stdout).toContain('serve');
  });

  it("runs the README's library example exactly as printed", async () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## The library'));
    const example = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
    expect(example).toBeDefined();
    writeFileSync(path.join(project, 'example.ts'), example!);
    // TypeScript as printed: run through tsx, resolving 'regmeta' from the installed package.
    const tsx = pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
    const { stdout } = await run(process.execPath, ['--import', tsx, 'example.ts'], { cwd: project });
    expect(stdout).toContain('sha256:');
  });
});
