// `regmeta serve --mirror` replicas on one PostgreSQL database, with one blob
// directory or one S3 bucket, in front of a real upstream (docker-registry,
// images pushed by skopeo): one new image pulled through two replicas at
// once is fetched at most once per replica, kept once, and served from the
// cache after; one replica's first download leaves another's download in
// progress whole, though they share a data directory.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OCI, OciLayout, readBlob, sha256, type BuiltImage } from '../server/oci-layout.js';
import { faultProxy } from '../server/mirror/fault-proxy.js';
import { gateProxy, type GateProxy } from '../server/mirror/gate-proxy.js';
import { pull } from '../server/mirror/pull.js';
import { pushImage, startUpstream, type TestUpstream } from '../server/mirror/upstreams.js';
import { cliJson, replicaSuite, serverErrors, STORAGES, until } from './replicas.js';
import type { Served } from './run.js';

const MiB = 1 << 20;
const ACCEPT = [OCI.manifest, OCI.index].join(', ');

/** The digests of an image's blobs: its config and layers. */
const blobsOf = (image: BuiltImage) => [image.config.digest, ...image.layers.map((layer) => layer.digest)];

/** The spool files under a data directory's `mirror` (owner markers aside): downloads not over. */
function spooled(data: string): string[] {
  try {
    return readdirSync(join(data, 'mirror'), { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile() && entry.name !== '.owner')
      .map((entry) => entry.name);
  } catch {
    return [];
  }
}

/** What a replica warned of or failed at: a blob fetched but not kept, an answer of 500 and above. */
const troubles = (replica: Served) => [...serverErrors(replica).map((a) => `${a.status} ${a.method} ${a.path}`), ...`${replica.stdout()}${replica.stderr()}`.split('\n').filter((line) => line.includes('not kept'))];

describe.each(STORAGES)('replicas mirroring one upstream (blobs: %s)', (storage) => {
  const suite = replicaSuite({ storage });
  let upstream: TestUpstream;
  let layout: OciLayout;
  const proxies: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    upstream = await startUpstream();
    layout = new OciLayout(join(suite.dir('regmeta-replicas-mirror-'), 'layout'));
  }, 180_000);

  afterAll(async () => {
    for (const proxy of proxies) await proxy.close();
    await upstream?.stop();
  });

  /** A new image in the upstream as `repo:1`. */
  async function newImage(repo: string, layers: number, layerSize: number): Promise<BuiltImage> {
    const image = layout.addImage({ layers, layerSize });
    layout.tag(image.descriptor, repo);
    await pushImage(upstream, layout, repo, `library/${repo}`, '1');
    return image;
  }

  /**
   * Pulls `up/library/<repo>:1` through `replica` as a client does, every
   * blob at once after the manifest.
   * @returns what is wrong, or '' when everything came byte-identical with the upstream's.
   */
  async function pullImage(replica: Served, repo: string, image: BuiltImage): Promise<string> {
    const base = `${replica.url}/v2/up/library/${repo}`;
    const manifest = await fetch(`${base}/manifests/1`, { headers: { Accept: ACCEPT } });
    if (manifest.status !== 200) return `the manifest answered ${manifest.status}`;
    if (!Buffer.from(await manifest.arrayBuffer()).equals(image.bytes)) return 'the manifest has other bytes';
    const problems = await Promise.all(
      blobsOf(image).map(async (digest) => {
        const blob = await fetch(`${base}/blobs/${digest}`);
        if (blob.status !== 200) return `blob ${digest} answered ${blob.status}`;
        const bytes = Buffer.from(await blob.arrayBuffer());
        return bytes.equals(readBlob(layout.dir, digest)) ? '' : `blob ${digest} has other bytes`;
      }),
    );
    return problems.filter((problem) => problem !== '').join('; ');
  }

  /** The requests for blob `digest` that went through `proxy` (GET or HEAD). */
  const asked = (proxy: GateProxy, digest: string) => proxy.paths.filter((path) => path.includes(`/blobs/${digest}`)).length;

  it('one new image pulled through two replicas at once: each blob fetched once per replica, kept once, then served from the cache', async () => {
    const image = await newImage('together', 3, 256 * 1024);
    const digests = blobsOf(image);
    // A door to the upstream per replica: what each fetched is counted apart.
    const doors = [await gateProxy(upstream.url), await gateProxy(upstream.url)];
    proxies.push(...doors);
    const { database, data, storage: storageArgs } = await suite.cluster(0);
    const [a] = await suite.more(database, data, 1, ['--mirror', `up=${doors[0].url}`]);
    const [b] = await suite.more(database, data, 1, ['--mirror', `up=${doors[1].url}`]);

    // The upstream's blobs held until both replicas have asked for each: the pulls overlap for sure.
    for (const door of doors) door.hold('/blobs/');
    const pulls = [a, a, b, b].map((replica) => pullImage(replica, 'together', image));
    await Promise.all(doors.map((door) => door.until(() => digests.every((digest) => asked(door, digest) > 0))));
    for (const door of doors) {
      door.hold(undefined);
      door.release();
    }
    expect(await Promise.all(pulls)).toEqual(['', '', '', '']);
    for (const door of doors) expect(digests.map((digest) => asked(door, digest))).toEqual(digests.map(() => 1));

    // A third pull from either replica: from the cache, no blob asked of the upstream.
    await until(() => spooled(a.listening.data as string).length === 0 && spooled(b.listening.data as string).length === 0, 'the downloads to be kept');
    const before = doors.map((door) => door.paths.length);
    expect(await pullImage(a, 'together', image)).toBe('');
    expect(await pullImage(b, 'together', image)).toBe('');
    expect(doors.map((door, i) => door.paths.slice(before[i]).filter((path) => path.includes('/blobs/')))).toEqual([[], []]);

    // Each blob once in the store, linked once, its file whole.
    const stats = await cliJson<{ blobs: number; blobLinks: number }>(database, ['stats']);
    expect([stats.blobs, stats.blobLinks]).toEqual([digests.length, digests.length]);
    const check = await cliJson<{ ok: boolean; checked: { blobFiles: number } }>(database, ['check', '--deep', '--data', data, ...storageArgs]);
    expect(check).toMatchObject({ ok: true, checked: { blobFiles: digests.length } });
    expect([...troubles(a), ...troubles(b)]).toEqual([]);
  });

  it("one replica's first download leaves another's download whole, their data directory shared or not", async () => {
    const image = await newImage('spooled', 1, 2 * MiB);
    const [layer] = image.layers;
    const proxy = await faultProxy(upstream.url);
    proxies.push(proxy);
    const { database, data, all, storage: storageArgs } = await suite.cluster(2, ['--mirror', `up=${proxy.url}`]);
    const [a, b] = all;
    const blobUrl = (replica: Served, digest: string) => `${replica.url}/v2/up/library/spooled/blobs/${digest}`;

    // A's download of the layer held halfway, its spool file written to.
    proxy.fault(layer.digest, { kind: 'hold', at: MiB });
    const held = pull(blobUrl(a, layer.digest));
    await proxy.held();
    await held.until(1);
    // B's first download meanwhile: B's mirror spools for the first time.
    const config = await pull(blobUrl(b, image.config.digest)).done;
    expect([config.status, config.complete, sha256(config.body)]).toEqual([200, true, image.config.digest]);
    proxy.fault(layer.digest, undefined);
    proxy.release();

    // A's download goes on whole, is verified and kept.
    const pulled = await held.done;
    expect([pulled.status, pulled.complete]).toEqual([200, true]);
    expect(pulled.body.equals(readBlob(layout.dir, layer.digest))).toBe(true);
    await until(() => spooled(a.listening.data as string).length === 0, "A's download to be kept");
    const fetched = proxy.count('GET', `/blobs/${layer.digest}`);
    // Kept: B serves it from the store, asking the upstream nothing.
    const again = await pull(blobUrl(b, layer.digest)).done;
    expect([again.status, again.complete, sha256(again.body)]).toEqual([200, true, layer.digest]);
    expect(proxy.count('GET', `/blobs/${layer.digest}`)).toBe(fetched);
    expect(await cliJson<{ ok: boolean }>(database, ['check', '--deep', '--data', data, ...storageArgs])).toMatchObject({ ok: true });
    expect([...troubles(a), ...troubles(b)]).toEqual([]);
  });
});
