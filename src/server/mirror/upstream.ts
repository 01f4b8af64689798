// The client of one upstream registry: GET and HEAD on its /v2/ API, over
// kept-alive connections, logged in as the upstream asks (auth.ts), within
// the mirror's concurrency and timeouts. A failure of the upstream
// (unreachable, timed out, 5xx, throttling) is UPSTREAM_UNAVAILABLE, which
// the registry answers with 503; a refusal of this mirror is DENIED; what
// the upstream answers otherwise (200, 404, …) is the caller's to read.

import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { MediaType } from '../../store/index.js';
import { HttpError } from '../errors.js';
import { describe, upstreamUnavailable, UpstreamLogin } from './auth.js';
import type { ResolvedMirror } from './options.js';

/** What the upstream answered: its status and headers, and the body to read or destroy (empty for HEAD). */
export interface UpstreamAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
}

/** The media types a mirror asks for: every manifest type it stores and serves. */
export const MANIFEST_ACCEPT = Object.values(MediaType).join(', ');

/** A queue of slots: at most `size` holders at once, the rest wait in order. */
class Slots {
  readonly #size: number;
  #held = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(size: number) {
    this.#size = size;
  }

  /**
   * Waits for a slot; the function returned gives it back (once, however
   * often it is called).
   * @throws the signal's reason when it aborts before a slot is free.
   */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.#held < this.#size) this.#held++;
    else {
      await new Promise<void>((resolve, reject) => {
        const abort = () => {
          // A waiter whose client went away leaves the line: its turn goes to the next.
          this.#waiting.splice(this.#waiting.indexOf(take), 1);
          reject(signal?.reason);
        };
        const take = () => {
          signal?.removeEventListener('abort', abort);
          resolve();
        };
        this.#waiting.push(take);
        signal?.addEventListener('abort', abort, { once: true });
      });
    }
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const next = this.#waiting.shift();
      // The slot passes straight to the next in line; #held stays.
      if (next !== undefined) next();
      else this.#held--;
    };
  }
}

/** One upstream registry. */
export class Upstream {
  readonly origin: string;
  readonly #options: ResolvedMirror;
  readonly #agent: HttpAgent;
  readonly #request: typeof httpRequest;
  readonly #slots: Slots;
  readonly #login: UpstreamLogin;

  constructor(options: ResolvedMirror) {
    this.#options = options;
    this.origin = options.url;
    const secure = options.url.startsWith('https:');
    // The slots, not the agent, bound the requests at once: they count a request from before it is sent until its body is over.
    const agentOptions = { keepAlive: true, maxFreeSockets: options.concurrency, timeout: options.timeout };
    this.#agent = secure ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
    this.#request = secure ? httpsRequest : httpRequest;
    this.#slots = new Slots(options.concurrency);
    const { username, password, timeout } = options;
    this.#login = new UpstreamLogin({ origin: this.origin, username, password, timeout });
  }

  /**
   * GET or HEAD `/v2/<repo>/<path>` (path: `manifests/latest`,
   * `blobs/sha256:…`, `tags/list?n=10`), logged in as the upstream asks
   * (basic credentials or a bearer token), within the mirror's concurrency:
   * the request holds its slot until its body ends or is destroyed.
   * @returns what the upstream answered, any status but 401, 403, 5xx and 429;
   * the caller reads or destroys the body.
   * @throws HttpError UPSTREAM_UNAVAILABLE (unreachable, no answer within
   * the timeout, 5xx, 429, its token service failing); DENIED when the
   * upstream or its token service refuses this mirror's credentials (or
   * their absence): 401 after a login, 403; the signal's reason when it aborts (the client went
   * away): a request waiting for a slot leaves the line, one under way is
   * destroyed.
   */
  async fetch(method: 'GET' | 'HEAD', repo: string, path: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<UpstreamAnswer> {
    const scope = `repository:${repo}:pull`;
    const url = `/v2/${repo}/${path}`;
    let sent = await this.#login.current(scope, repo);
    let answer = await this.#send(method, url, withAuthorization(headers, sent), signal);
    if (answer.status === 401) {
      answer.body.resume();
      sent = await this.#login.renew(header(answer.headers['www-authenticate']), scope, repo, sent);
      answer = await this.#send(method, url, withAuthorization(headers, sent), signal);
      if (answer.status === 401) {
        answer.body.resume();
        this.#login.forget(scope);
        throw this.#login.denied(repo, true);
      }
    }
    if (answer.status === 403) {
      answer.body.resume();
      throw this.#login.denied(repo, sent !== undefined);
    }
    if (answer.status >= 500 || answer.status === 429) {
      answer.body.resume();
      throw upstreamUnavailable(this.origin, `it answered ${answer.status}`);
    }
    return answer;
  }

  async #send(method: string, path: string, headers: Record<string, string>, signal: AbortSignal | undefined): Promise<UpstreamAnswer> {
    const release = await this.#slots.acquire(signal);
    const { timeout } = this.#options;
    return new Promise((resolve, reject) => {
      const req = this.#request(`${this.origin}${path}`, { method, headers, agent: this.#agent, timeout, signal });
      let body: IncomingMessage | undefined;
      // The request's timeout covers the body too: a stalled transfer fails its reader.
      req.on('timeout', () => {
        if (body === undefined) req.destroy(upstreamUnavailable(this.origin, `no answer within ${timeout} ms`));
        else body.destroy(upstreamUnavailable(this.origin, `no bytes within ${timeout} ms`));
      });
      req.on('error', (error) => {
        release();
        if (signal?.aborted) reject(signal.reason);
        else reject(error instanceof HttpError ? error : upstreamUnavailable(this.origin, describe(error)));
      });
      // The request closes when its answer is complete or its connection gone; an unread HEAD answer never closes itself.
      req.on('close', release);
      req.on('response', (res) => {
        body = res;
        res.on('close', release);
        if (method === 'HEAD') res.resume();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res });
      });
      req.end();
    });
  }

  /** Closes the idle connections. */
  close(): void {
    this.#agent.destroy();
    this.#login.close();
  }
}

/** The headers with an Authorization, when there is one to send. */
function withAuthorization(headers: Record<string, string>, authorization: string | undefined): Record<string, string> {
  return authorization === undefined ? headers : { ...headers, Authorization: authorization };
}

/** A header's one value (the first of several). */
function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
