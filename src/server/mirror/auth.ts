// How a mirror logs in to its upstream, as Docker clients do: anonymously
// until the upstream challenges (401 with WWW-Authenticate); then basic
// credentials for a Basic challenge, or, for a Bearer challenge, a token
// from the challenge's realm (the Docker token flow: GET
// realm?service=&scope=, with basic credentials when configured). Tokens are
// kept per scope until shortly before they expire, and fetched once for all
// the requests that need one at the same time.

import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { HttpError, RETRY_AFTER_SECONDS } from '../errors.js';

/** The token spec's lifetime of a token whose answer has no expires_in. */
const DEFAULT_TOKEN_SECONDS = 60;
/** A token is fetched anew this long before it expires, so that it does not expire on the way. */
const REFRESH_MARGIN_MS = 5_000;
/** A token service's answer beyond this is not a token answer. */
const MAX_TOKEN_ANSWER = 1 << 20;

/**
 * UPSTREAM_UNAVAILABLE: 503, with Retry-After. The message names the
 * upstream by its origin (never credentials) and what went wrong.
 */
export function upstreamUnavailable(origin: string, why: string): HttpError {
  return new HttpError('UPSTREAM_UNAVAILABLE', `the upstream ${origin} cannot serve now: ${why}`, {
    headers: { 'Retry-After': String(RETRY_AFTER_SECONDS) },
  });
}

/** A network error in a few words, without anything but its code (never a URL with credentials). */
export function describe(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code === undefined ? 'the connection failed' : `the connection failed (${code})`;
}

/** An auth challenge: its scheme (lowercase) and parameters (`realm`, `service`, `scope`, …). */
interface Challenge {
  scheme: string;
  params: Map<string, string>;
}

/** The first challenge of a WWW-Authenticate header (RFC 7235: `scheme k="v", k=v`), or undefined. */
function parseChallenge(header: string | undefined): Challenge | undefined {
  const match = /^\s*([A-Za-z][\w-]*)\s*(.*)$/s.exec(header ?? '');
  if (!match) return undefined;
  const params = new Map<string, string>();
  const param = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/gy;
  let found: RegExpExecArray | null;
  param.lastIndex = 0;
  while ((found = param.exec(match[2])) !== null && found[0] !== '') {
    params.set(found[1].toLowerCase(), found[2] !== undefined ? found[2].replace(/\\(.)/g, '$1') : found[3]);
  }
  return { scheme: match[1].toLowerCase(), params };
}

interface CachedToken {
  header: string;
  /** Date.now() after which the token is fetched anew. */
  renewAt: number;
}

/** What an Upstream's login needs to know of it. */
interface LoginOptions {
  origin: string;
  username?: string;
  password?: string;
  /** Milliseconds to wait for the token service, as for the upstream. */
  timeout: number;
}

/** The login of one upstream: the Authorization header each request carries. */
export class UpstreamLogin {
  readonly #options: LoginOptions;
  readonly #tokens = new Map<string, CachedToken>();
  readonly #pending = new Map<string, Promise<string>>();
  /** Whether the upstream asked for basic credentials: then every request carries them. */
  #basic = false;
  /** The upstream's last Bearer challenge: where its tokens come from. */
  #bearer: Challenge | undefined;
  readonly #agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };

  constructor(options: LoginOptions) {
    this.#options = options;
  }

  /**
   * The Authorization header for a request of `scope` (`repository:<name>:pull`)
   * on `repo`: a kept token, else a new one once the upstream has asked for
   * tokens, else basic credentials once it has asked for those, else none.
   * @throws what renew throws, when a token is fetched.
   */
  async current(scope: string, repo: string): Promise<string | undefined> {
    const cached = this.#tokens.get(scope);
    if (!this.#pending.has(scope) && cached !== undefined && Date.now() < cached.renewAt) return cached.header;
    // The realm and service are the upstream's, not a repository's: no need to be challenged again.
    if (this.#bearer !== undefined) return this.#fetchOnce(this.#bearer, scope, repo);
    return this.#basic ? this.#basicHeader() : undefined;
  }

  /**
   * What to send after a 401 that carried `challenge`, the request having
   * sent `sent`: a fresh token (the one sent, if a token, is dropped), or
   * basic credentials.
   * @throws HttpError DENIED when there is nothing else to try (no
   * credentials for a Basic challenge, an unknown scheme, the token service
   * refusing); UPSTREAM_UNAVAILABLE when the token service fails or its
   * realm is not http(s).
   */
  async renew(challenge: string | undefined, scope: string, repo: string, sent: string | undefined): Promise<string> {
    const parsed = parseChallenge(challenge);
    if (parsed?.scheme === 'bearer') {
      const cached = this.#tokens.get(scope);
      // Another request may have replaced the refused token already.
      if (cached !== undefined && cached.header !== sent && Date.now() < cached.renewAt) return cached.header;
      this.#tokens.delete(scope);
      this.#bearer = parsed;
      return this.#fetchOnce(parsed, scope, repo);
    }
    if (parsed?.scheme === 'basic' && this.#options.username !== undefined && !sent?.startsWith('Basic ')) {
      this.#basic = true;
      return this.#basicHeader();
    }
    if (parsed?.scheme === 'basic') throw this.denied(repo, sent !== undefined);
    throw this.denied(repo, sent !== undefined, parsed === undefined ? 'it answered 401 without a challenge' : `it asks for ${parsed.scheme} authentication, which a mirror does not speak`);
  }

  /** Forgets the token of `scope` (the upstream refused it). */
  forget(scope: string): void {
    this.#tokens.delete(scope);
  }

  /**
   * DENIED (403): the upstream refused this mirror. The message names the
   * upstream, the repository and the user, never a password or a token.
   */
  denied(repo: string, withCredentials: boolean, why?: string): HttpError {
    const { origin, username } = this.#options;
    const who = username === undefined ? 'anonymous access' : `the credentials of user ${username}`;
    // A token service grants nothing for a repository it does not know (Docker Hub): the refusal may mean that.
    const unknown = this.#bearer !== undefined ? ', or the repository does not exist there' : '';
    const reason = why ?? (withCredentials ? `it refused ${who}${unknown}` : 'it asks for credentials and none are configured');
    return new HttpError('DENIED', `the upstream ${origin} denies repository ${repo} to this mirror: ${reason}`);
  }

  /** Closes the token services' idle connections. */
  close(): void {
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }

  #basicHeader(): string {
    const { username, password } = this.#options;
    return `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}`;
  }

  /** One token request per scope at a time: the others wait on it. */
  #fetchOnce(challenge: Challenge, scope: string, repo: string): Promise<string> {
    let pending = this.#pending.get(scope);
    if (pending === undefined) {
      pending = this.#fetchToken(challenge, scope, repo).finally(() => this.#pending.delete(scope));
      this.#pending.set(scope, pending);
    }
    return pending;
  }

  async #fetchToken(challenge: Challenge, scope: string, repo: string): Promise<string> {
    const { origin, username } = this.#options;
    let realm: URL;
    try {
      realm = new URL(challenge.params.get('realm') ?? '');
    } catch {
      throw upstreamUnavailable(origin, 'its Bearer challenge names no realm');
    }
    if (realm.protocol !== 'http:' && realm.protocol !== 'https:') throw upstreamUnavailable(origin, 'its token realm is not http(s)');
    const service = challenge.params.get('service');
    if (service !== undefined) realm.searchParams.set('service', service);
    realm.searchParams.set('scope', scope);
    const headers: Record<string, string> = username === undefined ? {} : { Authorization: this.#basicHeader() };
    const received = Date.now();
    const { status, body } = await this.#get(realm, headers);
    if (status === 401 || status === 403) throw this.denied(repo, username !== undefined, `its token service ${realm.origin} refused ${username === undefined ? 'anonymous access' : `the credentials of user ${username}`}`);
    if (status !== 200) throw upstreamUnavailable(origin, `its token service ${realm.origin} answered ${status}`);
    const answer = parseTokenAnswer(body);
    if (answer === undefined) throw upstreamUnavailable(origin, `its token service ${realm.origin} answered without a token`);
    const header = `Bearer ${answer.token}`;
    // issued_at, when given, is when the lifetime starts (the token spec); else the answer's arrival.
    const issued = answer.issuedAt ?? received;
    this.#tokens.set(scope, { header, renewAt: issued + answer.seconds * 1000 - REFRESH_MARGIN_MS });
    return header;
  }

  /** GET of a token service, its body read whole (up to MAX_TOKEN_ANSWER), within the timeout. */
  #get(url: URL, headers: Record<string, string>): Promise<{ status: number; body: Buffer }> {
    const { origin, timeout } = this.#options;
    const secure = url.protocol === 'https:';
    const request = secure ? httpsRequest : httpRequest;
    const failed = (why: string) => upstreamUnavailable(origin, `its token service ${url.origin} ${why}`);
    return new Promise((resolve, reject) => {
      const req = request(url, { headers, agent: secure ? this.#agents.https : this.#agents.http, timeout });
      req.on('timeout', () => req.destroy(failed(`did not answer within ${timeout} ms`)));
      req.on('error', (error) => reject(error instanceof HttpError ? error : failed(`cannot be reached: ${describe(error)}`)));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_TOKEN_ANSWER) req.destroy(failed('answered too much'));
          else chunks.push(chunk);
        });
        res.on('error', (error) => reject(error instanceof HttpError ? error : failed(`broke off its answer: ${describe(error)}`)));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      });
      req.end();
    });
  }
}

/** A token answer's token, lifetime (seconds) and issue time (ms), or undefined when it holds no token. */
function parseTokenAnswer(body: Buffer): { token: string; seconds: number; issuedAt?: number } | undefined {
  let json: unknown;
  try {
    json = JSON.parse(body.toString());
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null) return undefined;
  const { token, access_token: accessToken, expires_in: expiresIn, issued_at: issuedAt } = json as Record<string, unknown>;
  const chosen = typeof token === 'string' && token !== '' ? token : accessToken;
  // A token goes into a header: anything that could split it is no token.
  if (typeof chosen !== 'string' || chosen === '' || !/^[\x21-\x7e]+$/.test(chosen)) return undefined;
  const seconds = typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : DEFAULT_TOKEN_SECONDS;
  const issued = typeof issuedAt === 'string' ? Date.parse(issuedAt) : NaN;
  return { token: chosen, seconds, issuedAt: Number.isNaN(issued) ? undefined : issued };
}
