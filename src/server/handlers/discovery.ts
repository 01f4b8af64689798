// The version check and the listing endpoints: catalog, tags, referrers.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#content-discovery

import { MediaType } from '../../store/index.js';
import { pullableCatalog } from '../catalog.js';
import { nextLink, pageQuery, sendJson, type RequestContext } from '../http.js';

/** The most names one list response carries; more come through Link. */
const MAX_PAGE = 10_000;

/** GET /v2/ — spec "Determining support" (end-1): 200 for a client allowed in. */
export function base(c: RequestContext): void {
  sendJson(c, 200, {});
}

/**
 * GET /v2/<name>/tags/list — spec "Listing tags" (end-8a, end-8b): byte
 * order, `n` and `last`, and a Link to the next page when there is one.
 * An unknown repository is NAME_UNKNOWN.
 */
export async function listTags(c: RequestContext, name: string): Promise<void> {
  const { n, last } = pageQuery(c.url, MAX_PAGE);
  // One more than asked tells whether a next page exists without a count.
  const tags = await c.registry.store.allTags(name, { n: n + 1, last });
  const headers: Record<string, string> = {};
  if (tags.length > n) {
    tags.length = n;
    if (n > 0) headers.Link = nextLink(c.url.pathname, n, tags[n - 1]);
  }
  sendJson(c, 200, { name, tags }, headers);
}

/**
 * GET /v2/_catalog — distribution's catalog API, paginated like tags. With
 * access rules, a non-admin sees the repositories they may pull, read by the
 * name ranges their rules can match and filtered while paging, at a bounded
 * cost per page (pullableCatalog).
 */
export async function catalog(c: RequestContext): Promise<void> {
  const { n, last } = pageQuery(c.url, MAX_PAGE);
  const { access } = c.registry;
  if (access !== undefined && !access.isAdmin(c.actor)) {
    const page = await pullableCatalog(c.registry.store, access, c.actor, n, last);
    const link: Record<string, string> = page.next === undefined ? {} : { Link: nextLink(c.url.pathname, n, page.next) };
    return sendJson(c, 200, { repositories: page.repositories }, link);
  }
  const repositories = await c.registry.store.catalog({ n: n + 1, last });
  const headers: Record<string, string> = {};
  if (repositories.length > n) {
    repositories.length = n;
    if (n > 0) headers.Link = nextLink(c.url.pathname, n, repositories[n - 1]);
  }
  sendJson(c, 200, { repositories }, headers);
}

/**
 * GET /v2/<name>/referrers/<digest> — spec "Listing referrers" (end-12a,
 * end-12b): always an image index, empty for an unknown repository or
 * subject; with `artifactType`, filtered, and OCI-Filters-Applied says so.
 */
export async function referrers(c: RequestContext, name: string, digest: string): Promise<void> {
  const artifactType = c.url.searchParams.get('artifactType') || undefined;
  const manifests = await c.registry.store.referrers(name, digest, { artifactType });
  const headers: Record<string, string> = { 'Content-Type': MediaType.OciIndex };
  if (artifactType !== undefined) headers['OCI-Filters-Applied'] = 'artifactType';
  sendJson(c, 200, { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }, headers);
}
