// `regmeta migrate --blobs-to s3://…`: the blob files of a data directory
// copied into a bucket of a real test S3 server by the real command, killed
// mid-way (a real child process, stuck on a request a proxy holds), run
// again to copy only the rest, then served by `regmeta serve --storage` on
// the bucket alone and pulled byte for byte.

import { spawn } from 'node:child_process';
import { readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openStore } from 'regmeta';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3BlobStore } from '../../src/blobstore/s3/store.js';
import { startS3Server, type S3Server } from '../blobstore/s3/server.js';
import { blobPath, putBlob, putImage } from './data.js';
import { BIN, isOneLineError, regmeta, serve, tempDir } from './run.js';
import { stallProxy } from './stall-proxy.js';

let s3: S3Server;
let data: string;
/** Every blob of the data directory: its repository and bytes. */
const blobs = new Map<string, { repo: string; bytes: Buffer }>();
const manifests: { repo: string; digest: string; payload: Buffer }[] = [];
const url = (endpoint: string) => `s3://${s3.bucket}/moved?endpoint=${endpoint}&forcePathStyle=true`;

beforeAll(async () => {
  s3 = await startS3Server();
  data = tempDir('regmeta-migrate-blobs-');
  const store = openStore(join(data, 'metadata.db'));
  try {
    for (let i = 0; i < 5; i++) {
      const repo = `mig/app${i % 2}`;
      const image = putImage(store, data, repo);
      store.putTag(repo, `v${i}`, { digest: image.digest }, { actor: 'alice' });
      manifests.push({ repo, digest: image.digest, payload: image.payload });
      for (const blob of [image.config, image.layer]) blobs.set(blob.digest, { repo, bytes: readFileSync(blobPath(data, blob.digest)) });
    }
    // Above one multipart part (5 MiB): streamed in parts.
    const big = putBlob(store, data, 'mig/app0', randomBytes(6 * 1024 * 1024 + 17), 'application/octet-stream');
    blobs.set(big.digest, { repo: 'mig/app0', bytes: readFileSync(blobPath(data, big.digest)) });
  } finally {
    store.close();
  }
});

afterAll(async () => {
  await s3?.cleanup();
  if (data) rmSync(data, { recursive: true, force: true });
});

/** The digests and sizes the bucket's prefix holds, as the S3 store lists them. */
async function inBucket(): Promise<Map<string, number>> {
  const store = new S3BlobStore({ ...s3.options, prefix: 'moved' });
  const found = new Map<string, number>();
  for await (const file of store.list()) if (file.digest !== undefined) found.set(file.digest, file.size);
  return found;
}

describe('regmeta migrate --blobs-to s3://…', () => {
  it('refuses --to beside it, and a bad URL, in one line', async () => {
    const both = await regmeta(['migrate', '--data', data, '--blobs-to', url(s3.endpoint), '--to', 'postgres://x@y/z']);
    expect(both.status).toBe(2);
    expect(isOneLineError(both.stderr)).toBe(true);
    const bad = await regmeta(['migrate', '--data', data, '--blobs-to', 's3://AKIA:secret@bucket/x']);
    expect(bad.status).toBe(2);
    expect(isOneLineError(bad.stderr)).toBe(true);
    expect(bad.stderr).not.toContain('secret@');
  });

  it('killed mid-way, copies the rest when run again, verified; then a registry on the bucket serves every blob byte for byte', async () => {
    const digests = [...blobs.keys()].sort();
    const last = digests[digests.length - 1];
    // The last blob in the copy's order never gets through: the run is stuck there, the others done.
    const proxy = await stallProxy(s3.endpoint, last.slice(7));
    const child = spawn(process.execPath, [BIN, 'migrate', '--data', data, '--blobs-to', url(proxy.url), '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    try {
      await proxy.stalled;
      // Wait for the copies in flight to finish: a condition, not a delay.
      while ((await inBucket()).size < digests.length - 1) await new Promise((resolve) => setTimeout(resolve, 50));
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
    } finally {
      child.kill('SIGKILL');
      await proxy.close();
    }
    const partial = await inBucket();
    expect([...partial.keys()].sort()).toEqual(digests.slice(0, -1));

    const rerun = await regmeta(['migrate', '--data', data, '--blobs-to', url(s3.endpoint), '--json']);
    expect(rerun.status, rerun.stderr).toBe(0);
    const summary = JSON.parse(rerun.stdout);
    expect(summary).toMatchObject({
      blobs: digests.length,
      copied: { blobs: 1, bytes: blobs.get(last)!.bytes.length },
      skipped: { blobs: digests.length - 1 },
      problems: [],
      missing: [],
      sizeDiffers: [],
      verified: true,
    });
    expect(summary.target).toBe(url(s3.endpoint));
    const all = await inBucket();
    expect(Object.fromEntries(all)).toEqual(Object.fromEntries(digests.map((d) => [d, blobs.get(d)!.bytes.length])));

    // A third run copies nothing.
    const again = JSON.parse((await regmeta(['migrate', '--data', data, '--blobs-to', url(s3.endpoint), '--json'])).stdout);
    expect(again).toMatchObject({ copied: { blobs: 0 }, skipped: { blobs: digests.length }, verified: true });

    // The directory's blobs out of the way: what is served comes from the bucket.
    renameSync(join(data, 'blobs'), join(data, 'blobs-moved'));
    const server = await serve(data, ['--storage', url(s3.endpoint)]);
    try {
      for (const [digest, { repo, bytes }] of blobs) {
        const res = await fetch(`${server.url}/v2/${repo}/blobs/${digest}`);
        expect([digest, res.status]).toEqual([digest, 200]);
        expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
      }
      for (const { repo, digest, payload } of manifests) {
        const res = await fetch(`${server.url}/v2/${repo}/manifests/${digest}`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
        expect(Buffer.from(await res.arrayBuffer()).equals(payload)).toBe(true);
      }
    } finally {
      await server.stop();
      renameSync(join(data, 'blobs-moved'), join(data, 'blobs'));
    }
  });
});
