// The AWS SDK is loaded when S3 storage is first used, not before: a
// registry on a directory, and a module that only imports the blob store,
// load none of it. From the built dist/ in a fresh node process, as
// test/index.test.ts does (needs `npm run build`).

import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3Server, type S3Server } from './server.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');

// Imports the blob store's door, makes an S3 blob store, stats a blob when
// asked (argv: endpoint, stat?), and prints the CommonJS modules loaded:
// the SDK is CommonJS.
const SCRIPT = `
const [endpoint, call] = process.argv.slice(-2);
const { createBlobStore } = await import('./dist/blobstore/index.js');
const blobs = createBlobStore({ s3: { bucket: 'test-bucket', prefix: 'loading', endpoint, forcePathStyle: true } });
if (call === 'stat') await blobs.stat('sha256:' + '0'.repeat(64));
const { createRequire } = await import('node:module');
console.log(JSON.stringify(Object.keys(createRequire(process.cwd() + '/').cache)));
process.exit(0);
`;

let server: S3Server;
beforeAll(async () => {
  server = await startS3Server();
});
afterAll(async () => {
  await server.cleanup();
});

function sdkModulesLoaded(call: 'none' | 'stat'): string[] {
  const { NODE_OPTIONS: _, ...env } = process.env;
  const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', SCRIPT, server.endpoint, call], {
    cwd: ROOT,
    env: { ...env, ...server.env },
    encoding: 'utf8',
  });
  return (JSON.parse(stdout) as string[]).filter((file) => file.includes(`${path.sep}@aws-sdk${path.sep}`));
}

describe('the AWS SDK', () => {
  it('is not loaded by making an S3 blob store, only by its first call', () => {
    expect(sdkModulesLoaded('none')).toEqual([]);
    expect(sdkModulesLoaded('stat')).not.toEqual([]);
  });
});
