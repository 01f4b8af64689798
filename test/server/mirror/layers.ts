// Images of one raw layer, written as an OCI layout and pushed by skopeo into
// an upstream registry: blobs a mirror can be asked for, with their bytes.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { OciLayout, readBlob } from '../oci-layout.js';

/** A blob of an image pushed upstream: its digest and bytes. */
export interface PushedBlob {
  digest: string;
  bytes: Buffer;
}

/**
 * Writes an image with one layer of `size` random bytes into the layout at
 * `dir` and pushes it with skopeo to `<host>/<repo>:latest` for each of
 * `repos`. @returns the layer. @throws when skopeo fails.
 */
export function pushLayer(dir: string, host: string, repos: string[], size: number): PushedBlob {
  const layout = new OciLayout(dir);
  const image = layout.addImage({ layers: 1, layerKind: 'raw', layerSize: size });
  const ref = image.layers[0].digest.slice(7, 19);
  layout.tag(image.descriptor, ref);
  for (const repo of repos) {
    const args = ['copy', '--insecure-policy', '--dest-tls-verify=false', '--quiet', `oci:${layout.dir}:${ref}`, `docker://${host}/${repo}:latest`];
    const result = spawnSync('skopeo', args, { encoding: 'utf8', timeout: 120_000 });
    if (result.status !== 0) throw new Error(`skopeo ${args.join(' ')} failed: ${result.stderr ?? result.error?.message}`);
  }
  const { digest } = image.layers[0];
  return { digest, bytes: readBlob(join(dir), digest) };
}
