// A bearer-token service as Docker Hub's auth.docker.io and distribution's
// token spec describe it, on a real HTTP server on port 0: GET
// /token?service=&scope= with basic credentials (or none) answers
// {token, access_token, expires_in, issued_at}. Its tokens are JWTs that
// distribution's `auth: token:` accepts: ES256, signed by a key whose
// certificate (the `x5c` header) chains to the root bundle distribution is
// given. It counts what it is asked, and can be told to refuse or to answer
// tokens a client must think stale.

import { createPrivateKey, randomUUID, sign, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCa, makeServerCert } from '../certs.js';

/** The one user the token services and htpasswd files of the tests know. */
export const UPSTREAM_USER = { username: 'mirror-user', password: 'upstream-Pa55-do-not-print' } as const;

/** How the token service behaves; every field may be changed while it runs. */
export interface TokenServerSettings {
  /** Whether a client without credentials gets pull tokens, as on Docker Hub (default true). */
  anonymous: boolean;
  /** expires_in, seconds, and the JWT's lifetime; undefined: left out of the answer (the spec's default is 60 s), the JWT lives 60 s. */
  expiresIn: number | undefined;
  /** Seconds the answer's issued_at lies in the past (default 0): with more than expiresIn, the client must deem every token stale at once. */
  issuedAgo: number;
  /** Which fields carry the token (default both, as Docker Hub answers). */
  fields: 'token' | 'access_token' | 'both';
  /** An HTTP status to answer every request with instead (a broken service: 500, 503), or undefined. */
  failWith: number | undefined;
}

/** One request the token service answered. */
export interface TokenRequest {
  scope: string | undefined;
  service: string | undefined;
  /** The user who authenticated, or undefined for an anonymous request. */
  account: string | undefined;
  /** The Authorization header's scheme ('Basic', …) or undefined. */
  scheme: string | undefined;
  status: number;
}

/** A running token service; its realm, issuer, service and rootCertBundle are what startDistribution's `token` takes. */
export interface TokenServer {
  /** http://127.0.0.1:<port>/token */
  realm: string;
  issuer: string;
  service: string;
  /** The CA certificate (PEM file) the signing certificate chains to. */
  rootCertBundle: string;
  settings: TokenServerSettings;
  /** Every request so far, oldest first. */
  requests: TokenRequest[];
  /** How many tokens were issued (200 answers), for one scope or all. */
  issued(scope?: string): number;
  close(): Promise<void>;
}

const base64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

/** The actions a request's scope asks for, as `access` claims: pull for anyone served, push too for a user. */
function access(scopes: string[], user: string | undefined): { type: string; name: string; actions: string[] }[] {
  return scopes.flatMap((scope) => {
    const match = /^(repository):(.+):([a-z,*]+)$/.exec(scope);
    if (!match) return [];
    const asked = match[3].split(',');
    const granted = asked.filter((action) => action === 'pull' || (user !== undefined && (action === 'push' || action === 'delete' || action === '*')));
    return [{ type: match[1], name: match[2], actions: granted }];
  });
}

/**
 * Starts a token service on 127.0.0.1 port 0, with a fresh CA and signing
 * certificate in a temporary directory (removed by close()).
 * @throws when openssl fails or the port cannot be bound.
 */
export async function startTokenServer(settings: Partial<TokenServerSettings> = {}): Promise<TokenServer> {
  const dir = mkdtempSync(join(tmpdir(), 'regmeta-token-'));
  const ca = makeCa(dir);
  const signer = makeServerCert(ca, 'token-signer');
  const key = createPrivateKey(signer.key);
  const x5c = [new X509Certificate(readFileSync(signer.certFile)).raw.toString('base64')];
  const issuer = 'regmeta-test-issuer';
  const service = 'regmeta-test-registry';
  const current: TokenServerSettings = { anonymous: true, expiresIn: undefined, issuedAgo: 0, fields: 'both', failWith: undefined, ...settings };
  const requests: TokenRequest[] = [];

  const jwt = (user: string | undefined, scopes: string[]): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', x5c };
    const claims = {
      iss: issuer,
      sub: user ?? '',
      aud: service,
      exp: now + (current.expiresIn ?? 60),
      nbf: now - 1,
      iat: now,
      jti: randomUUID(),
      access: access(scopes, user),
    };
    const signed = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    // JWS wants r||s, not DER: distribution (libtrust) verifies that form.
    const signature = sign('sha256', Buffer.from(signed), { key, dsaEncoding: 'ieee-p1363' });
    return `${signed}.${base64url(signature)}`;
  };

  const answer = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://token');
    const authorization = req.headers.authorization;
    const scheme = authorization?.split(' ')[0];
    const record: TokenRequest = { scope: url.searchParams.getAll('scope').join(' ') || undefined, service: url.searchParams.get('service') ?? undefined, account: undefined, scheme, status: 0 };
    requests.push(record);
    const reply = (status: number, body: object) => {
      record.status = status;
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    };
    if (current.failWith !== undefined) return reply(current.failWith, { details: 'the token service is failing on purpose' });
    if (url.pathname !== '/token') return reply(404, { details: 'not found' });
    let user: string | undefined;
    if (authorization !== undefined) {
      const [name, ...rest] = scheme === 'Basic' ? Buffer.from(authorization.slice(6), 'base64').toString().split(':') : [];
      if (name !== UPSTREAM_USER.username || rest.join(':') !== UPSTREAM_USER.password) {
        res.setHeader('WWW-Authenticate', 'Basic realm="regmeta-test-token"');
        return reply(401, { details: 'incorrect username or password' });
      }
      user = name;
    } else if (!current.anonymous) {
      res.setHeader('WWW-Authenticate', 'Basic realm="regmeta-test-token"');
      return reply(401, { details: 'authentication required' });
    }
    record.account = user;
    const token = jwt(user, url.searchParams.getAll('scope'));
    const body: Record<string, unknown> = { issued_at: new Date(Date.now() - current.issuedAgo * 1000).toISOString() };
    if (current.fields !== 'access_token') body.token = token;
    if (current.fields !== 'token') body.access_token = token;
    if (current.expiresIn !== undefined) body.expires_in = current.expiresIn;
    reply(200, body);
  };

  const server = createServer(answer);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    issuer,
    service,
    rootCertBundle: ca.caFile,
    settings: current,
    requests,
    issued: (scope) => requests.filter((r) => r.status === 200 && (scope === undefined || r.scope === scope)).length,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        });
      }),
  };
}
