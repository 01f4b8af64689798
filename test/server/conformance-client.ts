// A small client for the conformance ports: one request helper and the blob
// push flows of the current suite (conformance/api.go), each asserting what the
// suite asserts. Written for regmeta's tests; no code of the suite is copied.

import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { expect } from 'vitest';

export const MT = {
  image: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  empty: 'application/vnd.oci.empty.v1+json',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  layer: 'application/vnd.oci.image.layer.v1.tar',
  layerNdGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  layerNd: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  octet: 'application/octet-stream',
  example1: 'application/vnd.example.oci.conformance.1',
  example2: 'application/vnd.example.oci.conformance.2',
} as const;

/** The error codes the spec lists (setup.go's errorCodes, with the 1.1 additions). */
export const SPEC_CODES = [
  'BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID', 'MANIFEST_UNKNOWN', 'MANIFEST_UNVERIFIED', 'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID',
  'TAG_INVALID', 'UNAUTHORIZED', 'DENIED', 'UNSUPPORTED', 'TOOMANYREQUESTS',
];

export type Algorithm = 'sha256' | 'sha512';

export function digestOf(bytes: Uint8Array | string, algo: Algorithm = 'sha256'): string {
  return `${algo}:${createHash(algo).update(bytes).digest('hex')}`;
}

export interface Reply {
  status: number;
  headers: Headers;
  body: Buffer;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  /** Query parameters; a list repeats the parameter (`?tag=a&tag=b`). */
  query?: Record<string, string | string[]>;
}

/** Where a flow fell back because the registry lacks an optional API (the suite's errRegUnsupported: a skip, not a failure). */
export type Outcome = 'pass' | 'unsupported';

function sendWithHttp(method: string, url: URL, options: RequestOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const headers = new Headers();
        for (const [key, value] of Object.entries(res.headers)) if (typeof value === 'string') headers.set(key, value);
        resolve({ status: res.statusCode!, headers, body: Buffer.concat(chunks) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

export class OciClient {
  constructor(readonly base: string) {}

  /** Sends one request; `path` is absolute (/v2/…) or a Location the registry returned. */
  async send(method: string, path: string, options: RequestOptions = {}): Promise<Reply> {
    const url = new URL(path, this.base);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      url.searchParams.delete(key);
      for (const v of [value].flat()) url.searchParams.append(key, v);
    }
    // fetch refuses a GET with a body, which the suite sends once; node:http does not.
    if ((method === 'GET' || method === 'HEAD') && options.body !== undefined) return sendWithHttp(method, url, options);
    const res = await fetch(url, { method, headers: options.headers, body: options.body });
    return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
  }

  location(reply: Reply): string {
    const location = reply.headers.get('location');
    expect(location, 'Location header').toBeTruthy();
    return location!;
  }

  /** The suite's VerifyDigest: a Docker-Content-Digest header, when sent, names the digest. */
  verifyDigest(reply: Reply, digest: string): void {
    const header = reply.headers.get('docker-content-digest');
    if (header !== null) expect(header).toBe(digest);
  }

  /** The suite's BlobVerifyLocation: the returned Location serves the blob. */
  async verifyLocation(location: string, bytes: Buffer): Promise<void> {
    const get = await this.send('GET', location);
    expect(get.status).toBe(200);
    expect(get.body.equals(bytes)).toBe(true);
  }

  /** POST with ?digest= and the body: 201 (a 202 falls back to PUT, unsupported); a bad digest 400. */
  async blobPostOnly(repo: string, digest: string, bytes: Buffer, bad = false): Promise<Outcome> {
    const post = await this.send('POST', `/v2/${repo}/blobs/uploads/`, { query: { digest }, headers: { 'Content-Type': MT.octet }, body: bytes });
    expect([bad ? 400 : 201, 202]).toContain(post.status);
    if (post.status === 202) {
      const put = await this.send('PUT', this.location(post), { query: { digest }, headers: { 'Content-Type': MT.octet }, body: bytes });
      expect(put.status).toBe(bad ? 400 : 201);
      return 'unsupported';
    }
    if (bad) return 'pass';
    this.verifyDigest(post, digest);
    await this.verifyLocation(this.location(post), bytes);
    return 'pass';
  }

  /** POST for a session (202), then PUT of the whole blob with ?digest= (201, or 400 for a bad digest). */
  async blobPostPut(repo: string, digest: string, bytes: Buffer, bad = false): Promise<void> {
    const post = await this.send('POST', `/v2/${repo}/blobs/uploads/`);
    expect(post.status).toBe(202);
    const put = await this.send('PUT', this.location(post), { query: { digest }, headers: { 'Content-Type': MT.octet }, body: bytes });
    expect(put.status).toBe(bad ? 400 : 201);
    if (bad) return;
    this.verifyDigest(put, digest);
    await this.verifyLocation(this.location(put), bytes);
  }

  /** POST, one PATCH of the whole body without Content-Range (202), then PUT ?digest= with no body (201, or 400). */
  async blobPatchStream(repo: string, digest: string, bytes: Buffer, bad = false): Promise<void> {
    const post = await this.send('POST', `/v2/${repo}/blobs/uploads/`, { headers: { 'Content-Length': '0' } });
    expect(post.status).toBe(202);
    const patch = await this.send('PATCH', this.location(post), { headers: { 'Content-Type': MT.octet }, body: bytes });
    expect(patch.status).toBe(202);
    const put = await this.send('PUT', this.location(patch), { query: { digest }, headers: { 'Content-Type': MT.octet } });
    expect(put.status).toBe(bad ? 400 : 201);
    if (bad) return;
    this.verifyDigest(put, digest);
    await this.verifyLocation(this.location(put), bytes);
  }

  /** POST ?mount=&from= (from omitted: anonymous): 201, or 202 and a fallback PUT (unsupported). */
  async blobMount(repo: string, from: string | undefined, digest: string, bytes: Buffer): Promise<Outcome> {
    const query: Record<string, string> = { mount: digest, ...(from === undefined ? {} : { from }) };
    const post = await this.send('POST', `/v2/${repo}/blobs/uploads/`, { query });
    expect([201, 202]).toContain(post.status);
    let location = this.location(post);
    let reply = post;
    if (post.status === 202) {
      reply = await this.send('PUT', location, { query: { digest }, headers: { 'Content-Type': MT.octet }, body: bytes });
      expect(reply.status).toBe(201);
      location = this.location(reply);
    }
    this.verifyDigest(reply, digest);
    await this.verifyLocation(location, bytes);
    return post.status === 201 ? 'pass' : 'unsupported';
  }

  /** POST for a session, then DELETE it: 204. */
  async blobPostCancel(repo: string): Promise<void> {
    const post = await this.send('POST', `/v2/${repo}/blobs/uploads/`);
    expect(post.status).toBe(202);
    expect((await this.send('DELETE', this.location(post), { headers: { 'Content-Length': '0' } })).status).toBe(204);
  }

  /** HEAD: 200, no body, Content-Length of the blob, its digest if a header is sent. */
  async headBlob(repo: string, digest: string, bytes?: Buffer): Promise<void> {
    const head = await this.send('HEAD', `/v2/${repo}/blobs/${digest}`);
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    if (bytes !== undefined) expect(head.headers.get('content-length')).toBe(String(bytes.length));
    this.verifyDigest(head, digest);
  }

  /** GET: 200 with the blob's bytes and Content-Length. */
  async getBlob(repo: string, digest: string, bytes: Buffer): Promise<void> {
    const get = await this.send('GET', `/v2/${repo}/blobs/${digest}`);
    expect(get.status).toBe(200);
    expect(get.body.equals(bytes)).toBe(true);
    expect(get.headers.get('content-length')).toBe(String(bytes.length));
    this.verifyDigest(get, digest);
  }

  /** DELETE: 202 (or 404, 405), then HEAD 404 at once (the suite's "atomic" check). */
  async deleteBlob(repo: string, digest: string): Promise<void> {
    const del = await this.send('DELETE', `/v2/${repo}/blobs/${digest}`);
    expect([202, 404, 405]).toContain(del.status);
    expect((await this.send('HEAD', `/v2/${repo}/blobs/${digest}`)).status).toBe(404);
  }
}

/** The smallest chunk the current suite sends (config.go's chunkMin). */
export const CHUNK_MIN = 1024;

export interface ChunkOptions {
  /** Send the last chunk with the closing PUT rather than a PATCH. */
  putLastChunk?: boolean;
  /** Before each chunk, send one out of order (expecting 416), then recover with a GET (204 with Range). */
  outOfOrder?: boolean;
  /** The blob's bytes do not match the digest: the closing PUT must be 400. */
  bad?: boolean;
}

/**
 * The suite's BlobPatchChunked: POST (202), chunks of a third of the blob
 * (at least CHUNK_MIN and the registry's OCI-Chunk-Min-Length) with
 * Content-Range, then PUT ?digest= (201, or 400 for a bad digest).
 * @returns the OCI-Chunk-Min-Length the registry announced, or null.
 */
export async function blobPatchChunked(client: OciClient, repo: string, digest: string, bytes: Buffer, options: ChunkOptions = {}): Promise<string | null> {
  const post = await client.send('POST', `/v2/${repo}/blobs/uploads/`, { headers: { 'Content-Length': '0' } });
  expect(post.status).toBe(202);
  const minHeader = post.headers.get('oci-chunk-min-length');
  let chunk = Math.max(Math.floor(bytes.length / 3) + 1, Number(minHeader ?? 0), CHUNK_MIN);
  chunk = Math.min(chunk, bytes.length);
  let location = client.location(post);
  let last = -1;
  let final: Reply | undefined;
  while (last < bytes.length - 1) {
    if (options.outOfOrder) location = await outOfOrderChunk(client, location, digest, bytes, last, chunk, options);
    const start = last + 1;
    last = Math.min(start + chunk - 1, bytes.length - 1);
    const put = options.putLastChunk === true && last === bytes.length - 1;
    const reply = await client.send(put ? 'PUT' : 'PATCH', location, {
      query: put ? { digest } : {},
      headers: { 'Content-Type': MT.octet, 'Content-Range': `${start}-${last}` },
      body: bytes.subarray(start, last + 1),
    });
    if (put) {
      expect(reply.status).toBe(options.bad ? 400 : 201);
      final = reply;
    } else {
      expect(reply.status).toBe(202);
      location = client.location(reply);
    }
  }
  if (!options.putLastChunk) {
    final = await client.send('PUT', location, { query: { digest }, headers: { 'Content-Type': MT.octet, 'Content-Length': '0' } });
    expect(final.status).toBe(options.bad ? 400 : 201);
  }
  if (options.bad) return minHeader;
  client.verifyDigest(final!, digest);
  await client.verifyLocation(client.location(final!), bytes);
  return minHeader;
}

/** One chunk skipping ahead (or back to the start): 416; then GET the session: 204, Range 0-<last byte>. */
async function outOfOrderChunk(client: OciClient, location: string, digest: string, bytes: Buffer, last: number, chunk: number, options: ChunkOptions): Promise<string> {
  let badStart = last + 1 + chunk;
  if (badStart >= bytes.length) badStart = 0;
  const badLast = Math.min(badStart + chunk - 1, bytes.length - 1);
  const put = options.putLastChunk === true && badLast === bytes.length - 1;
  const query: Record<string, string> = put ? { digest } : {};
  const bad = await client.send(put ? 'PUT' : 'PATCH', location, {
    query,
    headers: { 'Content-Type': MT.octet, 'Content-Range': `${badStart}-${badLast}` },
    body: bytes.subarray(badStart, badLast + 1),
  });
  expect(bad.status).toBe(416);
  const status = await client.send('GET', location, { query });
  expect(status.status).toBe(204);
  const range = status.headers.get('range') ?? '';
  expect(range.startsWith('0-')).toBe(true);
  if (last >= 0) expect(Number(range.slice(2))).toBe(last);
  return client.location(status);
}
