// What the mirror bench pulls and how: an image of random layers pushed as
// a client pushes one, a pull as a client makes it (the manifest with an
// Accept header, then every blob, a few at a time, each body read whole),
// and the bytes an upstream served, read from distribution's access log.

import { randomFillSync, createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { MediaType } from 'regmeta';
import { MANIFEST_ACCEPT } from '../src/server/mirror/upstream.js';
import { expectStatus, pushBlob, sha256, type Target } from './client.js';

const MANIFEST_TYPE = MediaType.DockerManifest;
/** What containerd and podman send: every manifest and index type (the mirror's own Accept). */
const ACCEPT = MANIFEST_ACCEPT;
/** Blobs fetched at once within one pull: Docker's and containerd's default. */
const DOWNLOADS = 3;

export interface Descriptor {
  digest: string;
  size: number;
}

/** An image as pushed: its manifest's bytes and digest, and its blobs (config first). */
export interface Image {
  manifest: Buffer;
  digest: string;
  blobs: Descriptor[];
  /** The manifest's and every blob's bytes. */
  size: number;
}

/** An image of `layers` random layers (halving sizes: ½, ¼, …, the last one the rest) and a config, `size` bytes in all, and its blobs' bytes. */
export function makeImage(size: number, layers: number): { image: Image; data: Buffer[] } {
  const data: Buffer[] = [];
  let left = size - 1024;
  for (let i = 0; i < layers; i++) {
    const length = i === layers - 1 ? left : Math.floor(left / 2);
    const layer = Buffer.allocUnsafe(length);
    for (let at = 0; at < length; at += 64 << 20) randomFillSync(layer, at, Math.min(64 << 20, length - at));
    data.push(layer);
    left -= length;
  }
  const diffIds = data.map((layer) => sha256(layer));
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds } }));
  data.unshift(config);
  const blobs = data.map((blob) => ({ digest: sha256(blob), size: blob.length }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', ...blobs[0] },
      layers: blobs.slice(1).map((blob) => ({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', ...blob })),
    }),
  );
  const total = manifest.length + blobs.reduce((sum, blob) => sum + blob.size, 0);
  return { image: { manifest, digest: sha256(manifest), blobs, size: total }, data };
}

/** Pushes `image` (its blobs `data`) into `repo` under `tag`. @throws Error when the registry refuses. */
export async function pushImage(t: Target, repo: string, tag: string, image: Image, data: Buffer[]): Promise<void> {
  for (let i = 0; i < data.length; i++) await pushBlob(t, repo, data[i], image.blobs[i].digest);
  await expectStatus(t, 201, 'PUT', `/v2/${repo}/manifests/${tag}`, { 'Content-Type': MANIFEST_TYPE }, image.manifest);
}

/** A client of `url` with keep-alive connections enough for 8 pulls at once. */
export function puller(name: string, url: string, pid?: number): Target {
  return { name, url, agent: new Agent({ keepAlive: true, maxSockets: 64 }), pid };
}

/**
 * A GET whose body is read whole and counted (hashed when `hash`).
 * @returns the status, the byte count and the body's digest ('' unless hashed) or, for small bodies, the body.
 */
function get(t: Target, path: string, headers: Record<string, string>, hash: boolean): Promise<{ status: number; bytes: number; digest: string; body: Buffer }> {
  return new Promise((done, fail) => {
    const req = request(new URL(path, t.url), { agent: t.agent, headers }, (res) => {
      const hasher = hash ? createHash('sha256') : undefined;
      const small: Buffer[] = [];
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        hasher?.update(chunk);
        if (bytes <= 1 << 20) small.push(chunk);
      });
      res.on('end', () => done({ status: res.statusCode ?? 0, bytes, digest: hasher ? `sha256:${hasher.digest('hex')}` : '', body: Buffer.concat(small) }));
      res.on('error', fail);
    });
    req.on('error', (error) => fail(new Error(`${t.name}: GET ${path}: ${error.message}`, { cause: error })));
    req.end();
  });
}

/**
 * Pulls `repo:tag` as a client does: the manifest, then its config and
 * layers, DOWNLOADS at a time, every body read to its end. With `verify`,
 * every digest is checked too (the bench's timed pulls only count bytes,
 * so that hashing does not weigh on the figures).
 * @throws Error on a status other than 200, a size or (verify) a digest that differs from `image`'s.
 */
export async function pullImage(t: Target, repo: string, tag: string, image: Image, verify = false): Promise<void> {
  const manifest = await get(t, `/v2/${repo}/manifests/${tag}`, { Accept: ACCEPT }, verify);
  if (manifest.status !== 200) throw new Error(`${t.name}: GET ${repo}:${tag} answered ${manifest.status}: ${manifest.body.toString().slice(0, 300)}`);
  if (verify && manifest.digest !== image.digest) throw new Error(`${t.name}: ${repo}:${tag} is ${manifest.digest}, not ${image.digest}`);
  const parsed = JSON.parse(manifest.body.toString()) as { config: Descriptor; layers: Descriptor[] };
  const queue = [parsed.config, ...parsed.layers];
  const worker = async () => {
    for (let blob = queue.shift(); blob !== undefined; blob = queue.shift()) {
      const answer = await get(t, `/v2/${repo}/blobs/${blob.digest}`, {}, verify);
      if (answer.status !== 200 || answer.bytes !== blob.size) {
        throw new Error(`${t.name}: GET ${repo}@${blob.digest}: ${answer.status} with ${answer.bytes} bytes, not 200 with ${blob.size}`);
      }
      if (verify && answer.digest !== blob.digest) throw new Error(`${t.name}: ${repo}@${blob.digest} came as ${answer.digest}`);
    }
  };
  await Promise.all(Array.from({ length: DOWNLOADS }, worker));
}

/** Where a distribution peer's output (its access log) is, and how far it had come. */
export interface LogMark {
  file: string;
  offset: number;
}

/** The end of the access log of the distribution whose directory is `dir` (bench/peers.ts writes its output to output.log there). */
export function logMark(dir: string): LogMark {
  const file = join(dir, 'output.log');
  return { file, offset: statSync(file).size };
}

function readFrom({ file, offset }: LogMark): string {
  const size = statSync(file).size;
  const buffer = Buffer.alloc(Math.max(0, size - offset));
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buffer, 0, buffer.length, offset);
  } finally {
    closeSync(fd);
  }
  return buffer.toString();
}

// Distribution's access log, in the combined format: `"GET /v2/… HTTP/1.1" 200 <bytes written>`.
const ACCESS = /"GET (\S+) HTTP\/[\d.]+" (\d{3}) (\d+)/g;

/**
 * The bytes distribution's answers to GETs carried since `mark`: once every
 * blob of `expect` was answered and the log has stopped growing (a line is
 * written when its answer is complete, so it may come a moment after the
 * pull that caused it).
 * @throws Error when a blob of `expect` was not fetched within 30 s.
 */
export async function servedSince(mark: LogMark, expect: Descriptor[]): Promise<number> {
  const deadline = Date.now() + 30_000;
  let text = readFrom(mark);
  for (;;) {
    const missing = expect.filter((blob) => !text.includes(`/blobs/${blob.digest} `));
    if (missing.length > 0 && Date.now() > deadline) throw new Error(`the upstream's log shows no GET of ${missing.map((b) => b.digest).join(', ')}`);
    await new Promise((r) => setTimeout(r, missing.length > 0 ? 50 : 250));
    const again = readFrom(mark);
    if (missing.length === 0 && again.length === text.length) break;
    text = again;
  }
  let bytes = 0;
  for (const match of text.matchAll(ACCESS)) if (match[2].startsWith('2')) bytes += Number(match[3]);
  return bytes;
}

/**
 * Waits until distribution (filesystem storage in `storage`) holds every blob
 * of `blobs`: in proxy mode it fetches a blob to keep apart from the one it
 * streams to the client, and may still be at it when the client is done.
 * @throws Error when one is missing after 60 s.
 */
export async function distributionHolds(storage: string, blobs: Descriptor[]): Promise<void> {
  const file = (digest: string) => {
    const hex = digest.slice('sha256:'.length);
    return join(storage, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    const missing = blobs.filter((blob) => !existsSync(file(blob.digest)) || statSync(file(blob.digest)).size !== blob.size);
    if (missing.length === 0) return;
    if (Date.now() > deadline) throw new Error(`distribution's proxy did not keep ${missing.map((b) => b.digest).join(', ')} within 60 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
