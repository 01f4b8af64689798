// A manifest pull as clients make it, with an Accept of every manifest type.

/** An Accept header listing every manifest type the registry serves. */
const ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

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
