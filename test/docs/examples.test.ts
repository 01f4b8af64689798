// Every fenced example that README.md and docs/*.md mark runnable (an HTML
// comment `<!-- runnable -->` on the line before the fence; see
// docs/contributing.md), run as printed. Needs the build (`npm test` runs
// `npm run build` first; alone: `npm run build && npx vitest run test/docs`).
//
// TypeScript examples are files of a project whose node_modules/regmeta is
// this checkout, so `import … from 'regmeta'` resolves through the package's
// exports to dist/, as in a user's project (and a package the project does
// not depend on, prom-client say, does not resolve). They are type-checked
// strictly together, then each runs under tsx in an empty directory of its
// own.
//
// Shell examples run under bash (-euo pipefail) with `regmeta` on the PATH (a
// link to bin/regmeta.js, as `npm install -g` or `npm link` make), in a
// directory where a `regmeta serve` this test started serves with its data
// in ./data, as the README's walk has it. That server listens on a port the
// kernel chose, and the test rewrites `localhost:5000` in the examples to
// `localhost:<that port>`: that is the only change made to what is printed.
// The shell examples of one document run in order, in one directory, with a
// HOME of their own (the walk writes ~/.config/containers). Examples marked
// `podman` get a container storage of their own and are skipped only where
// podman is not installed; examples marked `postgres` get REGMETA_DATABASE,
// an empty database of a PostgreSQL server started here.

import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveProgram } from '../../bench/peers.js';
import { serve } from '../cli/run.js';
import { startPostgres, type PostgresServer } from '../store/postgres/server.js';
import { docFiles, ROOT, runnableExamples, type Example } from './markdown.js';

const run = promisify(execFile);
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');
const TSX = pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const PRINTED_REGISTRY = 'localhost:5000';

const examples = docFiles().flatMap(runnableExamples);
const typescript = examples.filter((e) => e.lang === 'ts');
const shell = examples.filter((e) => e.lang === 'sh');
const podman = haveProgram('podman');

let scratch: string;
let project: string;
let postgres: Promise<PostgresServer> | undefined;

beforeAll(() => {
  scratch = mkdtempSync(path.join(tmpdir(), 'regmeta-docs-'));
  project = path.join(scratch, 'project');
  mkdirSync(path.join(project, 'node_modules/@types'), { recursive: true });
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'docs-examples', private: true, type: 'module' }));
  symlinkSync(ROOT, path.join(project, 'node_modules/regmeta'));
  symlinkSync(path.join(ROOT, 'node_modules/@types/node'), path.join(project, 'node_modules/@types/node'));
});

afterAll(async () => {
  if (postgres !== undefined) await (await postgres).stop();
  rmSync(scratch, { recursive: true, force: true });
});

/** A name for an example's file: its document and line. */
function nameOf(example: Example): string {
  return `${path.basename(example.file, '.md').toLowerCase()}-${example.line}`;
}

/** The environment an example needs beyond the test's own. */
async function needs(example: Example): Promise<Record<string, string>> {
  if (!example.needs.includes('postgres')) return {};
  postgres ??= startPostgres();
  return { REGMETA_DATABASE: await (await postgres).createDatabase() };
}

describe('the docs mark their examples', () => {
  it('in a form this test runs: ts or sh, needing only what it provides', () => {
    for (const example of examples) {
      expect(['ts', 'sh'], `${example.file}:${example.line}`).toContain(example.lang);
      for (const need of example.needs) expect(['postgres', 'podman'], `${example.file}:${example.line}`).toContain(need);
    }
  });

  it("including the README's walk and library example", () => {
    const readme = examples.filter((e) => e.file === 'README.md');
    expect(readme.filter((e) => e.lang === 'sh').length).toBeGreaterThanOrEqual(3);
    expect(readme.filter((e) => e.lang === 'ts').length).toBeGreaterThanOrEqual(1);
    expect(readme.some((e) => e.code.includes(PRINTED_REGISTRY))).toBe(true);
  });
});

describe('the TypeScript examples', () => {
  it('type-check strictly against the built package', async () => {
    const files = typescript.map((example) => {
      const file = `${nameOf(example)}.ts`;
      writeFileSync(path.join(project, file), example.code);
      return file;
    });
    const tsconfig = {
      compilerOptions: {
        strict: true,
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        target: 'ES2022',
        types: ['node'],
        // The shipped declarations are the package test's to check; here, the examples.
        skipLibCheck: true,
        noEmit: true,
      },
      files,
    };
    writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify(tsconfig));
    const result = await run(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: project }).catch((error: { stdout: string }) => error);
    expect(result.stdout).toBe('');
  }, 120_000);

  for (const example of typescript) {
    it(`${example.file}:${example.line} runs`, async () => {
      const file = path.join(project, `${nameOf(example)}.ts`);
      writeFileSync(file, example.code);
      const cwd = mkdtempSync(path.join(scratch, `${nameOf(example)}-`));
      const env = { ...process.env, ...(await needs(example)) };
      const result = await run(process.execPath, ['--import', TSX, file], { cwd, env, timeout: 60_000 }).catch((error: Error & { stdout: string; stderr: string }) => error);
      expect(result instanceof Error ? `${result.message}\n${result.stdout}` : 'ran').toBe('ran');
    }, 120_000);
  }
});

describe('the shell examples', () => {
  for (const file of [...new Set(shell.map((e) => e.file))]) {
    const blocks = shell.filter((e) => e.file === file);
    const skip = !podman && blocks.some((e) => e.needs.includes('podman'));
    it.skipIf(skip)(`of ${file} run in order against a registry this test started`, async () => {
      const work = mkdtempSync(path.join(scratch, `${path.basename(file, '.md').toLowerCase()}-sh-`));
      const env = await shellEnvironment(work);
      const served = await serve(path.join(work, 'data'));
      try {
        const port = new URL(served.url).port;
        for (const example of blocks) {
          const code = example.code.replaceAll(PRINTED_REGISTRY, `localhost:${port}`);
          const extra = await needs(example);
          const result = await run('bash', ['-euo', 'pipefail', '-c', code], { cwd: work, env: { ...env, ...extra }, timeout: 120_000 }).catch(
            (error: Error & { stdout: string; stderr: string }) => error,
          );
          expect(result instanceof Error ? `${example.file}:${example.line}: ${result.message}\n${result.stdout}` : 'ran').toBe('ran');
        }
      } finally {
        await served.stop();
      }
    }, 600_000);
  }
});

/** PATH with `regmeta`, a HOME of its own, and podman's storage under `work`. */
async function shellEnvironment(work: string): Promise<NodeJS.ProcessEnv> {
  const bin = path.join(work, '.bin');
  const home = path.join(work, '.home');
  mkdirSync(bin);
  mkdirSync(home);
  symlinkSync(path.join(ROOT, 'bin/regmeta.js'), path.join(bin, 'regmeta'));
  const storage = path.join(work, '.containers');
  const storageConf = path.join(work, '.storage.conf');
  writeFileSync(storageConf, `[storage]\ndriver = "vfs"\ngraphroot = "${storage}/storage"\nrunroot = "${storage}/run"\n`);
  return {
    ...process.env,
    PATH: `${bin}:${process.env.PATH ?? ''}`,
    HOME: home,
    CONTAINERS_STORAGE_CONF: storageConf,
    // Under npm test the terminal is vitest's: no colors, no progress bars.
    NO_COLOR: '1',
  };
}
