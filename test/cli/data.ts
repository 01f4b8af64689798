// Data directories for the CLI tests, populated through the store's API, with
// real blob files under <data>/blobs so that `check` and `gc` have bytes to
// look at.

import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { MediaType, type MetadataStore } from 'regmeta';

export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function blobPath(data: string, digest: string): string {
  const hex = digest.slice(7);
  return join(data, 'blobs', 'sha256', hex.slice(0, 2), hex);
}

/** Writes a blob file and links it in `repo`; returns its descriptor. */
export function putBlob(store: MetadataStore, data: string, repo: string, bytes: Buffer, mediaType: string) {
  const digest = sha256(bytes);
  const file = blobPath(data, digest);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, bytes);
  store.linkBlob(repo, { digest, size: bytes.byteLength }, { actor: 'alice' });
  return { mediaType, digest, size: bytes.byteLength };
}

/** An OCI image with a config and one random layer, blobs written and linked. */
export function putImage(store: MetadataStore, data: string, repo: string, actor = 'alice') {
  const config = putBlob(store, data, repo, Buffer.from(JSON.stringify({ os: 'linux', seed: randomBytes(4).toString('hex') })), 'application/vnd.oci.image.config.v1+json');
  const layer = putBlob(store, data, repo, randomBytes(300), 'application/vnd.oci.image.layer.v1.tar+gzip');
  const payload = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layer] }));
  const digest = sha256(payload);
  store.putManifest(repo, digest, { mediaType: MediaType.OciManifest, payload }, { actor });
  return { digest, payload, size: payload.byteLength, config, layer, mediaType: MediaType.OciManifest };
}

/** An OCI index of `children`. */
export function putIndex(store: MetadataStore, repo: string, children: { digest: string; size: number }[]) {
  const payload = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: children.map((c) => ({ mediaType: MediaType.OciManifest, digest: c.digest, size: c.size })),
    }),
  );
  const digest = sha256(payload);
  store.putManifest(repo, digest, { mediaType: MediaType.OciIndex, payload }, { actor: 'alice' });
  return { digest, payload, size: payload.byteLength };
}
