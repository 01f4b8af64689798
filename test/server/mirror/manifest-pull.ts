// A manifest pull as clients make it, with an Accept of every manifest type.

import { MANIFEST_ACCEPT } from '../../../src/server/mirror/upstream.js';

/** An Accept header listing every manifest type the registry serves (the mirror's own, asking its upstream). */
export const ACCEPT = MANIFEST_ACCEPT;

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
