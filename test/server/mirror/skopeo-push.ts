// Pushing test images into a real upstream registry with skopeo, and what a
// client sends to pull manifests of every type.

import { spawnSync } from 'node:child_process';
import type { OciLayout } from '../oci-layout.js';

/** An Accept header listing every manifest type the registry serves. */
export const ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/**
 * skopeo copy of the layout's `ref` to `<host>/<repo>:<tag>` over plain HTTP; `all` for an index with its images.
 * @throws Error with skopeo's output when it fails.
 */
export function push(layout: OciLayout, ref: string, host: string, repo: string, tag: string, all = false): void {
  const args = ['copy', '--insecure-policy', '--dest-tls-verify=false', '--quiet'];
  if (all) args.push('--all');
  args.push(`oci:${layout.dir}:${ref}`, `docker://${host}/${repo}:${tag}`);
  const result = spawnSync('skopeo', args, { encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) throw new Error(`skopeo ${args.join(' ')} failed: ${result.stderr ?? result.error?.message}`);
}

/** A GET or HEAD of `url` with ACCEPT: status, body, digest, the headers. */
export async function pull(url: string, method: 'GET' | 'HEAD' = 'GET', accept = ACCEPT) {
  const response = await fetch(url, { method, headers: { Accept: accept } });
  return {
    status: response.status,
    body: Buffer.from(await response.arrayBuffer()),
    digest: response.headers.get('docker-content-digest'),
    headers: response.headers,
  };
}
