// `regmeta serve --mirror` as a process, in front of a real upstream (Debian's
// docker-registry with images pushed by skopeo), pulled through by real
// clients as they are configured in docs/mirroring.md: skopeo through the
// prefix (twice, byte-identical), curl as containerd asks (?ns=), and as a
// Docker daemon asks (unprefixed paths, --mirror-default); a push into the
// mirror's namespace refused in words; a stopped upstream's images served
// from the cache; upstreams behind basic auth and bearer tokens, their
// password in no output.

import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveProgram } from '../../bench/peers.js';
import { listBlobs, OCI, OciLayout, readBlob, resolveTag, type BuiltImage } from '../server/oci-layout.js';
import { pushImage, startUpstream as startLockedUpstream, type TestUpstream } from '../server/mirror/upstreams.js';
import { emptyAuth, must, run, startUpstream, type Upstream } from './mirror.js';
import { regmeta, serve, tempDir, type Served } from './run.js';

const ACCEPT = [OCI.manifest, OCI.index, 'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json'].join(', ');

const work = tempDir('regmeta-mirror-');
const auth = emptyAuth(work);
const servers: Served[] = [];
let upstream: Upstream;
let server: Served;

/** The logs of everything running, for a failure's message. */
const logs = () => [`--- upstream ---\n${upstream?.peer.output().slice(-3000)}`, ...servers.map((s) => `--- regmeta ---\n${s.stdout().slice(-3000)}${s.stderr().slice(-3000)}`)].join('\n');

async function started(args: string[]): Promise<Served> {
  const served = await serve(join(tempDir('regmeta-mirror-data-'), 'data'), args);
  servers.push(served);
  return served;
}

const skopeo = (args: string[]) => must('skopeo', args, { REGISTRY_AUTH_FILE: auth }, logs);
const host = (served: Served) => new URL(served.url).host;

/** curl's answer: status, headers (lower-case names) and body bytes. */
async function curl(url: string, args: string[] = []): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  const body = join(work, 'curl.body');
  const head = join(work, 'curl.head');
  rmSync(body, { force: true });
  const status = await must('curl', ['-sS', '-o', body, '-D', head, '-w', '%{http_code}', '-H', `Accept: ${ACCEPT}`, ...args, url]);
  const headers: Record<string, string> = {};
  for (const line of readFileSync(head, 'utf8').split('\r\n')) {
    const at = line.indexOf(':');
    if (at > 0) headers[line.slice(0, at).toLowerCase()] = line.slice(at + 1).trim();
  }
  return { status: Number(status), headers, body: (() => { try { return readFileSync(body); } catch { return Buffer.alloc(0); } })() };
}

const digestOf = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

beforeAll(async () => {
  for (const program of ['skopeo', 'curl']) if (!haveProgram(program)) throw new Error(`${program} is not installed: this test drives the real client`);
  upstream = await startUpstream(work, auth);
  server = await started(['--mirror', `up=${upstream.peer.url}`]);
  expect(server.listening.mirrors).toEqual([`up=${upstream.peer.url}`]);
}, 180_000);

afterAll(async () => {
  for (const served of servers) await served.stop();
  await upstream?.peer.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('a mirror, pulled through by real clients', () => {
  it('skopeo copies an image through the prefix, twice, byte for byte what the upstream holds', async () => {
    const { app, layout } = upstream;
    const pulls = [join(work, 'pull-1'), join(work, 'pull-2')];
    for (const dir of pulls) await skopeo(['copy', '--insecure-policy', '--src-tls-verify=false', '--quiet', `docker://${host(server)}/up/library/app:1`, `oci:${dir}:app`]);
    for (const dir of pulls) {
      expect(resolveTag(dir, 'app').digest).toBe(app.descriptor.digest);
      for (const d of [app.descriptor, app.config, ...app.layers]) expect(readBlob(dir, d.digest).equals(readBlob(layout.dir, d.digest)), d.digest).toBe(true);
    }
    expect(listBlobs(pulls[1])).toEqual(listBlobs(pulls[0]));
    // Cached as a push is recorded: the tag is in the store, the events are the mirror's.
    const tags = await regmeta(['tags', 'up/library/app', '--data', server.listening.data as string]);
    expect([tags.status, tags.stdout]).toEqual([0, expect.stringContaining(app.descriptor.digest)]);
  });

  it('skopeo copies a multi-platform index through the prefix, every child with it', async () => {
    const { multi, layout } = upstream;
    const dir = join(work, 'pull-multi');
    await skopeo(['copy', '--all', '--insecure-policy', '--src-tls-verify=false', '--quiet', `docker://${host(server)}/up/library/multi:latest`, `oci:${dir}:multi`]);
    expect(resolveTag(dir, 'multi').digest).toBe(multi.descriptor.digest);
    for (const image of multi.images) for (const d of [image.descriptor, image.config, ...image.layers]) expect(readBlob(dir, d.digest).equals(readBlob(layout.dir, d.digest))).toBe(true);
  });

  it("answers containerd's requests: an unprefixed path with ?ns=<prefix>", async () => {
    const { app, layout } = upstream;
    // containerd resolves a tag by HEAD, then fetches by digest.
    const head = await curl(`${server.url}/v2/library/app/manifests/1?ns=up`, ['-I']);
    expect([head.status, head.headers['docker-content-digest']]).toEqual([200, app.descriptor.digest]);
    const manifest = await curl(`${server.url}/v2/library/app/manifests/${app.descriptor.digest}?ns=up`);
    expect([manifest.status, manifest.headers['docker-content-digest']]).toEqual([200, app.descriptor.digest]);
    expect(manifest.body.equals(app.bytes)).toBe(true);
    const layer = app.layers[1];
    const blob = await curl(`${server.url}/v2/library/app/blobs/${layer.digest}?ns=up`, ['-L']);
    expect([blob.status, digestOf(blob.body)]).toEqual([200, layer.digest]);
    expect(blob.body.equals(readBlob(layout.dir, layer.digest))).toBe(true);
    // An ns that names no mirror is an ordinary pull of this registry's own name.
    expect((await curl(`${server.url}/v2/library/app/manifests/1?ns=elsewhere.io`)).status).toBe(404);
  });

  it('answers a Docker daemon\'s requests with --mirror-default: unprefixed paths, while names pushed here stay here', async () => {
    const { app, layout } = upstream;
    const daemon = await started(['--mirror', `up=${upstream.peer.url}`, '--mirror-default', 'up']);
    const local = new OciLayout(join(work, 'local'));
    const mine = local.addImage({ layers: 1 });
    local.tag(mine.descriptor, 'mine');
    await skopeo(['copy', '--insecure-policy', '--dest-tls-verify=false', '--preserve-digests', '--quiet', `oci:${local.dir}:mine`, `docker://${host(daemon)}/library/mine:1`]);
    const mirrored = await curl(`${daemon.url}/v2/library/app/manifests/1`);
    expect([mirrored.status, mirrored.headers['docker-content-digest']]).toEqual([200, app.descriptor.digest]);
    const blob = await curl(`${daemon.url}/v2/library/app/blobs/${app.config.digest}`, ['-L']);
    expect(blob.body.equals(readBlob(layout.dir, app.config.digest))).toBe(true);
    const pushed = await curl(`${daemon.url}/v2/library/mine/manifests/1`);
    expect([pushed.status, pushed.headers['docker-content-digest']]).toEqual([200, mine.descriptor.digest]);
    // Neither here nor upstream: the client is told so, not served an error of the server's.
    expect((await curl(`${daemon.url}/v2/library/absent/manifests/1`)).status).toBe(404);
    // skopeo as a daemon would pull: the whole image by the unprefixed name.
    const dir = join(work, 'pull-default');
    await skopeo(['copy', '--insecure-policy', '--src-tls-verify=false', '--quiet', `docker://${host(daemon)}/library/app:1`, `oci:${dir}:app`]);
    expect(resolveTag(dir, 'app').digest).toBe(app.descriptor.digest);
  });

  it("refuses a push into the mirror's namespace with a message that names the mirror; pushes elsewhere work", async () => {
    const { layout } = upstream;
    const copy = ['copy', '--insecure-policy', '--dest-tls-verify=false', '--quiet', `oci:${layout.dir}:app`];
    const refused = await run('skopeo', [...copy, `docker://${host(server)}/up/library/pushed:1`], { REGISTRY_AUTH_FILE: auth });
    expect(refused.code).not.toBe(0);
    const upload = await curl(`${server.url}/v2/up/library/pushed/blobs/uploads/`, ['-X', 'POST']);
    expect(upload.status).toBe(405);
    const [error] = (JSON.parse(upload.body.toString()) as { errors: { code: string; message: string }[] }).errors;
    expect(error).toMatchObject({ code: 'UNSUPPORTED', message: `up/ is a mirror of ${upstream.peer.url}, which is read-only: push to a repository outside it` });
    expect(refused.stderr).toContain('read-only');
    await skopeo([...copy, `docker://${host(server)}/team/pushed:1`]);
  });
});

describe('a mirror whose upstream has stopped', () => {
  it('serves what it cached: skopeo pulls again, the tag marked stale with a Warning', async () => {
    const dir = tempDir('regmeta-mirror-offline-');
    const gone = await startUpstream(dir, auth);
    const config = join(dir, 'regmeta.yaml');
    // ttl 0: every pull checks the tag, so the second one meets the stopped upstream.
    writeFileSync(config, `mirrors:\n  - { prefix: up, url: "${gone.peer.url}", ttl: 0 }\n`);
    const offline = await started(['--config', config]);
    const pull = (to: string) => skopeo(['copy', '--insecure-policy', '--src-tls-verify=false', '--quiet', `docker://${host(offline)}/up/library/app:1`, `oci:${to}:app`]);
    await pull(join(dir, 'online'));
    await gone.peer.stop();
    await pull(join(dir, 'offline'));
    for (const d of [gone.app.descriptor, gone.app.config, ...gone.app.layers]) expect(readBlob(join(dir, 'offline'), d.digest).equals(readBlob(gone.layout.dir, d.digest))).toBe(true);
    const stale = await curl(`${offline.url}/v2/up/library/app/manifests/1`);
    expect([stale.status, stale.headers['docker-content-digest']]).toEqual([200, gone.app.descriptor.digest]);
    expect(stale.headers.warning).toMatch(/^110 /);
  });
});

describe.each(['basic', 'token'] as const)('a mirror whose upstream wants a login (%s)', (kind) => {
  let locked: TestUpstream;
  let app: BuiltImage;
  let through: Served;
  let config: string;

  beforeAll(async () => {
    const dir = tempDir('regmeta-mirror-login-');
    locked = await startLockedUpstream(kind);
    const layout = new OciLayout(join(dir, 'layout'));
    app = layout.addImage({ layers: 1 });
    layout.tag(app.descriptor, 'app');
    await pushImage(locked, layout, 'app', 'library/app', '1');
    writeFileSync(join(dir, 'upstream.token'), `${locked.password}\n`);
    config = join(dir, 'regmeta.yaml');
    const entry = `url: "${locked.url}", username: ${locked.username}`;
    writeFileSync(config, `mirrors:\n  - { prefix: private, ${entry}, passwordFile: upstream.token, ttl: 0 }\n  - { prefix: inline, ${entry}, password: ${locked.password} }\n`);
    through = await started(['--config', config]);
  }, 180_000);

  afterAll(async () => {
    await locked?.stop();
  });

  it('pulls with the login from the config file, its password in a file or in the config', async () => {
    for (const prefix of ['private', 'inline']) {
      const dir = join(work, `pull-${kind}-${prefix}`);
      await skopeo(['copy', '--insecure-policy', '--src-tls-verify=false', '--quiet', `docker://${host(through)}/${prefix}/library/app:1`, `oci:${dir}:app`]);
      expect(resolveTag(dir, 'app').digest).toBe(app.descriptor.digest);
    }
  });

  it('shows the password nowhere: not in the log, --print-config, errors or metrics', async () => {
    const password = locked.password!;
    // A pull that works, and one the upstream refuses (a name it lacks).
    await curl(`${through.url}/v2/private/library/app/manifests/1`);
    const missing = await curl(`${through.url}/v2/private/library/absent/manifests/1`);
    const metrics = await curl(`${through.url}/metrics`);
    const printed = await regmeta(['serve', '--config', config, '--print-config']);
    expect(printed.status).toBe(0);
    expect(printed.stdout).toContain('passwordFile:');
    for (const text of [through.stdout(), through.stderr(), JSON.stringify(through.listening), printed.stdout, printed.stderr, missing.body.toString(), metrics.body.toString()]) {
      expect(text).not.toContain(password);
      expect(text).not.toContain(Buffer.from(`${locked.username}:${password}`).toString('base64'));
      // Nor a token the upstream's token service handed out.
      expect(text).not.toMatch(/Bearer [\w.-]{16}|eyJ[\w-]{16}/);
    }
  });
});
