// podman, unmodified, pulling through `regmeta serve --mirror` by a
// `registries.conf` mirror entry as docs/mirroring.md writes it: the image
// podman asks its upstream for comes from the mirror, byte for byte, and
// the upstream never sees podman. Skipped only where podman is missing; CI
// installs it (.ci/run).

import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveProgram } from '../../bench/peers.js';
import { emptyAuth, must, startUpstream, type Upstream } from './mirror.js';
import { serve, tempDir, type Served } from './run.js';

const podmanInstalled = haveProgram('podman');

describe.skipIf(!podmanInstalled)('podman with a registries.conf mirror entry', () => {
  const work = tempDir('regmeta-mirror-podman-');
  const auth = emptyAuth(work);
  let upstream: Upstream;
  let server: Served;
  let env: Record<string, string>;
  // A storage of its own, on vfs (no mounts), and nothing else of the machine's: events off, cgroups plain.
  const podman = (args: string[]) =>
    must(
      'podman',
      ['--root', join(work, 'root'), '--runroot', join(work, 'runroot'), '--storage-driver', 'vfs', '--events-backend', 'none', '--cgroup-manager', 'cgroupfs', ...args],
      env,
      () => `--- regmeta ---\n${server?.stdout().slice(-3000)}${server?.stderr().slice(-3000)}\n--- upstream ---\n${upstream?.peer.output().slice(-3000)}`,
    );

  beforeAll(async () => {
    upstream = await startUpstream(work, auth);
    server = await serve(join(work, 'data'), ['--mirror', `up=${upstream.peer.url}`]);
    const conf = join(work, 'registries.conf');
    // The upstream's own name, its mirror under the prefix: what an operator writes for docker.io.
    writeFileSync(
      conf,
      [
        '[[registry]]',
        `location = "${upstream.peer.host}"`,
        'insecure = true',
        '',
        '[[registry.mirror]]',
        `location = "${new URL(server.url).host}/up"`,
        'insecure = true',
        '',
      ].join('\n'),
    );
    env = { CONTAINERS_REGISTRIES_CONF: conf, REGISTRY_AUTH_FILE: auth };
  }, 180_000);

  afterAll(async () => {
    await server?.stop();
    await upstream?.peer.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('pulls the upstream\'s image from the mirror, and the upstream never sees podman', async () => {
    const name = `${upstream.peer.host}/library/app:1`;
    await podman(['pull', '--quiet', name]);
    expect((await podman(['image', 'inspect', '--format', '{{.Digest}}', name])).trim()).toBe(upstream.app.descriptor.digest);
    // podman asked the mirror, under the prefix…
    expect(server.stdout()).toMatch(/"path":"\/v2\/up\/library\/app\/manifests\/1"[^\n]*"status":200/);
    // …and only the mirror asked the upstream: podman's user agent (containers/image's) is not in its log.
    expect(upstream.peer.output()).not.toMatch(/useragent="?(libpod|podman|containers)\//);
  });
});
