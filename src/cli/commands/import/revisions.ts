// Manifests: each revision's bytes read from the storage and verified against
// its digest, its media type found, and the lot put into the store, an index
// after its children.

import { createHash } from 'node:crypto';
import { MediaType, NotFoundError } from '../../../store/index.js';
import { distributionBlobPath, type DistributionStorage } from '../../../blobstore/index.js';
import type { RepositoryScan } from './scan.js';
import { problemOf, type ImportProblem, type ImportRun } from './summary.js';

interface Revision {
  digest: string;
  payload: Buffer;
  mediaType: string;
  children: string[];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The media type of a manifest payload: its own mediaType field, else what its
 * structure says (an OCI index has manifests, an OCI image config and layers).
 * @returns the media type, or a problem.
 */
function detectMediaType(json: unknown): { mediaType: string } | { problem: string } {
  if (!isObject(json)) return { problem: 'the manifest is not a JSON object' };
  if (json.schemaVersion === 1) return { problem: 'schema 1 manifests are not supported' };
  if (typeof json.mediaType === 'string') return { mediaType: json.mediaType };
  if (Array.isArray(json.manifests)) return { mediaType: MediaType.OciIndex };
  if (isObject(json.config) && Array.isArray(json.layers)) return { mediaType: MediaType.OciManifest };
  return { problem: 'neither an index nor an image manifest' };
}

/** Reads and verifies a manifest's bytes from the blob store; children are those of an index. */
async function readRevision(root: DistributionStorage, repository: string, digest: string, problems: ImportProblem[]): Promise<Revision | undefined> {
  const file = root.locate(distributionBlobPath(digest));
  let payload: Buffer | undefined;
  try {
    payload = await root.read(distributionBlobPath(digest));
  } catch (error) {
    problems.push({ repository, subject: digest, problem: `manifest bytes unreadable: ${(error as NodeJS.ErrnoException).code ?? (error as Error).name} ${file}` });
    return undefined;
  }
  if (payload === undefined) {
    problems.push({ repository, subject: digest, problem: `manifest bytes unreadable: ENOENT ${file}` });
    return undefined;
  }
  const [algorithm, hex] = digest.split(':');
  if (createHash(algorithm).update(payload).digest('hex') !== hex) {
    problems.push({ repository, subject: digest, problem: `manifest bytes do not match the digest: ${file}` });
    return undefined;
  }
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    problems.push({ repository, subject: digest, problem: 'the manifest is not JSON' });
    return undefined;
  }
  const detected = detectMediaType(json);
  if ('problem' in detected) {
    problems.push({ repository, subject: digest, problem: detected.problem });
    return undefined;
  }
  const manifests = (json as { manifests?: unknown }).manifests;
  const children = Array.isArray(manifests) ? manifests.map((m) => (isObject(m) ? String(m.digest) : '')).filter(Boolean) : [];
  return { digest, payload, mediaType: detected.mediaType, children };
}

/** Children before parents: each manifest after everything it lists that is in `revisions`. */
function childrenFirst<T extends { digest: string; children: string[] }>(revisions: T[]): T[] {
  const byDigest = new Map(revisions.map((r) => [r.digest, r]));
  const ordered: T[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (r: T) => {
    if (state.get(r.digest) !== undefined) return; // done, or a cycle (which hashing makes impossible)
    state.set(r.digest, 'visiting');
    for (const child of r.children) {
      const c = byDigest.get(child);
      if (c) visit(c);
    }
    state.set(r.digest, 'done');
    ordered.push(r);
  };
  for (const r of revisions) visit(r);
  return ordered;
}

/**
 * Puts the repository's revisions into the store. Manifests already there
 * were verified when they went in: neither read nor hashed again, which
 * keeps a resumed import quick. Images go in as they are read; indexes wait
 * (in memory, and they are few) until every image is in, then go in
 * children first.
 * @returns the digests the repository now has, for its tags.
 * @throws StoreError on database failures.
 */
export async function importRevisions(run: ImportRun, repo: RepositoryScan): Promise<Set<string>> {
  const { store, ctx, summary, bar } = run;
  const { name } = repo;
  const available = new Set<string>();
  const indexes: Revision[] = [];
  const put = async (revision: Revision) => {
    try {
      await store.putManifest(name, revision.digest, { mediaType: revision.mediaType, payload: revision.payload }, ctx);
      summary.manifests.imported++;
      available.add(revision.digest);
    } catch (error) {
      summary.problems.push({ repository: name, subject: revision.digest, problem: problemOf(error) });
    }
  };
  for (const digest of repo.revisions) {
    try {
      await store.statManifest(name, digest);
      summary.manifests.present++;
      available.add(digest);
      bar.tick();
      continue;
    } catch (error) {
      if (!(error instanceof NotFoundError)) problemOf(error);
    }
    const revision = await readRevision(run.root, name, digest, summary.problems);
    if (revision === undefined || revision.children.length === 0) {
      bar.tick();
      if (revision) await put(revision);
    } else indexes.push(revision);
  }
  for (const revision of childrenFirst(indexes)) {
    bar.tick();
    await put(revision);
  }
  return available;
}
