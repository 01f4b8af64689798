// Eight clients pulling one new image at once through one `regmeta serve
// --mirror`: eight real skopeo copies of a multi-layer image, the upstream
// (docker-registry, behind a proxy that counts and holds its blob answers)
// asked once per blob, every copy byte-identical with the upstream's.

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveProgram } from '../../bench/peers.js';
import { listBlobs, OciLayout, readBlob, resolveTag } from '../server/oci-layout.js';
import { gateProxy, type GateProxy } from '../server/mirror/gate-proxy.js';
import { pushImage, startUpstream, type TestUpstream } from '../server/mirror/upstreams.js';
import { emptyAuth, must } from './mirror.js';
import { serve, tempDir, type Served } from './run.js';

const CLIENTS = 8;
const work = tempDir('regmeta-mirror-burst-');
const auth = emptyAuth(work);
let upstream: TestUpstream;
/** Between the mirror and the upstream. */
let toUpstream: GateProxy;
/** Between the clients and the mirror: what they asked, counted as it arrives. */
let toMirror: GateProxy;
let server: Served;

beforeAll(async () => {
  if (!haveProgram('skopeo')) throw new Error('skopeo is not installed: this test drives the real client');
  upstream = await startUpstream();
  toUpstream = await gateProxy(upstream.url);
  server = await serve(join(work, 'data'), ['--mirror', `up=${toUpstream.url}`]);
  toMirror = await gateProxy(server.url);
}, 180_000);

afterAll(async () => {
  await toMirror?.close();
  await server?.stop();
  await toUpstream?.close();
  await upstream?.stop();
});

describe('a mirror pulled by many clients at once', () => {
  it(`${CLIENTS} skopeo copies of one new image: one upstream GET per blob, every copy byte-identical`, async () => {
    const layout = new OciLayout(join(work, 'layout'));
    const image = layout.addImage({ layers: 4, layerSize: 512 * 1024 });
    layout.tag(image.descriptor, 'burst');
    await pushImage(upstream, layout, 'burst', 'library/burst', '1');
    const digests = [image.config.digest, ...image.layers.map((layer) => layer.digest)];
    const logs = () => `${server.stdout().slice(-3000)}${server.stderr().slice(-3000)}`;
    const asked = (proxy: GateProxy, digest: string) => proxy.paths.filter((path) => path.includes(`/blobs/${digest}`)).length;

    // The upstream's blobs held until every client has asked for each blob the mirror is fetching.
    toUpstream.hold('/blobs/');
    const host = new URL(toMirror.url).host;
    const copies = Array.from({ length: CLIENTS }, (_, i) => join(work, `copy-${i}`));
    const pulls = copies.map((dir) =>
      must('skopeo', ['copy', '--insecure-policy', '--src-tls-verify=false', '--quiet', `docker://${host}/up/library/burst:1`, `oci:${dir}:burst`], { REGISTRY_AUTH_FILE: auth }, logs),
    );
    await toMirror.until(() => {
      const fetching = digests.filter((digest) => asked(toUpstream, digest) > 0);
      return fetching.length > 0 && fetching.every((digest) => asked(toMirror, digest) === CLIENTS);
    });
    toUpstream.hold(undefined);
    toUpstream.release();
    await Promise.all(pulls);

    expect(digests.map((digest) => asked(toUpstream, digest))).toEqual(digests.map(() => 1));
    for (const dir of copies) {
      expect(resolveTag(dir, 'burst').digest).toBe(image.descriptor.digest);
      expect(listBlobs(dir)).toEqual([image.descriptor.digest, ...digests].sort());
      for (const digest of listBlobs(dir)) expect(readBlob(dir, digest).equals(readBlob(layout.dir, digest)), digest).toBe(true);
    }
  });
});
