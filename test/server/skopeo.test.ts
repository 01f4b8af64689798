// The real-client test: Debian's skopeo pushes, lists, inspects,
// pulls back and deletes images on our server over loopback, with the blobs
// in a directory, in S3 (the test S3 server), and in S3 with blob GETs
// redirected to pre-signed URLs, which skopeo follows. skopeo missing is a
// failure, not a skip: CI installs it (.ci/run).

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBlobs, OCI, OciLayout, readBlob, resolveTag, sha256 } from './oci-layout.js';
import { startS3Server, type S3Server } from '../blobstore/s3/server.js';
import { haveProgram, startDistribution, startOurs, stopAll, type Peer, type PeerOptions } from '../../bench/peers.js';

// The registry under test; startDistribution from ./peers.js runs the same cases against CNCF distribution.
const startOne: (options?: PeerOptions) => Promise<Peer> = startOurs;

const work = mkdtempSync(join(tmpdir(), 'regmeta-skopeo-'));
const started: Peer[] = [];
let s3: S3Server;
let prefixes = 0;

/** Where the registry keeps blobs: its --storage arguments (each registry a bucket prefix of its own). */
const STORAGES: { name: string; args: () => string[]; redirects?: boolean }[] = [
  { name: 'a directory', args: () => [] },
  { name: 'S3', args: () => ['--storage', `s3://${s3.bucket}/skopeo-${++prefixes}?endpoint=${s3.endpoint}&forcePathStyle=true`] },
  {
    name: 'S3, pulls redirected',
    redirects: true,
    args: () => ['--storage', `s3://${s3.bucket}/skopeo-${++prefixes}?endpoint=${s3.endpoint}&forcePathStyle=true`, '--storage-redirect'],
  },
];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs skopeo with an empty auth file, so nothing from $HOME leaks in. */
function skopeo(...args: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(
      'skopeo',
      args,
      { env: { ...process.env, REGISTRY_AUTH_FILE: join(work, 'auth.json') }, maxBuffer: 64 << 20, timeout: 60_000 },
      (error, stdout, stderr) => done({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** Runs skopeo and fails with its stderr and the server's log when it fails. */
async function mustSkopeo(...args: string[]): Promise<string> {
  const run = await skopeo(...args);
  if (run.code !== 0) {
    throw new Error(`skopeo ${args.join(' ')} exited ${run.code}:\n${run.stderr}\n--- server output (tail) ---\n${started.map((peer) => peer.output().slice(-4000)).join('\n---\n')}`);
  }
  return run.stdout;
}

const insecureCopy = ['copy', '--insecure-policy', '--src-tls-verify=false', '--dest-tls-verify=false'];

let layoutCount = 0;
function newLayout(): OciLayout {
  return new OciLayout(join(work, `layout-${++layoutCount}`));
}

/** Builds a one-image layout tagged `tag` and pushes it to `repo:tag` on `registry`; --preserve-digests makes any rewrite an error. */
async function pushImageTo(registry: Peer, repo: string, tag: string) {
  const layout = newLayout();
  const image = layout.addImage({ layers: 3 });
  layout.tag(image.descriptor, tag);
  await mustSkopeo(...insecureCopy, '--preserve-digests', `oci:${layout.dir}:${tag}`, `docker://${registry.host}/${repo}:${tag}`);
  return { layout, image };
}

beforeAll(async () => {
  if (!haveProgram('skopeo')) {
    throw new Error('skopeo is not installed: this test drives the real client (apt-get install skopeo; .ci/run does it in CI)');
  }
  s3 = await startS3Server();
});

afterAll(async () => {
  await stopAll();
  await s3?.cleanup();
  rmSync(work, { recursive: true, force: true });
});

describe.each(STORAGES)('blobs in $name', (storage) => {
  const startRegistry = (options: PeerOptions = {}) => startOne({ ...options, args: [...storage.args(), ...(options.args ?? [])] });
  let registry: Peer;
  const pushImage = (repo: string, tag: string) => pushImageTo(registry, repo, tag);

  beforeAll(async () => {
    registry = await startRegistry();
    started.push(registry);
  });

  describe('skopeo against the registry', () => {
    it('copies an image from an OCI layout into the registry and lists its tag', async () => {
      await pushImage('skopeo/push', 'v1');
      await pushImage('skopeo/push', 'v2');
      const listed = JSON.parse(await mustSkopeo('list-tags', '--tls-verify=false', `docker://${registry.host}/skopeo/push`));
      expect(listed.Repository).toBe(`${registry.host}/skopeo/push`);
      expect([...listed.Tags].sort()).toEqual(['v1', 'v2']);
    });

    it('inspect --raw answers the exact pushed manifest bytes', async () => {
      const { image } = await pushImage('skopeo/inspect', 'latest');
      const raw = await mustSkopeo('inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/skopeo/inspect:latest`);
      expect(Buffer.from(raw)).toEqual(image.bytes);
    });

    it('inspect reports the digest, platform and layers read through the config', async () => {
      const { image } = await pushImage('skopeo/inspect-full', 'latest');
      const info = JSON.parse(await mustSkopeo('inspect', '--tls-verify=false', `docker://${registry.host}/skopeo/inspect-full:latest`));
      expect(info.Digest).toBe(image.descriptor.digest);
      expect(info.Architecture).toBe('amd64');
      expect(info.Os).toBe('linux');
      expect(info.Layers).toEqual(image.layers.map((layer) => layer.digest));
      expect(info.RepoTags).toEqual(['latest']);
    });

    it('copies an image back out to a new OCI layout byte-identical (manifest, config and layers)', async () => {
      const { layout, image } = await pushImage('skopeo/roundtrip', 'v1');
      const out = join(work, `pulled-${++layoutCount}`);
      await mustSkopeo(...insecureCopy, `docker://${registry.host}/skopeo/roundtrip:v1`, `oci:${out}:v1`);
      const pulled = resolveTag(out, 'v1');
      expect(pulled.digest).toBe(image.descriptor.digest);
      expect(readBlob(out, pulled.digest)).toEqual(image.bytes);
      const expected = [image.descriptor.digest, image.config.digest, ...image.layers.map((layer) => layer.digest)].sort();
      expect(listBlobs(out)).toEqual(expected);
      for (const digest of expected) {
        const bytes = readBlob(out, digest);
        expect(sha256(bytes)).toBe(digest);
        expect(bytes).toEqual(readBlob(layout.dir, digest));
      }
      // Redirected, skopeo took the blobs from S3: the registry answered their GETs with 307.
      // The log is written in batches: wait for the lines, for as long as a loaded machine may take.
      if (storage.redirects) {
        const redirected = () =>
          registry
            .output()
            .split('\n')
            .filter((line) => line.startsWith('{'))
            .map((line) => JSON.parse(line) as { path?: string; status?: number })
            .filter((entry) => entry.status === 307 && entry.path?.startsWith('/v2/skopeo/roundtrip/blobs/')).length;
        for (const deadline = Date.now() + 30_000; redirected() === 0 && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 50));
        expect(redirected()).toBeGreaterThan(0);
      }
    });

    it('pushes a multi-architecture index with --all and inspect --raw answers the index and each child', async () => {
      const layout = newLayout();
      const index = layout.addIndex([
        { architecture: 'amd64', os: 'linux' },
        { architecture: 'arm64', os: 'linux', variant: 'v8' },
      ]);
      layout.tag(index.descriptor, 'multi');
      const dest = `docker://${registry.host}/skopeo/multi`;
      await mustSkopeo(...insecureCopy, '--all', '--preserve-digests', `oci:${layout.dir}:multi`, `${dest}:multi`);
      const raw = await mustSkopeo('inspect', '--raw', '--tls-verify=false', `${dest}:multi`);
      expect(Buffer.from(raw)).toEqual(index.bytes);
      expect(JSON.parse(raw).mediaType).toBe(OCI.index);
      for (const child of index.images) {
        const childRaw = await mustSkopeo('inspect', '--raw', '--tls-verify=false', `${dest}@${child.descriptor.digest}`);
        expect(Buffer.from(childRaw)).toEqual(child.bytes);
      }
      // Without --raw skopeo resolves the index to the child for the asked platform and reads its config.
      const info = JSON.parse(await mustSkopeo('--override-arch', 'arm64', '--override-variant', 'v8', 'inspect', '--tls-verify=false', `${dest}:multi`));
      expect(info.Digest).toBe(index.descriptor.digest);
      expect(info.Architecture).toBe('arm64');
      expect(info.Layers).toEqual(index.images[1].layers.map((layer) => layer.digest));
    });

    it('deletes a manifest so that it can no longer be pulled', async () => {
      const { image } = await pushImage('skopeo/delete', 'doomed');
      await pushImage('skopeo/delete', 'kept');
      await mustSkopeo('delete', '--tls-verify=false', `docker://${registry.host}/skopeo/delete:doomed`);
      const gone = await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/skopeo/delete@${image.descriptor.digest}`);
      expect(gone.code).not.toBe(0);
      expect(gone.stderr).toMatch(/manifest unknown/i);
      const byDigest = await fetch(`${registry.url}/v2/skopeo/delete/manifests/${image.descriptor.digest}`, {
        headers: { Accept: OCI.manifest },
      });
      expect(byDigest.status).toBe(404);
      const listed = JSON.parse(await mustSkopeo('list-tags', '--tls-verify=false', `docker://${registry.host}/skopeo/delete`));
      expect(listed.Tags).toEqual(['kept']);
    });
  });

  describe('skopeo with basic auth', () => {
    let guarded: Peer | undefined;
    let skipReason = '';

    beforeAll(async () => {
      const htpasswd = join(work, 'htpasswd');
      writeFileSync(htpasswd, `pusher:${bcrypt.hashSync('s3cret', 10)}\n`);
      try {
        guarded = await startRegistry({ htpasswd });
        started.push(guarded);
      } catch (error) {
        skipReason = `the server does not start with --htpasswd: ${(error as Error).message.split('\n')[0]}`;
      }
    });

    it('pushes with --dest-creds and is refused without them', async (context) => {
      if (!guarded) context.skip(skipReason);
      const host = guarded!.host;
      const layout = newLayout();
      const image = layout.addImage({ layers: 1 });
      layout.tag(image.descriptor, 'v1');
      const source = `oci:${layout.dir}:v1`;
      const anonymous = await skopeo(...insecureCopy, source, `docker://${host}/auth/app:v1`);
      expect(anonymous.code).not.toBe(0);
      expect(anonymous.stderr).toMatch(/unauthorized|authentication required|401/i);
      const wrong = await skopeo(...insecureCopy, '--dest-creds', 'pusher:wrong', source, `docker://${host}/auth/app:v1`);
      expect(wrong.code).not.toBe(0);
      await mustSkopeo(...insecureCopy, '--dest-creds', 'pusher:s3cret', source, `docker://${host}/auth/app:v1`);
      const raw = await mustSkopeo('inspect', '--raw', '--tls-verify=false', '--creds', 'pusher:s3cret', `docker://${host}/auth/app:v1`);
      expect(Buffer.from(raw)).toEqual(image.bytes);
    });
  });

  describe('skopeo with access rules', () => {
    let ruled: Peer;

    beforeAll(async () => {
      const htpasswd = join(work, 'ruled.htpasswd');
      writeFileSync(htpasswd, `pusher:${bcrypt.hashSync('s3cret', 4)}\nreader:${bcrypt.hashSync('r3ad', 4)}\n`);
      const rules = join(work, 'rules.yaml');
      writeFileSync(
        rules,
        "rules:\n  - repositories: ['team/**']\n    users: [pusher]\n    actions: [pull, push]\n  - repositories: ['team/public']\n    users: [anonymous, '*']\n    actions: [pull]\n" +
          "  - repositories: ['team/ro']\n    users: [reader]\n    actions: [pull]\n",
      );
      ruled = await startRegistry({ htpasswd, args: ['--access', rules] });
      started.push(ruled);
    });

    it('pushes where the rules grant it, pulls anonymously where they allow, and is refused elsewhere', async () => {
      const host = ruled.host;
      const layout = newLayout();
      const image = layout.addImage({ layers: 1 });
      layout.tag(image.descriptor, 'v1');
      const source = `oci:${layout.dir}:v1`;
      await mustSkopeo(...insecureCopy, '--dest-creds', 'pusher:s3cret', source, `docker://${host}/team/public:v1`);
      const raw = await mustSkopeo('inspect', '--raw', '--tls-verify=false', `docker://${host}/team/public:v1`);
      expect(Buffer.from(raw)).toEqual(image.bytes);
      const anonymousPush = await skopeo(...insecureCopy, source, `docker://${host}/team/public:v2`);
      expect(anonymousPush.code).not.toBe(0);
      const readerPush = await skopeo(...insecureCopy, '--dest-creds', 'reader:r3ad', source, `docker://${host}/team/app:v1`);
      expect(readerPush.code).not.toBe(0);
      expect(readerPush.stderr).toMatch(/denied|403/i);
      const readerPull = await skopeo('inspect', '--raw', '--tls-verify=false', '--creds', 'reader:r3ad', `docker://${host}/team/secret:v1`);
      expect(readerPull.code).not.toBe(0);
    });

    it('tells a user refused a push why, in words skopeo shows: who, which action, which repository', async () => {
      const layout = newLayout();
      const image = layout.addImage({ layers: 1 });
      layout.tag(image.descriptor, 'v1');
      // reader may pull team/ro but not push there: skopeo gets past its HEADs to the POST that is refused.
      const pullOnly = await skopeo(...insecureCopy, '--dest-creds', 'reader:r3ad', `oci:${layout.dir}:v1`, `docker://${ruled.host}/team/ro:v1`);
      expect(pullOnly.code).not.toBe(0);
      // skopeo quotes the server's message with its quotes escaped.
      expect(pullOnly.stderr).toMatch(/denied: user \\?"reader\\?" may not push in team\/ro/);
      // Without pull either, the refusal comes on a HEAD, which has no body: skopeo can show only the status.
      const neither = await skopeo(...insecureCopy, '--dest-creds', 'reader:r3ad', `oci:${layout.dir}:v1`, `docker://${ruled.host}/team/app:v1`);
      expect(neither.code).not.toBe(0);
      expect(neither.stderr).toMatch(/403|denied/i);
    });
  });
});
