// Blob pulls in a mirror's namespace: a blob not yet here is fetched once,
// streamed to every client that asks meanwhile, and kept once its digest is
// verified; one another repository brought is linked here once the upstream
// says this repository has it too.

import { NotFoundError } from '../../store/index.js';
import { HttpError } from '../errors.js';
import { setBlobHeaders } from '../handlers/blobs.js';
import type { RequestContext } from '../http.js';
import type { Route } from '../routes.js';
import { sendBlob } from '../send-blob.js';
import { upstreamUnavailable } from './auth.js';
import { Downloads, type Download } from './download.js';
import type { MirrorParts, MirrorTarget, Next } from './types.js';
import { isUpstreamError } from './calls.js';
import { upstreamBlob } from './upstream-blob.js';

type BlobRoute = Route & { kind: 'blob' };

// One per registry (its parts), made on first use.
const downloadsOf = new WeakMap<MirrorParts, Downloads>();

/**
 * GET/HEAD of a blob in a mirror's namespace: from the cache when it is
 * linked here, else from the upstream.
 * @throws NotFoundError BLOB_UNKNOWN (neither here nor upstream); HttpError
 * UPSTREAM_UNAVAILABLE, SIZE_INVALID (over the blob limit), RANGE_INVALID;
 * what `next` and the stores throw. A failure once the answer has begun
 * cuts the connection instead.
 */
export async function pullBlob(parts: MirrorParts, c: RequestContext, target: MirrorTarget, route: BlobRoute, next: Next): Promise<void> {
  const { prefix } = target.mirror.options;
  // The warm path: the registry's own answer, at no extra cost.
  try {
    await next(route);
    return parts.counters.pull(prefix, 'blob', 'hit');
  } catch (error) {
    if (!(error instanceof NotFoundError && (error.code === 'BLOB_UNKNOWN' || error.code === 'NAME_UNKNOWN')) || c.res.headersSent) throw error;
  }
  const { name, digest } = route;
  let downloads = downloadsOf.get(parts);
  if (downloads === undefined) downloadsOf.set(parts, (downloads = new Downloads(parts)));
  const head = c.req.method === 'HEAD';
  const running = downloads.running(digest);
  if (!head && running?.names.has(name)) return serveDownload(parts, c, target, route, downloads.join(target, name, digest), next);
  if (head || running !== undefined || (await parts.blobs.stat(digest)) !== undefined) {
    // Another repository's copy proves nothing of this one: the upstream's word does.
    const size = await headUpstream(parts, c, target, name, digest);
    if (await linkStored(parts, name, digest)) {
      parts.counters.pull(prefix, 'blob', 'hit');
      return next(route);
    }
    if (head) {
      parts.counters.pull(prefix, 'blob', 'miss');
      setBlobHeaders(c, digest, size);
      return void c.res.end();
    }
  }
  return serveDownload(parts, c, target, route, downloads.join(target, name, digest), next);
}

/**
 * The blob's size upstream, in the target's repository.
 * @throws NotFoundError BLOB_UNKNOWN; HttpError UPSTREAM_UNAVAILABLE (also
 * for an answer without a size), DENIED; Error when the client goes away.
 */
async function headUpstream(parts: MirrorParts, c: RequestContext, target: MirrorTarget, name: string, digest: string): Promise<number> {
  // A client that went away leaves the line for an upstream slot.
  const gone = new AbortController();
  const abort = () => gone.abort(new Error('the client went away'));
  c.res.once('close', abort);
  try {
    const { size, body } = await upstreamBlob('HEAD', target, name, digest, gone.signal);
    body.resume();
    if (size === undefined) throw upstreamUnavailable(target.mirror.upstream.origin, `it gave no size for blob ${digest}`);
    return size;
  } catch (error) {
    if (isUpstreamError(error)) parts.counters.upstreamError(target.mirror.options.prefix);
    throw error;
  } finally {
    c.res.off('close', abort);
  }
}

/** Links blob `digest` in `name` when the blob store has it already; false when it does not. @throws the stores' errors. */
async function linkStored(parts: MirrorParts, name: string, digest: string): Promise<boolean> {
  const stat = await parts.blobs.stat(digest);
  if (stat === undefined) return false;
  await parts.store.linkBlob(name, { digest, size: stat.size }, { actor: 'mirror' });
  return true;
}

/** Stops the downloads running for a registry that is closing (each as a failure: nothing kept). Never rejects. */
export async function closeDownloads(parts: MirrorParts): Promise<void> {
  await downloadsOf.get(parts)?.close();
}

/**
 * Answers from a download this request has joined (and leaves it): the
 * bytes as they arrive, the last once the blob is verified; a blob whose
 * size the upstream did not send once it is kept, from the cache.
 */
async function serveDownload(parts: MirrorParts, c: RequestContext, target: MirrorTarget, route: BlobRoute, download: Download, next: Next): Promise<void> {
  try {
    await download.ready;
    parts.counters.pull(target.mirror.options.prefix, 'blob', 'miss');
    if (download.size === undefined) {
      await download.finished;
      return await next(route);
    }
    const range = setBlobHeaders(c, route.digest, download.size);
    // Now, not with the first bytes: those of a range near the end may be a while.
    c.res.flushHeaders();
    try {
      if (range === undefined) {
        await download.verified();
        c.res.end();
      } else await sendBlob(c.res, download.file(range[1]), range[0], range[1]);
    } catch (error) {
      // A blob that failed, or a client that went away: either way the answer cannot complete.
      if (!c.res.destroyed) c.res.destroy(error as Error);
    }
  } finally {
    download.leave();
  }
}
