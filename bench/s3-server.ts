// Starts the bench's S3 server (bench/s3rver.cjs: s3rver, patched so that
// regmeta and distribution 2.8 can both use it) as a child process on a
// loopback port, its objects in a temporary directory. Credentials are
// s3rver's built-in account.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './peers.js';

/** A running bench S3 server. */
export interface BenchS3 {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  bucket: string;
  /** Where s3rver keeps the bucket's objects, as files. */
  dir: string;
  pid: number;
  accessKey: string;
  secretKey: string;
  /** The AWS SDK's standard environment variables for it (region and credentials). */
  env: Record<string, string>;
  /** Stops it and removes its directory. */
  stop(): Promise<void>;
}

/**
 * Starts the S3 server with one bucket, its objects in a new directory under `parentDir`.
 * @throws Error when it exits or prints no port.
 */
export async function startBenchS3(parentDir: string, bucket = 'bench'): Promise<BenchS3> {
  const dir = mkdtempSync(join(parentDir, 'regmeta-bench-s3-'));
  const child = spawn(process.execPath, ['--openssl-legacy-provider', join(ROOT, 'bench', 's3rver.cjs'), dir, '0', bucket], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (data: Buffer) => {
      out += data.toString();
      const match = /LISTENING (\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`the S3 server exited (${code}) before it listened: ${out}`)));
    child.once('error', reject);
  });
  const [accessKey, secretKey] = ['S3RVER', 'S3RVER'];
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    dir,
    pid: child.pid!,
    accessKey,
    secretKey,
    env: { AWS_ACCESS_KEY_ID: accessKey, AWS_SECRET_ACCESS_KEY: secretKey, AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true' },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill();
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
