// `regmeta import s3://…`: a distribution registry's storage in a bucket of a
// real test S3 server. The tree is the one a real Debian docker-registry
// wrote after real skopeo pushes, on its filesystem driver, then put into
// the bucket key for key (so that the tree does not rest on the launcher's
// own ListMultipartUploads and ListParts, which distribution's s3 driver needs).
// Imported in place (regmeta's --storage on the same bucket and root: no
// blob copied), then served by `regmeta serve --storage` and pulled with
// skopeo; copied server-side into another prefix; streamed into a directory.

import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync, utimesSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type Peer } from '../../bench/peers.js';
import { S3BlobStore } from '../../src/blobstore/s3/store.js';
import { startS3Server, type S3Server } from '../blobstore/s3/server.js';
import { OciLayout, readBlob, resolveTag } from '../server/oci-layout.js';
import { regmeta, serve, tempDir } from './run.js';

let s3: S3Server;
let s3dir: string;
let registry: Peer;
let dir: string;
let layout: OciLayout;
const dist = 'dist';

function skopeo(...args: string[]): void {
  const result = spawnSync('skopeo', args, { encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) throw new Error(`skopeo ${args.join(' ')} failed: ${result.stderr ?? result.error?.message}`);
}
const push = (ref: string, repo: string, tag: string, all = false) =>
  skopeo('copy', '--insecure-policy', '--dest-tls-verify=false', '--quiet', ...(all ? ['--all'] : []), `oci:${layout.dir}:${ref}`, `docker://${registry.host}/${repo}:${tag}`);

/** Every file under `root`, oldest first. */
function filesOf(root: string): { path: string; mtime: Date }[] {
  const found: { path: string; mtime: Date }[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(join(d, entry.name));
      else found.push({ path: join(d, entry.name), mtime: statSync(join(d, entry.name)).mtime });
    }
  };
  walk(root);
  return found.sort((a, b) => a.mtime.getTime() - b.mtime.getTime());
}

const url = (prefix: string) => `s3://${s3.bucket}/${prefix}?endpoint=${s3.endpoint}&forcePathStyle=true`;

beforeAll(async () => {
  s3dir = mkdtempSync(join(tmpdir(), 'regmeta-s3-import-'));
  s3 = await startS3Server({ dir: s3dir });
  dir = tempDir('regmeta-import-s3-');
  registry = await startDistribution();
  layout = new OciLayout(join(dir, 'layout'));
  const a = layout.addImage({ layerSize: 1024 }).descriptor;
  const b = layout.addImage({ layerSize: 1024 }).descriptor;
  const multi = layout.addIndex([{ architecture: 'amd64', os: 'linux' }, { architecture: 'arm64', os: 'linux' }], { layerSize: 1024 });
  layout.tag(a, 'a');
  layout.tag(b, 'b');
  layout.tag(multi.descriptor, 'multi');
  push('a', 'acme/app', 'v1');
  push('b', 'acme/app', 'v1'); // a re-tag: v1's index holds a, then b
  push('a', 'acme/app', 'old');
  push('multi', 'library/multi', 'latest', true);
  // The tree as distribution wrote it, key for key; each object's time its file's (the tag index's order).
  const client = new S3Client({ ...s3.options, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  try {
    for (const { path, mtime } of filesOf(registry.dataDir)) {
      const key = `${dist}/${relative(registry.dataDir, path).split('/').join('/')}`;
      const body = readFileSync(path);
      await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body, ContentLength: body.length }));
      utimesSync(join(s3dir, s3.bucket, `${key}._S3rver_object`), mtime, mtime);
    }
  } finally {
    client.destroy();
  }
});

afterAll(async () => {
  await registry?.stop();
  await s3?.cleanup();
  for (const d of [dir, s3dir]) if (d) rmSync(d, { recursive: true, force: true });
});

/** Every key under `prefix`, with its size. */
async function keys(prefix: string): Promise<Map<string, number>> {
  const store = new S3BlobStore({ ...s3.options, prefix });
  const found = new Map<string, number>();
  for await (const file of store.list()) found.set(file.location, file.size);
  return found;
}

describe('regmeta import s3://… from a distribution bucket', () => {
  it('imports in place: with --storage at its docker/registry/v2, every blob is linked where it is and none is copied', async () => {
    const data = join(dir, 'in-place');
    const storage = url(`${dist}/docker/registry/v2`);
    const before = await keys(`${dist}/docker/registry/v2`);
    const run = await regmeta(['import', url(dist), '--storage', storage, '--data', data, '--json']);
    expect(run.status, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout);
    expect(summary).toMatchObject({ root: url(dist), repositories: 2, problems: [], tags: { set: 3 }, blobs: { filesPlaced: 0 } });
    expect(summary.manifests.imported).toBe(5);
    expect(summary.blobs.linked).toBeGreaterThan(0);
    expect(await keys(`${dist}/docker/registry/v2`)).toEqual(before);

    const history = await regmeta(['history', 'acme/app', 'v1', '--data', data, '--json']);
    const versions = JSON.parse(history.stdout) as { digest: string }[];
    expect(versions.map((v) => v.digest)).toEqual([resolveTag(layout.dir, 'b').digest, resolveTag(layout.dir, 'a').digest]);

    const check = await regmeta(['check', '--deep', '--storage', storage, '--data', data, '--json']);
    expect(JSON.parse(check.stdout)).toMatchObject({ problems: [] });

    const server = await serve(data, ['--storage', storage]);
    try {
      for (const [tag, ref] of [['v1', 'b'], ['old', 'a']]) {
        const pulled = join(dir, `pulled-${tag}`);
        skopeo('copy', '--insecure-policy', '--src-tls-verify=false', '--quiet', `docker://${server.url.slice(7)}/acme/app:${tag}`, `oci:${pulled}:${tag}`);
        const manifest = JSON.parse(readBlob(pulled, resolveTag(layout.dir, ref).digest).toString());
        for (const blob of [manifest.config, ...manifest.layers]) expect(readBlob(pulled, blob.digest).equals(readBlob(layout.dir, blob.digest))).toBe(true);
      }
      skopeo('copy', '--all', '--insecure-policy', '--src-tls-verify=false', '--quiet', `docker://${server.url.slice(7)}/library/multi:latest`, `oci:${join(dir, 'pulled-multi')}:latest`);
    } finally {
      await server.stop();
    }
  });

  it('into another prefix of the same service, copies each blob server-side; into a directory, streams it; both pass check --deep', async () => {
    const elsewhere = url('regmeta-copy');
    const copied = await regmeta(['import', url(dist), '--storage', elsewhere, '--data', join(dir, 'copied'), '--json']);
    expect(copied.status, copied.stderr).toBe(0);
    const placed = JSON.parse(copied.stdout).blobs.filesPlaced;
    expect(placed).toBeGreaterThan(0);
    expect((await keys('regmeta-copy')).size).toBe(placed);
    const streamed = await regmeta(['import', url(dist), '--data', join(dir, 'streamed'), '--json']);
    expect(streamed.status, streamed.stderr).toBe(0);
    expect(JSON.parse(streamed.stdout).blobs.filesPlaced).toBe(placed);
    for (const args of [['--storage', elsewhere, '--data', join(dir, 'copied')], ['--data', join(dir, 'streamed')]]) {
      const check = await regmeta(['check', '--deep', ...args, '--json']);
      expect([check.status, JSON.parse(check.stdout).problems]).toEqual([0, []]);
    }
  });

  it('refuses a bucket prefix that holds no distribution storage, creating nothing', async () => {
    const run = await regmeta(['import', url('nothing-here'), '--data', join(dir, 'none')]);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/no distribution storage at s3:\/\/test-bucket\/nothing-here/);
  });
});
