// A blob as the upstream serves it: HEAD for its size, GET for its bytes,
// following the redirects registries answer blob requests with (to their
// storage's pre-signed URL, or a CDN) within the mirror's timeout.

import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { NotFoundError } from '../../store/index.js';
import { HttpError } from '../errors.js';
import { upstreamUnavailable } from './auth.js';
import type { MirrorTarget } from './types.js';

/** What the upstream sent for a blob: its size (undefined when it sent no Content-Length) and its body (empty for HEAD). */
export interface UpstreamBlob {
  size: number | undefined;
  body: IncomingMessage;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Docker Hub sends one hop (to its CDN), distribution on S3 one (to the bucket); a chain this long is a loop. */
const MAX_REDIRECTS = 5;

/**
 * HEAD or GET of blob `digest` in the target's upstream repository.
 * @param name the repository's local name, for the error message.
 * @param signal aborts the request to the upstream when its client goes away.
 * @throws NotFoundError BLOB_UNKNOWN (the upstream answered 404);
 * HttpError UPSTREAM_UNAVAILABLE (unreachable, timed out, 5xx or 429,
 * too many redirects, any other status), DENIED (credentials refused);
 * the signal's reason.
 */
export async function upstreamBlob(method: 'GET' | 'HEAD', target: MirrorTarget, name: string, digest: string, signal?: AbortSignal): Promise<UpstreamBlob> {
  const { upstream, options } = target.mirror;
  const path = `blobs/${digest}`;
  let answer = await upstream.fetch(method, target.remote, path, {}, signal);
  let base = `${upstream.origin}/v2/${target.remote}/${path}`;
  for (let hop = 0; REDIRECTS.has(answer.status); hop++) {
    answer.body.resume();
    const location = answer.headers.location;
    if (location === undefined || hop === MAX_REDIRECTS) throw upstreamUnavailable(upstream.origin, `it redirected blob ${digest} ${location === undefined ? 'nowhere' : 'too often'}`);
    const url = new URL(location, base);
    answer = await fetchLocation(method, url, options.timeout, upstream.origin);
    base = url.href;
  }
  if (answer.status === 200) return { size: contentLength(answer.body), body: answer.body };
  answer.body.resume();
  if (answer.status === 404) throw new NotFoundError('BLOB_UNKNOWN', `blob ${digest} is not known in ${name}`);
  throw upstreamUnavailable(upstream.origin, `it answered ${answer.status} for blob ${digest}`);
}

/** Whether `error` is the upstream's failure (what the mirror's upstreamError counter counts). */
export function isUpstreamFailure(error: unknown): boolean {
  return error instanceof HttpError && (error.code === 'UPSTREAM_UNAVAILABLE' || error.code === 'DENIED');
}

function contentLength(res: IncomingMessage): number | undefined {
  const header = res.headers['content-length'];
  return header !== undefined && /^\d{1,16}$/.test(header) ? Number(header) : undefined;
}

/**
 * A request to where the upstream redirected, without its credentials (the
 * URL carries its own signature). Errors name only the host: the URL's query
 * is a secret while it is valid.
 */
function fetchLocation(method: 'GET' | 'HEAD', url: URL, timeout: number, origin: string): Promise<{ status: number; headers: IncomingMessage['headers']; body: IncomingMessage }> {
  const where = (why: string) => upstreamUnavailable(origin, `its blob storage ${url.host} ${why}`);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return Promise.reject(where('is not http(s)'));
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, { method, timeout });
    req.on('timeout', () => req.destroy(where(`did not answer within ${timeout} ms`)));
    req.on('error', (error) => reject(error instanceof HttpError ? error : where('could not be reached')));
    req.on('response', (res) => {
      res.setTimeout(timeout, () => res.destroy(where(`sent no bytes within ${timeout} ms`)));
      const status = res.statusCode ?? 0;
      if (status >= 500 || status === 429) {
        res.resume();
        reject(where(`answered ${status}`));
      } else resolve({ status, headers: res.headers, body: res });
    });
    req.end();
  });
}
