// The client of one upstream registry: GET and HEAD on its /v2/ API, over
// kept-alive connections, within the mirror's concurrency and timeouts. A
// failure of the upstream (unreachable, timed out, 5xx, throttling) is
// UPSTREAM_UNAVAILABLE, which the registry answers with 503; what the
// upstream answers otherwise (200, 404, …) is the caller's to read.

import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { HttpError, RETRY_AFTER_SECONDS } from '../errors.js';
import type { ResolvedMirror } from './options.js';

/** What the upstream answered: its status and headers, and the body to read or destroy (empty for HEAD). */
export interface UpstreamAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
}

/** The media types a mirror asks for: every manifest type it stores and serves. */
export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/**
 * UPSTREAM_UNAVAILABLE: 503, with Retry-After. The message names the
 * upstream by its origin (never credentials) and what went wrong.
 */
export function upstreamUnavailable(origin: string, why: string): HttpError {
  return new HttpError('UPSTREAM_UNAVAILABLE', `the upstream ${origin} cannot serve now: ${why}`, {
    headers: { 'Retry-After': String(RETRY_AFTER_SECONDS) },
  });
}

/** One upstream registry. */
export class Upstream {
  readonly origin: string;
  readonly #options: ResolvedMirror;
  readonly #agent: HttpAgent;
  readonly #request: typeof httpRequest;

  constructor(options: ResolvedMirror) {
    this.#options = options;
    this.origin = options.url;
    const secure = options.url.startsWith('https:');
    const agentOptions = { keepAlive: true, maxSockets: options.concurrency, timeout: options.timeout };
    this.#agent = secure ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
    this.#request = secure ? httpsRequest : httpRequest;
  }

  /**
   * GET or HEAD `/v2/<repo>/<path>` (path: `manifests/latest`,
   * `blobs/sha256:…`, `tags/list?n=10`).
   * @returns what the upstream answered, any status but 5xx and 429; the
   * caller reads or destroys the body.
   * @throws HttpError UPSTREAM_UNAVAILABLE (unreachable, no answer within
   * the timeout, 5xx, 429).
   */
  async fetch(method: 'GET' | 'HEAD', repo: string, path: string, headers: Record<string, string> = {}): Promise<UpstreamAnswer> {
    const answer = await this.#send(method, `/v2/${repo}/${path}`, headers);
    if (answer.status >= 500 || answer.status === 429) {
      answer.body.resume();
      throw upstreamUnavailable(this.origin, `it answered ${answer.status}`);
    }
    return answer;
  }

  #send(method: string, path: string, headers: Record<string, string>): Promise<UpstreamAnswer> {
    const { timeout } = this.#options;
    return new Promise((resolve, reject) => {
      const req = this.#request(`${this.origin}${path}`, { method, headers, agent: this.#agent, timeout });
      req.on('timeout', () => req.destroy(upstreamUnavailable(this.origin, `no answer within ${timeout} ms`)));
      req.on('error', (error) => reject(error instanceof HttpError ? error : upstreamUnavailable(this.origin, describe(error))));
      req.on('response', (res) => {
        // The body's own silence counts too: a stalled transfer fails its reader.
        res.setTimeout(timeout, () => res.destroy(upstreamUnavailable(this.origin, `no bytes within ${timeout} ms`)));
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res });
      });
      req.end();
    });
  }

  /** Closes the idle connections. */
  close(): void {
    this.#agent.destroy();
  }
}

/** A network error in a few words, without anything but its code (never a URL with credentials). */
function describe(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code === undefined ? 'the connection failed' : `the connection failed (${code})`;
}
