// The images the server benchmarks push: one config and one layer blob, and
// distinct manifests of them (an annotation labels each), the same bytes on
// every registry of a run.

import { randomBytes } from 'node:crypto';
import { expectStatus, sha256, type Target } from './client.js';

export const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

export const CONFIG_BLOB = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(Buffer.alloc(0))] } }));
export const LAYER_BLOB = randomBytes(2048);

/** An image manifest of the config and the layer, told apart by `label`. */
export function manifest(label: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(CONFIG_BLOB), size: CONFIG_BLOB.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(LAYER_BLOB), size: LAYER_BLOB.length }],
      annotations: { 'bench.label': label },
    }),
  );
}

/** PUTs `bytes` as `repo:tag`. @throws Error unless the answer is 201. */
export async function putManifest(t: Target, repo: string, tag: string, bytes: Buffer): Promise<void> {
  await expectStatus(t, 201, 'PUT', `/v2/${repo}/manifests/${tag}`, { 'Content-Type': MANIFEST_TYPE }, bytes);
}
