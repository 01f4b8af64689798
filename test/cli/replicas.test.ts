// Three real `regmeta serve` processes on one PostgreSQL database (the
// harness starts the server) and one blob directory, or one S3 bucket with a
// data directory each and nothing shared on disk, driven by real clients:
// skopeo pushes to one replica and pulls byte-identical from another, a
// delete through the third is seen by all; a chunked upload's requests go to
// all three in turn; and 3 × 20 concurrent pushes of one tag lose no write,
// with the event log as the proof.

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { putManifest } from '../server/helpers.js';
import { listBlobs, OCI, OciLayout, readBlob, resolveTag, sha256 } from '../server/oci-layout.js';
import {
  answers,
  cliJson,
  makeImage,
  postBlob,
  pullProblem,
  serverErrors,
  skopeo,
  replicaSuite,
  STORAGES,
  tagEvents,
  until,
  type Answer,
} from './replicas.js';
import type { Served } from './run.js';

const hostOf = (replica: Served) => replica.url.replace('http://', '');
const tls = ['--src-tls-verify=false', '--dest-tls-verify=false'];
const MiB = 1 << 20;

/** `location` (absolute or not, as a replica answered it) on `replica`: a load balancer sends the next request anywhere. */
const on = (replica: Served, location: string) => {
  const url = new URL(location, replica.url);
  return new URL(url.pathname + url.search, replica.url);
};

describe.each(STORAGES)('three replicas on one PostgreSQL (blobs: %s)', (storage) => {
  const suite = replicaSuite({ storage });
  /** A fresh database, a fresh blob directory or bucket prefix, and three replicas on them. */
  const threeReplicas = () => suite.cluster(3);

  it('an image pushed with skopeo to A pulls byte-identical from B, and a delete through C is seen by A and B', async () => {
    const { all } = await threeReplicas();
    const [a, b, c] = all;
    const work = suite.dir('regmeta-replicas-skopeo-');
    const auth = join(work, 'auth.json');
    const layout = new OciLayout(join(work, 'source'));
    const image = layout.addImage({ layers: 3 });
    layout.tag(image.descriptor, 'v1');
    const index = layout.addIndex([
      { architecture: 'amd64', os: 'linux' },
      { architecture: 'arm64', os: 'linux', variant: 'v8' },
    ]);
    layout.tag(index.descriptor, 'multi');

    await skopeo(auth, 'copy', '--insecure-policy', ...tls, '--preserve-digests', `oci:${layout.dir}:v1`, `docker://${hostOf(a)}/rep/app:v1`);
    await skopeo(auth, 'copy', '--insecure-policy', ...tls, '--all', '--preserve-digests', `oci:${layout.dir}:multi`, `docker://${hostOf(a)}/rep/app:multi`);

    // Pulled through B, every blob (manifests, configs, layers) byte-identical to the source's.
    const pulled = join(work, 'pulled');
    await skopeo(auth, 'copy', '--insecure-policy', ...tls, `docker://${hostOf(b)}/rep/app:v1`, `oci:${pulled}:v1`);
    await skopeo(auth, 'copy', '--insecure-policy', ...tls, '--all', `docker://${hostOf(b)}/rep/app:multi`, `oci:${pulled}:multi`);
    expect(resolveTag(pulled, 'v1').digest).toBe(image.descriptor.digest);
    expect(resolveTag(pulled, 'multi').digest).toBe(index.descriptor.digest);
    const expected = [image, ...index.images].flatMap((i) => [i.descriptor.digest, i.config.digest, ...i.layers.map((l) => l.digest)]);
    expect(listBlobs(pulled)).toEqual([...new Set([...expected, index.descriptor.digest])].sort());
    for (const digest of listBlobs(pulled)) {
      expect(sha256(readBlob(pulled, digest))).toBe(digest);
      expect(readBlob(pulled, digest).equals(readBlob(layout.dir, digest))).toBe(true);
    }

    // Deleted through C: the image by digest, the index's tag by name.
    const byDigest = await fetch(`${c.url}/v2/rep/app/manifests/${image.descriptor.digest}`, { method: 'DELETE' });
    expect(byDigest.status).toBe(202);
    const byTag = await fetch(`${c.url}/v2/rep/app/manifests/multi`, { method: 'DELETE' });
    expect(byTag.status).toBe(202);
    const accept = { Accept: [OCI.manifest, OCI.index].join(', ') };
    for (const replica of [a, b]) {
      for (const reference of ['v1', image.descriptor.digest, 'multi']) {
        expect((await fetch(`${replica.url}/v2/rep/app/manifests/${reference}`, { headers: accept })).status, `${reference} at ${replica.url}`).toBe(404);
      }
      // The index itself stays, untagged, for gc: deleting a tag deletes the tag only.
      expect((await fetch(`${replica.url}/v2/rep/app/manifests/${index.descriptor.digest}`, { headers: accept })).status).toBe(200);
      const listed = (await (await fetch(`${replica.url}/v2/rep/app/tags/list`)).json()) as { tags: string[] };
      expect(listed.tags).toEqual([]);
    }
    await expect(skopeo(auth, 'inspect', '--raw', '--tls-verify=false', `docker://${hostOf(b)}/rep/app:v1`)).rejects.toThrow(/manifest unknown/i);
    for (const replica of all) expect(serverErrors(replica)).toEqual([]);
  });

  it('a chunked upload whose POST, PATCHes (under and over 5 MiB) and PUT go to each replica in turn pulls byte-identical from all', async () => {
    const { all } = await threeReplicas();
    const sizes = [1 * MiB, 7 * MiB, 3 * MiB + 17, 6 * MiB, 512 * 1024 + 3];
    const bytes = randomBytes(sizes.reduce((a, b) => a + b));
    const digest = sha256(bytes);
    const repo = 'rep/chunked';
    let res = await fetch(`${all[0].url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    expect(res.status).toBe(202);
    let location = res.headers.get('location')!;
    let offset = 0;
    for (const [i, size] of sizes.entries()) {
      const chunk = bytes.subarray(offset, offset + size);
      const headers = { 'Content-Type': 'application/octet-stream', 'Content-Range': `${offset}-${offset + size - 1}` };
      res = await fetch(on(all[(i + 1) % 3], location), { method: 'PATCH', headers, body: chunk });
      expect(res.status, await res.text()).toBe(202);
      offset += size;
      expect(res.headers.get('range')).toBe(`0-${offset - 1}`);
      location = res.headers.get('location')!;
    }
    // Its status, asked of a replica that took no chunk just before.
    const status = await fetch(on(all[(sizes.length + 2) % 3], location));
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe(`0-${bytes.length - 1}`);
    const put = on(all[(sizes.length + 1) % 3], location);
    put.searchParams.set('digest', digest);
    res = await fetch(put, { method: 'PUT' });
    expect(res.status, await res.text()).toBe(201);
    for (const replica of all) {
      const pulled = await fetch(`${replica.url}/v2/${repo}/blobs/${digest}`);
      expect(pulled.status).toBe(200);
      expect(Buffer.from(await pulled.arrayBuffer()).equals(bytes), `the blob from ${replica.url}`).toBe(true);
      expect(serverErrors(replica)).toEqual([]);
    }
  });

  it('3 × 20 concurrent pushes of one tag: every answer 201, the tag names the last TAG event, and the event log replayed is the final state', async () => {
    const { database, all } = await threeReplicas();
    const repo = 'race/app';
    const images = Array.from({ length: 60 }, (_, i) => makeImage(`race ${i}`));
    const through = (i: number) => all[i % all.length];
    // The blobs first, each through the replica that will take its manifest.
    for (let i = 0; i < images.length; i++) {
      for (const bytes of images[i].blobs) expect(await postBlob(through(i).url, repo, bytes)).toEqual({ status: 201 });
    }

    const answered: Answer[] = await Promise.all(
      images.map(async (image, i) => {
        const res = await putManifest(through(i).url, repo, 'latest', image.manifest);
        await res.arrayBuffer();
        return { status: res.status };
      }),
    );
    expect(answered.filter((a) => a.status !== 201)).toEqual([]);
    for (const replica of all) {
      // The request log is written asynchronously: each replica's 20 lines, then none of 500.
      await until(() => answers(replica).filter((a) => a.method === 'PUT').length === 20, `20 PUTs logged by ${replica.url}`);
      expect(serverErrors(replica)).toEqual([]);
    }

    const events = await tagEvents(database, repo);
    // Every push moved the tag once: 60 events, each from the previous target, none lost.
    expect(events).toHaveLength(60);
    expect(events[0]).toMatchObject({ type: 'CREATE', tag: 'latest' });
    for (let i = 1; i < events.length; i++) {
      expect(events[i]).toMatchObject({ type: 'UPDATE', tag: 'latest', previousDigest: events[i - 1].digest });
    }
    expect(new Set(events.map((e) => e.digest))).toEqual(new Set(images.map((image) => image.digest)));

    const replayed = new Map<string, string>();
    for (const event of events) {
      if (event.type === 'DELETE') replayed.delete(event.tag);
      else replayed.set(event.tag, event.digest!);
    }
    const tags = await cliJson<{ tag: string; digest: string }[]>(database, ['tags', repo]);
    expect(tags.map((t) => [t.tag, t.digest])).toEqual([...replayed]);
    const last = events.at(-1)!.digest!;
    expect(tags).toMatchObject([{ tag: 'latest', digest: last }]);

    // Every replica serves that one, whole.
    const final = images.find((image) => image.digest === last)!;
    for (const replica of all) expect(await pullProblem(replica.url, repo, 'latest', final)).toBe('');
    // The tag's history (newest first) is the log's sequence of targets.
    const history = await cliJson<{ digest: string }[]>(database, ['history', repo, 'latest']);
    expect(history.map((h) => h.digest).reverse()).toEqual(events.map((e) => e.digest));
  });
});
