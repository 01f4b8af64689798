// A mirror of an upstream that answers blob requests with a redirect to its
// storage, as Docker Hub does to its CDN: a real docker-registry on an S3
// bucket (s3rver) with redirects on, the blob pushed by skopeo.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type Peer } from '../../../bench/peers.js';
import { startS3Server, type S3Server } from '../../blobstore/s3/server.js';
import { startRegistry, type TestRegistry } from '../helpers.js';
import { pushLayer, type PushedBlob } from './layers.js';
import { pull, waitFor } from './pull.js';

let dir: string;
let s3: S3Server;
let upstream: Peer;
let registry: TestRegistry;
let blob: PushedBlob;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'regmeta-mirror-redirects-'));
  s3 = await startS3Server();
  const driver = { endpoint: s3.endpoint, bucket: s3.bucket, accessKey: s3.env.AWS_ACCESS_KEY_ID, secretKey: s3.env.AWS_SECRET_ACCESS_KEY };
  upstream = await startDistribution({ parentDir: dir, s3: { ...driver, rootDirectory: '/upstream', redirect: true } });
  blob = pushLayer(join(dir, 'layout'), upstream.host, ['lib/app'], 3 * 1024 * 1024 + 5);
  registry = await startRegistry({ mirrors: [{ prefix: 'up', url: upstream.url }] });
});

afterAll(async () => {
  await registry?.close();
  await upstream?.stop();
  await s3?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('an upstream that redirects blob requests to its storage', () => {
  it('HEAD and GET follow the redirect; the blob is verified and kept', async () => {
    const direct = await fetch(`${upstream.url}/v2/lib/app/blobs/${blob.digest}`, { redirect: 'manual' });
    expect(direct.status).toBe(307);
    const url = `${registry.url}/v2/up/lib/app/blobs/${blob.digest}`;
    const head = await fetch(url, { method: 'HEAD' });
    expect([head.status, head.headers.get('content-length')]).toEqual([200, String(blob.bytes.length)]);
    const got = await pull(url).done;
    expect([got.status, got.complete, got.body.equals(blob.bytes)]).toEqual([200, true, true]);
    await waitFor(() => {
      try {
        registry.store.statBlob('up/lib/app', blob.digest);
        return true;
      } catch {
        return false;
      }
    }, 'the blob to be linked');
    expect(registry.errors).toEqual([]);
  });
});
