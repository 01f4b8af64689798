// Manifest endpoints: pull, push, delete, by tag or by digest.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-manifests

import { checkTag, NotFoundError, pushedMediaType, type Reference, type StoredManifest } from '../../store/index.js';
import { location, readBody, repoPath, sendEmpty, type RequestContext } from '../http.js';
import { protectedTags, protectedTagsOf, warnOverrides } from '../immutable.js';

/**
 * True when an Accept header admits `mediaType`: no header, a wildcard, or
 * the type itself (q=0 excludes). Like distribution, only what a client
 * lists is "supported"; unlike distribution, a client that sends no Accept
 * at all (curl, Go's default client) gets the manifest as stored.
 */
export function accepts(header: string | undefined, mediaType: string): boolean {
  if (header === undefined) return true;
  // A client sends the same header on every pull: the last answer is kept.
  if (header === lastAccept.header && mediaType === lastAccept.mediaType) return lastAccept.accepted;
  const accepted = parseAccepts(header, mediaType);
  lastAccept = { header, mediaType, accepted };
  return accepted;
}

let lastAccept = { header: '', mediaType: '', accepted: true };

function parseAccepts(header: string, mediaType: string): boolean {
  if (header.trim() === '') return true;
  for (const item of header.split(',')) {
    const [type, ...params] = item.split(';').map((part) => part.trim().toLowerCase());
    if (params.some((p) => /^q=0(?:\.0*)?$/.test(p))) continue;
    if (type === '*/*' || type === 'application/*' || type === mediaType) return true;
  }
  return false;
}

/**
 * HEAD/GET /v2/<name>/manifests/<reference> — spec "Pulling manifests"
 * (end-3): the exact bytes pushed, with Content-Type and Docker-Content-Digest.
 * By tag, a manifest whose type the Accept header excludes is
 * MANIFEST_UNKNOWN, as distribution answers; by digest the content is
 * immutable and served whatever the client listed. The pull is noted for
 * the statistics, written later in a batch.
 */
export async function getManifest(c: RequestContext, name: string, reference: Reference): Promise<void> {
  const head = c.req.method === 'HEAD';
  const manifest = await c.registry.store.getManifestByReference(name, reference, { head });
  if (reference.tag !== undefined && !accepts(c.req.headers.accept, manifest.mediaType)) {
    throw new NotFoundError(
      'MANIFEST_UNKNOWN',
      `manifest ${name}:${reference.tag} is a ${manifest.mediaType}, which the Accept header does not list`,
    );
  }
  const { digest } = manifest;
  c.writeHead(200, ['Content-Type', manifest.mediaType, 'Docker-Content-Digest', digest, 'ETag', `"${digest}"`, 'Content-Length', manifest.size]);
  c.res.end(head ? undefined : (manifest as StoredManifest).payload);
  // A GET pulls the manifest (by tag, the tag too). A HEAD by tag resolves
  // the tag, for a GET by digest to follow (containerd) or for an update
  // check: it marks when the tag was used, counting nothing. A HEAD by
  // digest only asks whether the manifest is there.
  const { pulls } = c.registry;
  if (pulls === undefined) return;
  if (!head) pulls.note(name, digest, reference.tag);
  else if (reference.tag !== undefined) pulls.note(name, undefined, reference.tag, 0);
}

/**
 * The tags a push by digest names with `?tag=` (spec end-7b), each checked
 * before anything is written (TAG_INVALID), each once. A push by tag has none.
 */
function tagParameters(c: RequestContext, reference: Reference): string[] {
  if (reference.digest === undefined) return [];
  return [...new Set(c.url.searchParams.getAll('tag'))].map((tag) => checkTag(tag));
}

/**
 * PUT /v2/<name>/manifests/<reference> — spec "Pushing manifests" (end-7a,
 * and end-7b: by digest with `?tag=` parameters, answered with OCI-Tag):
 * at most the store's maxManifestSize (4 MiB unless the embedder opened the
 * store with another; 413 beyond), digest checked when the reference is one,
 * every referenced blob and child present, stored and tagged in one transaction. Answers
 * 201 with Location, Docker-Content-Digest, and OCI-Subject when the
 * manifest has a subject.
 */
export async function putManifest(c: RequestContext, name: string, reference: Reference): Promise<void> {
  const { store } = c.registry;
  const payload = await readBody(c.req, store.limits.maxManifestSize);
  const mediaType = pushedMediaType(c.req.headers['content-type'], payload);
  // The store checks the digest (or takes the payload's sha256 for a push by
  // tag) and, in the same transaction as the write, that every blob and child
  // manifest is in the repository (MANIFEST_BLOB_UNKNOWN otherwise; a missing
  // subject is allowed), and tags the manifest in that transaction.
  const tags = tagParameters(c, reference);
  const overridable = await protectedTags(c, name, reference.tag === undefined ? tags : [reference.tag]);
  const { digest, subject } = await store.putManifest(name, reference.digest, { mediaType, payload }, c.ctx, {
    tag: reference.tag ?? tags[0],
    requireReferences: true,
  });
  // The first tag parameter is set in the manifest's own transaction, the others each in one of its own.
  for (const tag of tags.slice(1)) await store.putTag(name, tag, { digest }, c.ctx);
  warnOverrides(c, name, overridable, digest);
  const headers: Record<string, string> = {
    Location: location(c.registry, repoPath(name, 'manifests', digest)),
    'Docker-Content-Digest': digest,
  };
  if (subject !== undefined) headers['OCI-Subject'] = subject;
  if (tags.length > 0) headers['OCI-Tag'] = tags.join(', ');
  sendEmpty(c, 201, headers);
}

/**
 * DELETE /v2/<name>/manifests/<reference> — spec "Deleting tags" (end-9,
 * by tag: the tag only) and "Deleting manifests" (end-9, by digest: the
 * manifest with every tag on it). 202. An immutable tag is the store's
 * to refuse (DENIED, 403) unless the user is an admin; an admin's override
 * is logged (warnOverrides).
 */
export async function deleteManifest(c: RequestContext, name: string, reference: Reference): Promise<void> {
  const { store } = c.registry;
  const overridable = await (reference.tag !== undefined ? protectedTags(c, name, [reference.tag]) : protectedTagsOf(c, name, reference.digest));
  if (reference.tag !== undefined) await store.deleteTag(name, reference.tag, c.ctx);
  else await store.deleteManifest(name, reference.digest, c.ctx);
  warnOverrides(c, name, overridable);
  sendEmpty(c, 202);
}
