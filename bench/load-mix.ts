// The sustained mixed load of the memory bench: many keep-alive connections
// from several loopback addresses, each sending requests back to back for a
// round's seconds, a mix of what a busy registry sees: manifest GETs and
// HEADs by tag, blob GETs and HEADs, tag list pages, catalog pages, chunked
// blob pushes (POST, PATCH, PUT) each followed by a manifest PUT under a new
// tag, unknown manifests (404) and, with auth on, requests without
// credentials (401). Every answer is read whole and dropped; statuses are
// counted, and any not expected is counted apart.

import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { sha256 } from './client.js';
import { randomInt, seededRandom } from './lib.js';
import { MANIFEST_TYPE } from './workload.js';

/** What the load reads and where it pushes, prepared before the rounds. */
export interface MixFixture {
  /** The repository with `tags` tags named by `tagName`, and blob `layer` (its digest). */
  repo: string;
  tags: number;
  tagName: (i: number) => string;
  layer: string;
  /** Repositories pushes go to, each holding the config blob `config` (its digest and size). */
  pushRepos: string[];
  config: { digest: string; size: number };
}

export interface MixOptions {
  connections: number;
  /** Loopback addresses (127.0.0.2 onwards) the connections are spread over, as clients of one network would be. */
  addresses: number;
  seconds: number;
  /** The Authorization header of a user, when the server requires one; unauthenticated requests are part of the mix then. */
  authorization?: string;
}

export interface RoundResult {
  requests: number;
  pushes: number;
  /** Answers with a status not expected for their request. */
  unexpected: number;
  /** The first unexpected answer, for the notes. */
  firstUnexpected?: string;
}

interface Answer {
  status: number;
  location?: string;
}

/** One request on `agent`; the answer's body is read and dropped. */
function send(base: string, agent: Agent, localAddress: string, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
  return new Promise((done, fail) => {
    const req = request(
      new URL(path, base),
      { method, agent, localAddress, headers: body ? { ...headers, 'Content-Length': String(body.length) } : headers },
      (res) => {
        res.resume();
        res.on('end', () => done({ status: res.statusCode ?? 0, location: res.headers.location }));
        res.on('error', fail);
      },
    );
    req.on('error', fail);
    req.end(body);
  });
}

/** A manifest of `config` and one layer, the blob just pushed. */
function pushManifest(config: MixFixture['config'], layer: Buffer): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
    }),
  );
}

type Step = (call: (method: string, path: string, expected: number, headers?: Record<string, string>, body?: Buffer) => Promise<Answer>) => Promise<void>;

/** The steps of the mix with their weights; `n` numbers the step, to vary what it asks for. */
function steps(f: MixFixture, auth: boolean, tagOf: () => string, push: Step): [number, Step][] {
  const manifest = (method: string) => (async (call) => void (await call(method, `/v2/${f.repo}/manifests/${tagOf()}`, 200, { Accept: MANIFEST_TYPE }))) as Step;
  return [
    [30, manifest('GET')],
    [10, manifest('HEAD')],
    [5, async (call) => void (await call('GET', `/v2/${f.repo}/blobs/${f.layer}`, 200))],
    [5, async (call) => void (await call('HEAD', `/v2/${f.repo}/blobs/${f.layer}`, 200))],
    [10, async (call) => void (await call('GET', `/v2/${f.repo}/tags/list?n=100&last=${tagOf()}`, 200))],
    [3, async (call) => void (await call('GET', '/v2/_catalog?n=100', 200))],
    [10, push],
    [5, async (call) => void (await call('GET', `/v2/${f.repo}/manifests/missing-${tagOf()}`, 404, { Accept: MANIFEST_TYPE }))],
    [auth ? 10 : 0, async (call) => void (await call('GET', `/v2/${f.repo}/tags/list?n=10`, 401, { Authorization: '' }))],
  ];
}

/**
 * Runs one round of the mix against `url` for `options.seconds`. Round
 * `round` pushes tags of its own, so rounds add to the registry as a busy
 * one's days do.
 */
export async function mixedRound(url: string, f: MixFixture, options: MixOptions, round: number): Promise<RoundResult> {
  const result: RoundResult = { requests: 0, pushes: 0, unexpected: 0 };
  const deadline = Date.now() + options.seconds * 1000;
  const connection = async (k: number) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const localAddress = `127.0.0.${2 + (k % options.addresses)}`;
    const random = seededRandom(round * 100_003 + k);
    const baseHeaders: Record<string, string> = options.authorization ? { Authorization: options.authorization } : {};
    const call = async (method: string, path: string, expected: number, headers: Record<string, string> = {}, body?: Buffer) => {
      const merged = { ...baseHeaders, ...headers };
      if (merged.Authorization === '') delete merged.Authorization;
      // A connection that fails counts as an unexpected answer; the next request opens another.
      const answer = await send(url, agent, localAddress, method, path, merged, body).catch((error: Error) => ({ status: 0, error: error.message }));
      result.requests++;
      if (answer.status !== expected) {
        result.unexpected++;
        result.firstUnexpected ??= `${method} ${path}: ${'error' in answer ? answer.error : answer.status}, not ${expected}`;
      }
      return answer as Answer;
    };
    const repo = f.pushRepos[k % f.pushRepos.length];
    let n = 0;
    const push: Step = async (c) => {
      const layer = Buffer.concat([Buffer.from(`round ${round} connection ${k} push ${n}\n`), randomBytes(1024 + randomInt(random, 7 * 1024))]);
      const started = await c('POST', `/v2/${repo}/blobs/uploads/`, 202);
      if (started.status !== 202 || !started.location) return;
      const patched = await c('PATCH', started.location, 202, { 'Content-Type': 'application/octet-stream' }, layer);
      if (patched.status !== 202 || !patched.location) return;
      const put = new URL(patched.location, url);
      put.searchParams.set('digest', sha256(layer));
      const done = await c('PUT', put.pathname + put.search, 201);
      if (done.status !== 201) return;
      await c('PUT', `/v2/${repo}/manifests/r${round}-c${k}-${n}`, 201, { 'Content-Type': MANIFEST_TYPE }, pushManifest(f.config, layer));
      result.pushes++;
    };
    const tagOf = () => f.tagName(randomInt(random, f.tags));
    const mix = steps(f, options.authorization !== undefined, tagOf, push);
    const total = mix.reduce((sum, [weight]) => sum + weight, 0);
    try {
      for (; Date.now() < deadline; n++) {
        let pick = randomInt(random, total);
        const [, step] = mix.find(([weight]) => (pick -= weight) < 0)!;
        await step(call);
      }
    } finally {
      agent.destroy();
    }
  };
  await Promise.all(Array.from({ length: options.connections }, (_, k) => connection(k)));
  return result;
}
