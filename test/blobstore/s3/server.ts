// The test S3 server: a real s3rver child process on a loopback port, with
// its objects in a temporary directory, that a test may stop and start again
// on the same port and directory (an S3 that went away and came back).
// Credentials reach the AWS SDK through the environment, its standard chain,
// as they reach a registry: never through regmeta's options.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The benches' launcher: one patched s3rver for tests and benches alike (tests may import bench/, not the other way).
const LAUNCHER = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bench', 's3rver.cjs');

/** s3rver's built-in account. */
const S3RVER_ENV = {
  AWS_ACCESS_KEY_ID: 'S3RVER',
  AWS_SECRET_ACCESS_KEY: 'S3RVER',
  AWS_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true',
};

/** A running test S3 server. */
export interface S3Server {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  bucket: string;
  /** What S3Options need to reach it (prefix left to the caller). */
  options: { bucket: string; endpoint: string; region: string; forcePathStyle: true };
  /** The SDK's credential chain's variables for it. */
  env: typeof S3RVER_ENV;
  /** Stops the server; its objects stay. */
  stop(): Promise<void>;
  /** Starts it again on the same port and directory. */
  start(): Promise<void>;
  /** Stops it and removes its directory (when this helper made it). */
  cleanup(): Promise<void>;
}

/**
 * Starts s3rver with one bucket, on `port` (default: a free one) in `dir`
 * (default: a new temporary directory), and sets the SDK's environment
 * variables for it in this process (see `env`). `withoutUploadListing`:
 * ListMultipartUploads answers 501, as on a service that lacks it.
 */
export async function startS3Server(options: { dir?: string; port?: number; bucket?: string; withoutUploadListing?: boolean } = {}): Promise<S3Server> {
  const dir = options.dir ?? mkdtempSync(path.join(tmpdir(), 'regmeta-s3-'));
  const bucket = options.bucket ?? 'test-bucket';
  let child: ChildProcess | undefined;
  let port = options.port ?? 0;
  const launch = async () => {
    const env = options.withoutUploadListing ? { ...process.env, S3RVER_NO_UPLOAD_LISTING: '1' } : process.env;
    const started = spawn(process.execPath, ['--openssl-legacy-provider', LAUNCHER, dir, String(port), bucket], { stdio: ['ignore', 'pipe', 'inherit'], env });
    child = started;
    port = await new Promise<number>((resolve, reject) => {
      let out = '';
      started.stdout!.on('data', (data: Buffer) => {
        out += data.toString();
        const match = /LISTENING (\d+)/.exec(out);
        if (match) resolve(Number(match[1]));
      });
      started.once('exit', (code) => reject(new Error(`s3rver exited (${code}) before it listened`)));
      started.once('error', reject);
    });
  };
  const stop = async () => {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      running.once('exit', () => resolve());
      running.kill();
    });
  };
  await launch();
  Object.assign(process.env, S3RVER_ENV);
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    options: { bucket, endpoint, region: S3RVER_ENV.AWS_REGION, forcePathStyle: true },
    env: { ...S3RVER_ENV },
    stop,
    start: async () => {
      if (child === undefined) await launch();
    },
    cleanup: async () => {
      await stop();
      if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}
