// Blob endpoints: pull, delete, and the upload session (monolithic, chunked,
// streamed, cross-repository mount).
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-blobs
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-blobs

import type { StagedBlob, Upload } from '../../blobstore/index.js';
import { checkDigest, isRepository, NotFoundError } from '../../store/index.js';
import { HttpError } from '../errors.js';
import { clientKey } from '../failures.js';
import { contentLength, hasBody, location, repoPath, sendEmpty, type RequestContext } from '../http.js';
import { refuseOverQuota } from '../quota.js';
import { sendBlob } from '../send-blob.js';

// --- pull -----------------------------------------------------------------------

/**
 * How long the pre-signed URL of a redirected blob GET is valid, in seconds:
 * distribution's 20 minutes. The client fetches at once; a short life
 * bounds what a leaked URL gives away.
 */
export const REDIRECT_TTL_SECONDS = 20 * 60;

/**
 * HEAD/GET /v2/<name>/blobs/<digest> — spec "Pulling blobs" (end-2), with a
 * single byte Range. A blob is readable from a repository only when linked
 * there. HEAD is answered from the metadata alone, with no round trip to
 * the storage (a linked blob whose bytes are lost still HEADs 200 while a
 * GET answers 404; `regmeta check` finds it). With `redirect`, a GET answers
 * 307 to the storage's pre-signed URL where it has one; the client sends
 * any Range there itself.
 */
export async function getBlob(c: RequestContext, name: string, digest: string): Promise<void> {
  const { store, blobs } = c.registry;
  const info = await store.statBlob(name, digest);
  if (c.req.method === 'HEAD') {
    setBlobHeaders(c, digest, info.size);
    return void c.res.end();
  }
  if (c.registry.redirect) {
    const url = await blobs.signedUrl(digest, REDIRECT_TTL_SECONDS);
    if (url !== undefined) return sendEmpty(c, 307, { Location: url, 'Docker-Content-Digest': digest });
  }
  // Opened at once: one call where a stat and an open were two.
  const file = await blobs.open(digest);
  if (file === undefined) missingFile(c, name, digest);
  try {
    const range = setBlobHeaders(c, digest, info.size);
    if (range === undefined) return void c.res.end();
    await sendBlob(c.res, file, range[0], range[1]);
  } catch (error) {
    // A client that hangs up mid-blob is not a server fault.
    if (!c.res.headersSent) throw error;
    if (!c.res.destroyed) c.res.destroy(error as Error);
  } finally {
    await file.close();
  }
}

/**
 * Linked but its bytes are gone: to the client it is simply not there; to
 * the operator it is damage, which `regmeta check` lists in full.
 * @throws NotFoundError BLOB_UNKNOWN, always.
 */
function missingFile(c: RequestContext, name: string, digest: string): never {
  const { blobs, faults } = c.registry;
  faults.once(digest, () => new Error(`blob ${digest} is linked in ${name} but not in the blob store (${blobs.location(digest)})`), {
    requestId: c.requestId,
  });
  throw new NotFoundError('BLOB_UNKNOWN', `blob ${digest} is not known in ${name}`);
}

/**
 * Sets the status and headers of a blob answer of `size` bytes, honouring a
 * single Range (a mirror's answers too, for blobs still on their way).
 * @returns the inclusive range to send, undefined for none (an empty blob).
 * @throws HttpError RANGE_INVALID.
 */
export function setBlobHeaders(c: RequestContext, digest: string, size: number): [number, number] | undefined {
  const range = parseRange(c.req.headers.range, size);
  if (range === 'unsatisfiable') {
    throw new HttpError('RANGE_INVALID', 'requested range not satisfiable', { headers: { 'Content-Range': `bytes */${size}` } });
  }
  const [start, end] = range ?? [0, size - 1];
  const headers: Record<string, string | number> = {
    'Docker-Content-Digest': digest,
    'Content-Type': 'application/octet-stream',
    'Accept-Ranges': 'bytes',
    ETag: `"${digest}"`,
    // Content-addressed: the bytes behind this URL never change.
    'Cache-Control': 'max-age=31536000, immutable',
    'Content-Length': Math.max(end - start + 1, 0),
  };
  if (range) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
  c.res.writeHead(range ? 206 : 200, headers);
  return size === 0 ? undefined : [start, end];
}

/**
 * Parses a single `bytes=` range against `size`: the inclusive [start, end],
 * 'unsatisfiable', or undefined when there is no usable Range header (which
 * RFC 9110 says to ignore, serving the whole blob).
 */
export function parseRange(header: string | undefined, size: number): [number, number] | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return [Math.max(size - suffix, 0), size - 1];
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return [start, end];
}

/**
 * DELETE /v2/<name>/blobs/<digest> — spec "Deleting blobs" (end-10): unlinks
 * the blob from the repository; the file stays for the garbage collector,
 * since other repositories may link it. 409 BLOB_REFERENCED while a manifest
 * of the repository references it: the image would no longer pull.
 */
export async function deleteBlob(c: RequestContext, name: string, digest: string): Promise<void> {
  await c.registry.store.unlinkBlob(name, digest, c.ctx);
  sendEmpty(c, 202);
}

// --- push -----------------------------------------------------------------------

function uploadHeaders(c: RequestContext, name: string, session: Upload): Record<string, string> {
  return {
    Location: location(c.registry, repoPath(name, 'blobs', 'uploads', session.id)),
    // distribution's convention: the last byte received, and 0-0 when empty.
    Range: `0-${Math.max(session.size - 1, 0)}`,
    'Docker-Upload-UUID': session.id,
  };
}

function blobCreated(c: RequestContext, name: string, digest: string): void {
  sendEmpty(c, 201, { Location: location(c.registry, repoPath(name, 'blobs', digest)), 'Docker-Content-Digest': digest });
}

/**
 * Links a finished upload into the repository. The file is moved into place
 * inside the store's transaction, so a concurrent gc (which removes files
 * under the same lock, and only when the row is gone) cannot remove it.
 */
async function link(c: RequestContext, name: string, digest: string, upload: StagedBlob): Promise<void> {
  try {
    const { store } = c.registry;
    await store.linkBlob(name, { digest, size: upload.size }, c.ctx, { place: upload.place });
  } finally {
    await upload.discard();
  }
}

/**
 * POST /v2/<name>/blobs/uploads/ — spec "Pushing blobs": with `mount` and
 * `from`, mounts a blob the source repository has (end-11, 201); with
 * `digest`, a monolithic upload of the body (end-4b, 201); else opens a
 * session (end-4a, 202). A mount the source cannot honour opens a session.
 */
export async function startUpload(c: RequestContext, name: string): Promise<void> {
  const { blobs } = c.registry;
  const params = c.url.searchParams;
  const mount = params.get('mount');
  if (mount !== null) {
    const digest = checkDigest(mount);
    const from = params.get('from');
    if (from !== null && isRepository(from) && (await mountFrom(c, name, digest, from))) return blobCreated(c, name, digest);
  }
  const digestParam = params.get('digest');
  const digest = digestParam === null ? undefined : checkDigest(digestParam);
  // Before the session and the body: a monolithic upload its quota cannot take is refused unread.
  const length = contentLength(c.req);
  if (digest !== undefined && length !== undefined) await refuseOverQuota(c.registry.store, name, length, digest);
  // Counted against the client's cap by the same key as its connections and failed logins (an IPv6 client by its /64).
  const session = await blobs.startUpload(name, clientKey(c.req.socket.remoteAddress ?? ''));
  if (digest === undefined) return sendEmpty(c, 202, uploadHeaders(c, name, session));
  try {
    await blobs.append(session, c.req, contentLength(c.req));
  } catch (error) {
    await blobs.cancel(session);
    throw error;
  }
  await link(c, name, digest, await blobs.finish(session, digest));
  blobCreated(c, name, digest);
}

/** Mounts `digest` from `from` when that repository has it (and its file is there); false otherwise. */
async function mountFrom(c: RequestContext, name: string, digest: string, from: string): Promise<boolean> {
  if ((await c.registry.blobs.stat(digest)) === undefined) return false;
  try {
    // The check that `from` has it and the link are one transaction.
    await c.registry.store.mountBlob(name, digest, from, c.ctx);
    return true;
  } catch (error) {
    if (error instanceof NotFoundError) return false;
    throw error;
  }
}

/**
 * The byte range a chunk claims (Content-Range `<start>-<end>`) checked
 * against what the session has: a gap or overlap is 416 with the session's
 * Range, so the client can resume.
 * @returns the chunk's length, or undefined when it claims no range.
 */
function chunkLength(c: RequestContext, name: string, session: Upload): number | undefined {
  const header = c.req.headers['content-range'];
  const length = contentLength(c.req);
  if (header === undefined) return length;
  const match = /^(?:bytes[ =])?(\d{1,16})-(\d{1,16})(?:\/(?:\d+|\*))?$/.exec(header.trim());
  const outOfOrder = () =>
    // The spec's code for a bad chunk, with the spec's 416 rather than its usual 400.
    new HttpError('BLOB_UPLOAD_INVALID', `chunk does not continue the upload at byte ${session.size}`, {
      status: 416,
      headers: uploadHeaders(c, name, session),
    });
  if (!match) throw new HttpError('BLOB_UPLOAD_INVALID', 'malformed Content-Range', { status: 416, headers: uploadHeaders(c, name, session) });
  const start = Number(match[1]);
  const end = Number(match[2]);
  if (start !== session.size || end < start) throw outOfOrder();
  const claimed = end - start + 1;
  if (length !== undefined && length !== claimed) {
    throw new HttpError('SIZE_INVALID', `Content-Range claims ${claimed} bytes, Content-Length ${length}`);
  }
  return claimed;
}

/**
 * Refuses, before its body is read, a chunk whose length is known (its
 * Content-Range, or Content-Length) and would take the upload past what its
 * namespace's quota has room for. A chunk of unknown length (chunked
 * encoding) is let in: the store's check at the link refuses it then.
 * @throws StoreError DENIED; HttpError as chunkLength.
 */
async function refuseChunkOverQuota(c: RequestContext, name: string, session: Upload, digest?: string): Promise<void> {
  const length = chunkLength(c, name, session);
  if (length !== undefined) await refuseOverQuota(c.registry.store, name, session.size + length, digest);
}

/**
 * PATCH /v2/<name>/blobs/uploads/<id> — spec "Pushing a blob in chunks"
 * (end-5), and streamed uploads without Content-Range: appends the body.
 */
export async function patchUpload(c: RequestContext, name: string, id: string): Promise<void> {
  const { blobs } = c.registry;
  const session = await blobs.upload(name, id);
  await refuseChunkOverQuota(c, name, session);
  await blobs.append(session, c.req, (current) => chunkLength(c, name, current));
  sendEmpty(c, 202, uploadHeaders(c, name, session));
}

/**
 * PUT /v2/<name>/blobs/uploads/<id>?digest= — spec "Pushing a blob in chunks"
 * / "monolithically" (end-6): appends an optional last chunk, checks the
 * digest, moves the blob into place and links it.
 */
export async function finishUpload(c: RequestContext, name: string, id: string): Promise<void> {
  const { blobs } = c.registry;
  const session = await blobs.upload(name, id);
  const digestParam = c.url.searchParams.get('digest');
  if (digestParam === null) throw new HttpError('DIGEST_INVALID', 'the digest query parameter is required');
  const digest = checkDigest(digestParam);
  if (hasBody(c.req) || c.req.headers['content-range'] !== undefined) {
    await refuseChunkOverQuota(c, name, session, digest);
    await blobs.append(session, c.req, (current) => chunkLength(c, name, current));
  }
  await link(c, name, digest, await blobs.finish(session, digest));
  blobCreated(c, name, digest);
}

/** GET /v2/<name>/blobs/uploads/<id> — spec "Getting the upload status" (end-13): 204 with Range. */
export async function uploadStatus(c: RequestContext, name: string, id: string): Promise<void> {
  sendEmpty(c, 204, uploadHeaders(c, name, await c.registry.blobs.upload(name, id)));
}

/** DELETE /v2/<name>/blobs/uploads/<id> — cancels the session (distribution's API; the spec leaves it out). */
export async function cancelUpload(c: RequestContext, name: string, id: string): Promise<void> {
  const { blobs } = c.registry;
  await blobs.cancel(await blobs.upload(name, id));
  sendEmpty(c, 204);
}
