// A distribution storage read through DistributionStorage, in a directory
// (fs/distribution.ts) and in a bucket of a real test S3 server
// (s3/distribution.ts) alike: the same tree gives the same files, bytes,
// sizes and sources; a tree that is not there is undefined.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DistributionStorage } from '../../src/blobstore/distribution.js';
import { DirectoryDistribution } from '../../src/blobstore/fs/distribution.js';
import { Bucket } from '../../src/blobstore/s3/client.js';
import { BucketDistribution } from '../../src/blobstore/s3/distribution.js';
import { startS3Server, type S3Server } from './s3/server.js';

const TREE: Record<string, string> = {
  'repositories/acme/app/_manifests/revisions/sha256/aa11/link': 'sha256:aa11',
  'repositories/acme/app/_manifests/tags/v1/current/link': 'sha256:aa11',
  'repositories/acme/app/_layers/sha256/bb22/link': 'sha256:bb22',
  'blobs/sha256/bb/bb22/data': 'layer bytes',
};

let s3: S3Server;
const dir = mkdtempSync(path.join(tmpdir(), 'regmeta-distribution-'));

beforeAll(async () => {
  s3 = await startS3Server();
  const bucket = new Bucket({ ...s3.options, prefix: '' });
  try {
    for (const [file, text] of Object.entries(TREE)) {
      const local = path.join(dir, 'docker', 'registry', 'v2', ...file.split('/'));
      mkdirSync(path.dirname(local), { recursive: true });
      writeFileSync(local, text);
      await bucket.put(`root/docker/registry/v2/${file}`, Buffer.from(text));
    }
  } finally {
    await bucket.destroy();
  }
});

afterAll(async () => {
  await s3?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const backends: { name: string; open(): Promise<DistributionStorage | undefined>; missing(): Promise<DistributionStorage | undefined> }[] = [
  { name: 'directory', open: async () => DirectoryDistribution.find(dir), missing: async () => DirectoryDistribution.find(path.join(dir, 'nothing')) },
  { name: 'bucket', open: () => BucketDistribution.find({ ...s3.options, prefix: 'root' }), missing: () => BucketDistribution.find({ ...s3.options, prefix: 'nothing' }) },
];

async function text(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

describe.each(backends)('DistributionStorage ($name)', (backend) => {
  it('lists every file under a directory, with its size; reads and stats them; a missing one is undefined', async () => {
    const root = (await backend.open())!;
    expect(root).toBeDefined();
    const files = [];
    for await (const file of root.files('repositories')) files.push([file.path, file.size]);
    expect(files.sort()).toEqual(Object.entries(TREE).filter(([p]) => p.startsWith('repositories/')).map(([p, t]) => [p, t.length]).sort());
    const none = [];
    for await (const file of root.files('repositories/nobody')) none.push(file);
    expect(none).toEqual([]);
    expect((await root.read('repositories/acme/app/_layers/sha256/bb22/link'))?.toString()).toBe('sha256:bb22');
    expect(await root.read('repositories/acme/app/_layers/sha256/cc33/link')).toBeUndefined();
    expect((await root.stat('blobs/sha256/bb/bb22/data'))?.size).toBe('layer bytes'.length);
    expect(await root.stat('blobs/sha256/cc/cc33/data')).toBeUndefined();
    expect(root.locate('blobs/sha256/bb/bb22/data')).toMatch(/docker\/registry\/v2\/blobs\/sha256\/bb\/bb22\/data$/);
  });

  it("offers a blob's data as a source a blob store takes", async () => {
    const root = (await backend.open())!;
    const source = root.source('blobs/sha256/bb/bb22/data', { link: true });
    if (source instanceof Readable) throw new Error('a source, not a stream');
    const bytes = 'object' in source ? await text(source.read()) : readFileSync(source.file, 'utf8');
    expect(bytes).toBe('layer bytes');
  });

  it('finds no storage where there is none', async () => {
    expect(await backend.missing()).toBeUndefined();
  });
});
