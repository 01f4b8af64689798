// What importing the package entries loads, from the built dist/ in a fresh
// node process: the store's own files and better-sqlite3, never the server,
// the webhooks, the CLI, the PostgreSQL backend or the migration tooling, nor
// pino, prom-client, yaml or postgres; and what `regmeta serve` on a data
// directory loads: none of the AWS SDK. A module hook records each module the
// ESM loader loads; require.cache holds what CommonJS loaded. Needs the build
// (`npm test` runs `npm run build` first; alone: `npm run build && npx vitest run test/index.test.ts`).

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { startS3Server } from './blobstore/s3/server.js';
import { serve } from './cli/run.js';
import { pushBlob } from './server/helpers.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const scratch = mkdtempSync(path.join(tmpdir(), 'regmeta-loads-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

writeFileSync(
  path.join(scratch, 'hooks.mjs'),
  `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  appendFileSync(process.env.REGMETA_LOADED, url + '\\n');
  return next(url, context);
}
`,
);
// With REGMETA_LOADED_CJS (a long-running process, not the one-shot import below), what CommonJS loaded is written there at exit.
writeFileSync(
  path.join(scratch, 'register.mjs'),
  `import { register, createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
register('./hooks.mjs', import.meta.url);
const file = process.env.REGMETA_LOADED_CJS;
if (file) process.on('exit', () => writeFileSync(file, JSON.stringify(Object.keys(createRequire(import.meta.url).cache))));
`,
);

// Imports the entry named by the last argument, then prints what CommonJS loaded.
const SCRIPT = `
await import(process.argv.at(-1));
const { createRequire } = await import('node:module');
console.log(JSON.stringify(Object.keys(createRequire(process.cwd() + '/').cache)));
`;

/** Every module a fresh node process loads for `import … from entry`: built-ins as node:…, files relative to the checkout. */
function loadedBy(entry: string): string[] {
  const log = path.join(scratch, `${entry.replace(/\W/g, '_')}.log`);
  writeFileSync(log, '');
  const { NODE_OPTIONS: _, ...env } = process.env;
  const stdout = execFileSync(process.execPath, ['--import', pathToFileURL(path.join(scratch, 'register.mjs')).href, '--input-type=module', '-e', SCRIPT, entry], {
    cwd: ROOT,
    env: { ...env, REGMETA_LOADED: log },
    encoding: 'utf8',
  });
  const esm = readFileSync(log, 'utf8').split('\n').filter((url) => url !== '');
  const cjs = JSON.parse(stdout) as string[];
  const files = [...esm.map((url) => (url.startsWith('file:') ? fileURLToPath(url) : url)), ...cjs];
  return [...new Set(files.map((file) => (path.isAbsolute(file) ? path.relative(ROOT, file) : file)))].sort();
}

/** The store's files that opening a SQLite store needs: its contract, rules and errors, and the SQLite backend. */
const STORE = /^dist\/store\/(?:[^/]+|sqlite\/.+)\.js$/;
const BETTER_SQLITE3 = /^node_modules\/(?:better-sqlite3|bindings|file-uri-to-path)\//;

function unexpected(loaded: string[], entry: string): string[] {
  return loaded.filter((file) => !file.startsWith('node:') && file !== entry && !STORE.test(file) && !BETTER_SQLITE3.test(file));
}

describe('importing a package entry', () => {
  it('needs the build', () => {
    expect(existsSync(path.join(ROOT, 'dist/index.js')), 'run npm run build first').toBe(true);
  });

  it("regmeta loads the store's own files and better-sqlite3, nothing of the server, the webhooks, the CLI, PostgreSQL or migration", () => {
    const loaded = loadedBy('regmeta');
    expect(loaded).toContain('dist/store/sqlite/store.js');
    expect(loaded.some((file) => BETTER_SQLITE3.test(file))).toBe(true);
    expect(unexpected(loaded, 'dist/index.js')).toEqual([]);
  });

  it('regmeta/postgres loads no PostgreSQL client before a store is opened', () => {
    expect(unexpected(loadedBy('regmeta/postgres'), 'dist/postgres.js')).toEqual([]);
  });
});

/** What a `regmeta serve` process loaded by the time it stopped, as loadedBy lists it: it is started with `args` and does `work`. */
async function loadedByServe(name: string, args: string[], work: (url: string) => Promise<void>): Promise<string[]> {
  const esmLog = path.join(scratch, `${name}.log`);
  const cjsLog = path.join(scratch, `${name}.json`);
  writeFileSync(esmLog, '');
  const served = await serve(path.join(scratch, `${name}-data`), args, {
    node: ['--import', pathToFileURL(path.join(scratch, 'register.mjs')).href],
    env: { REGMETA_LOADED: esmLog, REGMETA_LOADED_CJS: cjsLog },
  });
  try {
    await work(served.url);
  } finally {
    expect(await served.stop()).toBe(0);
  }
  const esm = readFileSync(esmLog, 'utf8').split('\n').filter((url) => url !== '');
  const cjs = JSON.parse(readFileSync(cjsLog, 'utf8')) as string[];
  const files = [...esm.map((url) => (url.startsWith('file:') ? fileURLToPath(url) : url)), ...cjs];
  return [...new Set(files.map((file) => (path.isAbsolute(file) ? path.relative(ROOT, file) : file)))].sort();
}

/** The S3 client and what it is made of. */
const AWS_SDK = /^node_modules\/(?:@aws-sdk|@smithy|@aws-crypto)\//;

describe('regmeta serve', () => {
  it('on a data directory loads none of the AWS SDK, through a push, a pull, a HEAD and a readiness check', async () => {
    const loaded = await loadedByServe('fs-serve', [], async (url) => {
      const digest = await pushBlob(url, 'fs/app', 'directory bytes');
      expect(await (await fetch(`${url}/v2/fs/app/blobs/${digest}`)).text()).toBe('directory bytes');
      expect((await fetch(`${url}/v2/fs/app/blobs/${digest}`, { method: 'HEAD' })).status).toBe(200);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
    });
    // The hook saw the process: the directory store, the server, the CommonJS side.
    expect(loaded).toEqual(expect.arrayContaining(['dist/blobstore/fs/directory.js', 'dist/server/handlers/blobs.js']));
    expect(loaded.some((file) => BETTER_SQLITE3.test(file))).toBe(true);
    expect(loaded.filter((file) => AWS_SDK.test(file))).toEqual([]);
  });

  it('loads it with --storage s3://… (what the test above would see)', async () => {
    const s3 = await startS3Server();
    try {
      const { bucket, endpoint, region } = s3.options;
      const storage = `s3://${bucket}/loads?${new URLSearchParams({ endpoint, region, forcePathStyle: 'true' })}`;
      const loaded = await loadedByServe('s3-serve', ['--storage', storage], async (url) => {
        await pushBlob(url, 's3/app', 'bucket bytes');
      });
      expect(loaded.some((file) => file.startsWith('node_modules/@aws-sdk/client-s3/'))).toBe(true);
    } finally {
      await s3.cleanup();
    }
  });
});
