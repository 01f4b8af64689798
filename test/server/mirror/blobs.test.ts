// Blob pulls through a mirror of a real docker-registry (images pushed by
// skopeo), behind a proxy that counts the upstream's requests and spoils
// bodies where a test says: one download per digest however many clients
// ask, Range answers while it runs, no last byte before the digest checks
// out, nothing kept of a corrupt, cut or stalled blob; on a directory and
// on an S3 bucket.

import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type Peer } from '../../../bench/peers.js';
import { DirectoryBlobStore } from '../../../src/blobstore/fs/directory.js';
import { S3BlobStore } from '../../../src/blobstore/s3/store.js';
import { blobStorages, errorCode, startRegistry, type TestRegistry } from '../helpers.js';
import { faultProxy, type FaultProxy } from './fault-proxy.js';
import { pushLayer, type PushedBlob } from './layers.js';
import { pull, waitFor, type Pulled } from './pull.js';

const MiB = 1 << 20;
let dir: string;
let upstream: Peer;
let proxy: FaultProxy;
/** In lib/small and other/small. */
let small: PushedBlob;
/** 4 MiB, in lib/mid. */
let mid: PushedBlob;
/** 33 MiB, in lib/big and other/big. */
let big: PushedBlob;
const { storages, cleanup } = blobStorages('mirror-blobs');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'regmeta-mirror-blobs-'));
  upstream = await startDistribution({ parentDir: dir });
  proxy = await faultProxy(upstream.url);
  small = pushLayer(join(dir, 'small'), upstream.host, ['lib/small', 'other/small'], 256 * 1024);
  mid = pushLayer(join(dir, 'mid'), upstream.host, ['lib/mid'], 4 * MiB);
  big = pushLayer(join(dir, 'big'), upstream.host, ['lib/big', 'other/big'], 33 * MiB);
});

afterAll(async () => {
  await proxy?.close();
  await upstream?.stop();
  await cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe.each(storages)('mirrored blobs on $name', (storage) => {
  /** A registry of its own (its own bucket prefix too) mirroring the upstream behind the proxy as up/. */
  async function mirrorRegistry(more: { timeout?: number; maxBlobSize?: number; dataDir?: string } = {}): Promise<{ registry: TestRegistry; stored: (digest: string) => Promise<boolean> }> {
    const options = (await storage.options()) ?? {};
    const s3 = options.storage === undefined ? undefined : { ...options.storage, prefix: `${options.storage.prefix}/${randomUUID()}` };
    const { timeout, maxBlobSize, dataDir } = more;
    const registry = await startRegistry({ ...(s3 && { storage: s3 }), ...(dataDir && { dataDir }), maxBlobSize, mirrors: [{ prefix: 'up', url: proxy.url, timeout }] });
    const blobs = s3 ? new S3BlobStore(s3) : new DirectoryBlobStore(registry.dataDir);
    return { registry, stored: async (digest) => (await blobs.stat(digest)) !== undefined };
  }

  const blobUrl = (registry: TestRegistry, repo: string, digest: string) => `${registry.url}/v2/up/${repo}/blobs/${digest}`;
  const gets = (repo: string, digest: string) => proxy.count('GET', `/v2/${repo}/blobs/${digest}`);
  /** No spool file under <dataDir>/mirror: its process's directory with its owner marker, at most. */
  const spoolEmpty = (registry: TestRegistry) => {
    const root = join(registry.dataDir, 'mirror');
    if (!existsSync(root)) return true;
    return readdirSync(root, { recursive: true, withFileTypes: true }).every((entry) => entry.isDirectory() || entry.name === '.owner');
  };

  it('GET fetches a blob once: twice byte-identical, the second from the cache', async () => {
    const { registry, stored } = await mirrorRegistry();
    try {
      const before = gets('lib/small', small.digest);
      for (let i = 0; i < 2; i++) {
        const got = await pull(blobUrl(registry, 'lib/small', small.digest)).done;
        expect([got.status, got.complete, got.headers['docker-content-digest'], got.headers['content-length']]).toEqual([200, true, small.digest, String(small.bytes.length)]);
        expect(got.body.equals(small.bytes)).toBe(true);
      }
      expect(gets('lib/small', small.digest) - before).toBe(1);
      // Kept once the last client has its bytes: by then the digest checked out.
      await waitFor(async () => isLinked(registry, 'up/lib/small', small.digest) && (await stored(small.digest)), 'the blob to be kept');
      await waitFor(() => spoolEmpty(registry), 'the spool directory to be empty');
      expect(registry.errors).toEqual([]);
    } finally {
      await registry.close();
    }
  });

  it('8 concurrent GETs of a new 33 MiB blob: one upstream GET, each repository linked', async () => {
    const { registry } = await mirrorRegistry();
    proxy.fault(big.digest, { kind: 'hold', at: 16 * MiB });
    try {
      const before = proxy.count('GET', `/blobs/${big.digest}`);
      const repos = ['lib/big', 'lib/big', 'lib/big', 'other/big', 'lib/big', 'lib/big', 'other/big', 'lib/big'];
      const pulls = repos.map((repo) => pull(blobUrl(registry, repo, big.digest)));
      await proxy.held();
      expect(await Promise.all(pulls.map((p) => p.headers))).toEqual(repos.map(() => 200));
      // Every client is in before the body goes on: one download serves them all.
      expect(proxy.count('GET', `/blobs/${big.digest}`) - before).toBe(1);
      expect(pulls.every((p) => !p.ended() && p.received() <= 16 * MiB)).toBe(true);
      proxy.fault(big.digest, undefined);
      proxy.release();
      for (const got of await Promise.all(pulls.map((p) => p.done))) {
        expect([got.status, got.complete, got.body.length]).toEqual([200, true, big.bytes.length]);
        expect(got.body.equals(big.bytes)).toBe(true);
      }
      await waitFor(() => isLinked(registry, 'up/lib/big', big.digest) && isLinked(registry, 'up/other/big', big.digest), 'both links');
      const again = await pull(blobUrl(registry, 'other/big', big.digest)).done;
      expect(again.body.equals(big.bytes)).toBe(true);
      expect(proxy.count('GET', `/blobs/${big.digest}`) - before).toBe(1);
      await waitFor(() => spoolEmpty(registry), 'the spool directory to be empty');
    } finally {
      proxy.fault(big.digest, undefined);
      proxy.release();
      await registry.close();
    }
  });

  it('a Range while the blob downloads: 206 as the bytes arrive, its last byte once the blob is verified', async () => {
    const { registry } = await mirrorRegistry();
    proxy.fault(big.digest, { kind: 'hold', at: 8 * MiB });
    try {
      const whole = pull(blobUrl(registry, 'lib/big', big.digest));
      await proxy.held();
      const start = MiB;
      const part = pull(blobUrl(registry, 'lib/big', big.digest), { Range: `bytes=${start}-${start + 999}` });
      const tail = pull(blobUrl(registry, 'lib/big', big.digest), { Range: 'bytes=-10' });
      expect(await part.headers).toBe(206);
      expect(await tail.headers).toBe(206);
      await part.until(999);
      expect([part.received(), part.ended(), tail.received(), tail.ended()]).toEqual([999, false, 0, false]);
      proxy.fault(big.digest, undefined);
      proxy.release();
      const [gotPart, gotTail, gotWhole] = await Promise.all([part.done, tail.done, whole.done]);
      expect([gotPart.complete, gotPart.headers['content-range']]).toEqual([true, `bytes ${start}-${start + 999}/${big.bytes.length}`]);
      expect(gotPart.body.equals(big.bytes.subarray(start, start + 1000))).toBe(true);
      expect(gotTail.body.equals(big.bytes.subarray(big.bytes.length - 10))).toBe(true);
      expect(gotWhole.body.equals(big.bytes)).toBe(true);
    } finally {
      proxy.fault(big.digest, undefined);
      proxy.release();
      await registry.close();
    }
  });

  it('clients that join a download late read its early bytes from the spool, the recent ones as the others do', async () => {
    const { registry } = await mirrorRegistry();
    // Far enough in that the first bytes are written out and no longer held in memory.
    proxy.fault(big.digest, { kind: 'hold', at: 32 * MiB });
    try {
      const first = pull(blobUrl(registry, 'lib/big', big.digest));
      await proxy.held();
      const late = pull(blobUrl(registry, 'lib/big', big.digest));
      const head = pull(blobUrl(registry, 'lib/big', big.digest), { Range: 'bytes=0-999' });
      await Promise.all([late.until(31 * MiB), head.until(999)]);
      expect([late.received() < big.bytes.length, late.ended(), head.received(), head.ended()]).toEqual([true, false, 999, false]);
      proxy.fault(big.digest, undefined);
      proxy.release();
      const [gotFirst, gotLate, gotHead] = await Promise.all([first.done, late.done, head.done]);
      expect([gotFirst.complete, gotLate.complete, gotHead.complete]).toEqual([true, true, true]);
      expect(gotFirst.body.equals(big.bytes) && gotLate.body.equals(big.bytes)).toBe(true);
      expect(gotHead.body.equals(big.bytes.subarray(0, 1000))).toBe(true);
    } finally {
      proxy.fault(big.digest, undefined);
      proxy.release();
      await registry.close();
    }
  });

  /** After a failed download: every client cut short, nothing linked, stored or spooled; then a healthy GET succeeds. */
  async function expectNothingKept(mirror: Awaited<ReturnType<typeof mirrorRegistry>>, pulled: Pulled[]): Promise<void> {
    const { registry, stored } = mirror;
    for (const got of pulled) {
      expect(got.complete).toBe(false);
      expect(got.body.length).toBeLessThan(mid.bytes.length);
    }
    await waitFor(() => spoolEmpty(registry), 'the spool directory to be empty');
    expect(isLinked(registry, 'up/lib/mid', mid.digest)).toBe(false);
    expect(await stored(mid.digest)).toBe(false);
    proxy.fault(mid.digest, undefined);
    const again = await pull(blobUrl(registry, 'lib/mid', mid.digest)).done;
    expect([again.status, again.complete]).toEqual([200, true]);
    expect(again.body.equals(mid.bytes)).toBe(true);
    await waitFor(async () => isLinked(registry, 'up/lib/mid', mid.digest) && (await stored(mid.digest)), 'the blob to be kept');
  }

  it('a corrupt blob: every client cut before its end, nothing kept; the next GET fetches anew', async () => {
    const mirror = await mirrorRegistry();
    proxy.fault(mid.digest, { kind: 'corrupt', at: 2 * MiB });
    try {
      const pulls = [pull(blobUrl(mirror.registry, 'lib/mid', mid.digest)), pull(blobUrl(mirror.registry, 'lib/mid', mid.digest))];
      await expectNothingKept(mirror, await Promise.all(pulls.map((p) => p.done)));
    } finally {
      proxy.fault(mid.digest, undefined);
      await mirror.registry.close();
    }
  });

  it('an upstream that dies mid-blob: every client cut, nothing kept; the next GET fetches anew', async () => {
    const mirror = await mirrorRegistry();
    proxy.fault(mid.digest, { kind: 'die', at: 2 * MiB });
    try {
      const pulls = [pull(blobUrl(mirror.registry, 'lib/mid', mid.digest)), pull(blobUrl(mirror.registry, 'lib/mid', mid.digest))];
      await expectNothingKept(mirror, await Promise.all(pulls.map((p) => p.done)));
    } finally {
      proxy.fault(mid.digest, undefined);
      await mirror.registry.close();
    }
  });

  it('an upstream that stalls mid-blob: cut after the timeout, nothing kept, nothing left by a client gone first', async () => {
    const mirror = await mirrorRegistry({ timeout: 1000 });
    proxy.fault(mid.digest, { kind: 'hold', at: 2 * MiB });
    try {
      const gone = pull(blobUrl(mirror.registry, 'lib/mid', mid.digest));
      const staying = pull(blobUrl(mirror.registry, 'lib/mid', mid.digest));
      await proxy.held();
      gone.abort();
      const pulled = await staying.done;
      proxy.release();
      await expectNothingKept(mirror, [pulled, await gone.done]);
    } finally {
      proxy.fault(mid.digest, undefined);
      proxy.release();
      await mirror.registry.close();
    }
  });

  it('the client that started a download goes away: the blob is still fetched and kept', async () => {
    const { registry, stored } = await mirrorRegistry();
    proxy.fault(mid.digest, { kind: 'hold', at: MiB });
    try {
      const before = gets('lib/mid', mid.digest);
      const first = pull(blobUrl(registry, 'lib/mid', mid.digest));
      await proxy.held();
      first.abort();
      await first.done;
      proxy.fault(mid.digest, undefined);
      proxy.release();
      await waitFor(async () => isLinked(registry, 'up/lib/mid', mid.digest) && (await stored(mid.digest)), 'the blob to be kept');
      const again = await pull(blobUrl(registry, 'lib/mid', mid.digest)).done;
      expect(again.body.equals(mid.bytes)).toBe(true);
      expect(gets('lib/mid', mid.digest) - before).toBe(1);
    } finally {
      proxy.fault(mid.digest, undefined);
      proxy.release();
      await registry.close();
    }
  });

  it('a registry closing mid-download stops it: the client cut, nothing kept or spooled', async () => {
    const dataDir = mkdtempSync(join(dir, 'closing-'));
    const { registry, stored } = await mirrorRegistry({ dataDir });
    proxy.fault(mid.digest, { kind: 'hold', at: MiB });
    try {
      const client = pull(blobUrl(registry, 'lib/mid', mid.digest));
      await proxy.held();
      await registry.close();
      expect((await client.done).complete).toBe(false);
      await waitFor(() => spoolEmpty(registry), 'the spool directory to be empty');
      expect(await stored(mid.digest)).toBe(false);
    } finally {
      proxy.fault(mid.digest, undefined);
      proxy.release();
    }
  });

  it('an upstream that sends no Content-Length: the blob is served once kept', async () => {
    const { registry } = await mirrorRegistry();
    proxy.fault(mid.digest, { kind: 'chunked', at: 0 });
    try {
      const got = await pull(blobUrl(registry, 'lib/mid', mid.digest)).done;
      expect([got.status, got.complete, got.headers['content-length']]).toEqual([200, true, String(mid.bytes.length)]);
      expect(got.body.equals(mid.bytes)).toBe(true);
      expect(isLinked(registry, 'up/lib/mid', mid.digest)).toBe(true);
    } finally {
      proxy.fault(mid.digest, undefined);
      await registry.close();
    }
  });

  it('a blob over the size limit: 413 SIZE_INVALID, nothing fetched', async () => {
    const { registry, stored } = await mirrorRegistry({ maxBlobSize: MiB });
    try {
      const before = gets('lib/mid', mid.digest);
      const res = await fetch(blobUrl(registry, 'lib/mid', mid.digest));
      expect([res.status, await errorCode(res)]).toEqual([413, 'SIZE_INVALID']);
      expect(await stored(mid.digest)).toBe(false);
      await waitFor(() => spoolEmpty(registry), 'the spool directory to be empty');
      expect(gets('lib/mid', mid.digest) - before).toBe(1);
    } finally {
      await registry.close();
    }
  });

  it('HEAD of a blob not here: the upstream size with the registry blob headers, nothing fetched', async () => {
    const { registry, stored } = await mirrorRegistry();
    try {
      const before = gets('lib/small', small.digest);
      const head = await fetch(blobUrl(registry, 'lib/small', small.digest), { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(Object.fromEntries(['content-length', 'docker-content-digest', 'etag', 'accept-ranges'].map((h) => [h, head.headers.get(h)]))).toEqual({
        'content-length': String(small.bytes.length),
        'docker-content-digest': small.digest,
        etag: `"${small.digest}"`,
        'accept-ranges': 'bytes',
      });
      expect(gets('lib/small', small.digest)).toBe(before);
      expect(isLinked(registry, 'up/lib/small', small.digest)).toBe(false);
      expect(await stored(small.digest)).toBe(false);
      const unknown = `sha256:${'0'.repeat(64)}`;
      expect((await fetch(blobUrl(registry, 'lib/small', unknown), { method: 'HEAD' })).status).toBe(404);
      const get = await fetch(blobUrl(registry, 'lib/small', unknown));
      expect([get.status, await errorCode(get)]).toEqual([404, 'BLOB_UNKNOWN']);
      await waitFor(() => spoolEmpty(registry), 'the spool directory to be empty');
    } finally {
      await registry.close();
    }
  });

  it('a blob another repository brought: linked here once the upstream has it here too, no bytes fetched', async () => {
    const { registry, stored } = await mirrorRegistry();
    try {
      expect((await pull(blobUrl(registry, 'lib/small', small.digest)).done).status).toBe(200);
      await waitFor(() => stored(small.digest), 'the blob to be kept');
      const heads = proxy.count('HEAD', `/v2/other/small/blobs/${small.digest}`);
      const fetched = gets('other/small', small.digest);
      const got = await pull(blobUrl(registry, 'other/small', small.digest)).done;
      expect([got.status, got.complete]).toEqual([200, true]);
      expect(got.body.equals(small.bytes)).toBe(true);
      expect(gets('other/small', small.digest)).toBe(fetched);
      expect(proxy.count('HEAD', `/v2/other/small/blobs/${small.digest}`) - heads).toBe(1);
      expect(isLinked(registry, 'up/other/small', small.digest)).toBe(true);
      // lib/mid does not have it upstream: another repository's copy is not this one's.
      const refused = await fetch(blobUrl(registry, 'lib/mid', small.digest));
      expect([refused.status, await errorCode(refused)]).toEqual([404, 'BLOB_UNKNOWN']);
      expect(isLinked(registry, 'up/lib/mid', small.digest)).toBe(false);
    } finally {
      await registry.close();
    }
  });
});

function isLinked(registry: TestRegistry, repo: string, digest: string): boolean {
  try {
    registry.store.statBlob(repo, digest);
    return true;
  } catch {
    return false;
  }
}
