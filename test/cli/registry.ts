// A real Debian docker-registry on loopback with filesystem storage, and OCI
// layouts built here to push to it with skopeo: the storage tree that
// `regmeta import` reads is then exactly what distribution writes.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export const REGISTRY_BIN = '/usr/bin/docker-registry';
export const SKOPEO_BIN = '/usr/bin/skopeo';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const ACCEPT = [
  OCI_MANIFEST,
  OCI_INDEX,
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

function sha256(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface Registry {
  url: string;
  host: string;
  /** storage.filesystem.rootdirectory */
  root: string;
  stop(): Promise<void>;
}

/** Starts docker-registry on a free loopback port, storing under `dir`/storage. */
export async function startRegistry(dir: string): Promise<Registry> {
  const root = join(dir, 'storage');
  mkdirSync(root, { recursive: true });
  const port = await freePort();
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${root}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(REGISTRY_BIN, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += String(chunk)));
  const url = `http://127.0.0.1:${port}`;
  // Bounded wait for the listener: up to 600 attempts 50 ms apart.
  for (let attempt = 0; ; attempt++) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
    try {
      const response = await fetch(`${url}/v2/`);
      if (response.status === 200) break;
    } catch {
      // not listening yet
    }
    if (attempt > 600) throw new Error(`docker-registry did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    host: `127.0.0.1:${port}`,
    root,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

interface LayoutEntry {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string };
}

/** An OCI image layout under construction: blobs, and index.json entries by ref name. */
export class Layout {
  readonly entries: LayoutEntry[] = [];
  constructor(readonly dir: string) {
    mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  }

  blob(data: Uint8Array): { digest: string; size: number } {
    const digest = sha256(data);
    writeFileSync(join(this.dir, 'blobs', 'sha256', digest.slice(7)), data);
    return { digest, size: data.byteLength };
  }

  /** An image of `layers` random gzip layers; returns its manifest descriptor. */
  image(platform = { architecture: 'amd64', os: 'linux' }, layers = 2): LayoutEntry {
    const layerDescs = [];
    const diffIds = [];
    for (let i = 0; i < layers; i++) {
      const raw = randomBytes(512 + Math.floor(Math.random() * 2048));
      diffIds.push(sha256(raw));
      layerDescs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...this.blob(gzipSync(raw)) });
    }
    const config = Buffer.from(JSON.stringify({ ...platform, rootfs: { type: 'layers', diff_ids: diffIds } }));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...this.blob(config) },
        layers: layerDescs,
      }),
    );
    return { mediaType: OCI_MANIFEST, ...this.blob(manifest), platform };
  }

  /** An index of `children`. */
  index(children: LayoutEntry[]): LayoutEntry {
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: children.map(({ mediaType, digest, size, platform }) => ({ mediaType, digest, size, platform })),
      }),
    );
    return { mediaType: OCI_INDEX, ...this.blob(manifest) };
  }

  /** Names `entry` as `ref` in index.json. */
  ref(ref: string, entry: LayoutEntry): void {
    const { platform: _platform, ...rest } = entry;
    this.entries.push({ ...rest, annotations: { 'org.opencontainers.image.ref.name': ref } });
    writeFileSync(join(this.dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: this.entries }));
  }
}

/** skopeo copy from the layout's `ref` to `<host>/<repo>:<tag>`; `all` for an index; `format` v2s2 converts to Docker's media types. */
export function push(layout: Layout, ref: string, host: string, repo: string, tag: string, all = false, format?: 'v2s2' | 'oci'): void {
  const args = ['copy', '--insecure-policy', '--dest-tls-verify=false', '--quiet'];
  if (all) args.push('--all');
  if (format) args.push('--format', format);
  args.push(`oci:${layout.dir}:${ref}`, `docker://${host}/${repo}:${tag}`);
  const result = spawnSync(SKOPEO_BIN, args, { encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) throw new Error(`skopeo ${args.join(' ')} failed: ${result.stderr}`);
}
