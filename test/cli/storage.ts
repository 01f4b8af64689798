// A distribution filesystem storage tree written directly, for trees larger
// or more broken than pushing through a real registry gives: the same paths
// and link files that docker-registry writes (see registry.ts for the real one).

import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function write(file: string, data: Uint8Array | string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, data);
}

/** A storage tree under `root` (the rootdirectory). */
export class Storage {
  readonly v2: string;
  constructor(readonly root: string) {
    this.v2 = join(root, 'docker', 'registry', 'v2');
    mkdirSync(join(this.v2, 'repositories'), { recursive: true });
    mkdirSync(join(this.v2, 'blobs'), { recursive: true });
  }

  blobData(digest: string): string {
    const hex = digest.slice(7);
    return join(this.v2, 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
  }

  blob(data: Uint8Array | string): { digest: string; size: number } {
    const digest = sha256(data);
    write(this.blobData(digest), data);
    return { digest, size: Buffer.byteLength(data) };
  }

  repoDir(repo: string): string {
    return join(this.v2, 'repositories', repo);
  }

  /** Links a blob into `repo` (_layers). */
  link(repo: string, digest: string): void {
    write(join(this.repoDir(repo), '_layers', 'sha256', digest.slice(7), 'link'), digest);
  }

  /** Puts manifest bytes and links the revision; returns the digest. */
  manifest(repo: string, payload: string | Buffer): string {
    const { digest } = this.blob(payload);
    write(join(this.repoDir(repo), '_manifests', 'revisions', 'sha256', digest.slice(7), 'link'), digest);
    return digest;
  }

  /** An OCI image with fresh random layers, linked in `repo`. */
  image(repo: string, layers = 1, omitMediaType = false): string {
    const blobs = Array.from({ length: layers + 1 }, (_, i) => this.blob(i === 0 ? JSON.stringify({ os: 'linux', n: randomBytes(8).toString('hex') }) : randomBytes(64)));
    for (const b of blobs) this.link(repo, b.digest);
    const [config, ...rest] = blobs;
    const json: Record<string, unknown> = { schemaVersion: 2 };
    if (!omitMediaType) json.mediaType = 'application/vnd.oci.image.manifest.v1+json';
    json.config = { mediaType: 'application/vnd.oci.image.config.v1+json', ...config };
    json.layers = rest.map((b) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...b }));
    return this.manifest(repo, JSON.stringify(json));
  }

  /** An OCI index of `children` (manifests of `repo`). */
  index(repo: string, children: string[], omitMediaType = false): string {
    const json: Record<string, unknown> = { schemaVersion: 2 };
    if (!omitMediaType) json.mediaType = 'application/vnd.oci.image.index.v1+json';
    json.manifests = children.map((digest) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: 1 }));
    return this.manifest(repo, JSON.stringify(json));
  }

  /** Sets `tag` to `digest`, adding it to the tag's index at time `at` (ms). */
  tag(repo: string, tag: string, digest: string, at = Date.now()): void {
    const tagDir = join(this.repoDir(repo), '_manifests', 'tags', tag);
    write(join(tagDir, 'current', 'link'), digest);
    const indexLink = join(tagDir, 'index', 'sha256', digest.slice(7), 'link');
    write(indexLink, digest);
    utimesSync(indexLink, new Date(at), new Date(at));
  }
}
