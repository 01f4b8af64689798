// Upstream registries for the mirror's tests: a real docker-registry
// (distribution 2.8.2) open to anyone, behind basic auth (htpasswd), or
// behind a bearer-token service (as Docker Hub is), and skopeo pushing test
// images (OciLayout) into one, with the credentials it needs.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { startDistribution, type Peer } from '../../../bench/peers.js';
import type { OciLayout } from '../oci-layout.js';
import { startTokenServer, UPSTREAM_USER, type TokenServer, type TokenServerSettings } from './token-server.js';

export { UPSTREAM_USER };

/** How an upstream lets clients in: to anyone, with basic credentials, or with bearer tokens from a token service. */
export type UpstreamAuth = 'anonymous' | 'basic' | 'token';

/** A running upstream registry. */
export interface TestUpstream {
  auth: UpstreamAuth;
  registry: Peer;
  /** http://127.0.0.1:<port>: a mirror's `url`. */
  url: string;
  /** 127.0.0.1:<port>, as skopeo names it. */
  host: string;
  /** The token service ('token' only). */
  tokens?: TokenServer;
  /** UPSTREAM_USER's credentials ('basic' and 'token'; anonymous clients get pull tokens from a 'token' upstream too). */
  username?: string;
  password?: string;
  /** Stops the registry and its token service, removes their files. */
  stop(): Promise<void>;
}

/**
 * Starts docker-registry with the given auth: 'basic' from an htpasswd of
 * UPSTREAM_USER, 'token' behind a new token service (`tokens` sets it up).
 * @throws when docker-registry or openssl is missing or does not start.
 */
export async function startUpstream(auth: UpstreamAuth = 'anonymous', tokens: Partial<TokenServerSettings> = {}): Promise<TestUpstream> {
  const dir = mkdtempSync(join(tmpdir(), 'regmeta-upstream-'));
  let tokenServer: TokenServer | undefined;
  let htpasswd: string | undefined;
  if (auth === 'basic') {
    htpasswd = join(dir, 'htpasswd');
    // Cost 4 keeps the tests fast; $2y$ is what `htpasswd -B` writes, distribution reads it.
    writeFileSync(htpasswd, `${UPSTREAM_USER.username}:${bcrypt.hashSync(UPSTREAM_USER.password, 4)}\n`);
  }
  if (auth === 'token') tokenServer = await startTokenServer(tokens);
  let registry: Peer;
  try {
    registry = await startDistribution({ htpasswd, token: tokenServer });
  } catch (error) {
    await tokenServer?.close();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const credentials = auth === 'anonymous' ? {} : { ...UPSTREAM_USER };
  return {
    auth,
    registry,
    url: registry.url,
    host: registry.host,
    tokens: tokenServer,
    ...credentials,
    stop: async () => {
      await registry.stop();
      await tokenServer?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** How pushImage copies. */
export interface PushOptions {
  /** Copy an index with all its images (skopeo --all). */
  all?: boolean;
  /** 'v2s2': convert to Docker's schema 2 media types. */
  format?: 'v2s2';
}

/**
 * skopeo copy of the layout's `ref` to `<upstream>/<repo>:<tag>`, with the
 * upstream's credentials when it has some. Asynchronous: a token service in
 * this process must go on answering skopeo meanwhile.
 * @throws when skopeo fails (its stderr in the message).
 */
export async function pushImage(upstream: TestUpstream, layout: OciLayout, ref: string, repo: string, tag: string, options: PushOptions = {}): Promise<void> {
  const args = ['copy', '--insecure-policy', '--dest-tls-verify=false', '--quiet'];
  if (options.all) args.push('--all');
  if (options.format) args.push('--format', options.format);
  if (upstream.username !== undefined) args.push('--dest-creds', `${upstream.username}:${upstream.password}`);
  args.push(`oci:${layout.dir}:${ref}`, `docker://${upstream.host}/${repo}:${tag}`);
  await new Promise<void>((resolve, reject) => {
    execFile('skopeo', args, { encoding: 'utf8', timeout: 60_000 }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`skopeo copy of ${ref} to ${upstream.host}/${repo}:${tag} failed: ${stderr || error.message}`));
      else resolve();
    });
  });
}
