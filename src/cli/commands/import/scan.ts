// Reading a distribution registry's storage (a directory or a bucket, behind
// the blob store's DistributionStorage): which repositories there are, and in
// each the revisions, tags (with their history) and layers that link files
// name. One listing of repositories/, then a small read per link file.
// Read-only.
//
// The layout (distribution's registry/storage/paths.go), under docker/registry/v2:
//   repositories/<name>/_manifests/revisions/<alg>/<hex>/link          a manifest of the repository
//   repositories/<name>/_manifests/tags/<tag>/current/link             the digest the tag points at
//   repositories/<name>/_manifests/tags/<tag>/index/<alg>/<hex>/link   every digest the tag has had
//   repositories/<name>/_layers/<alg>/<hex>/link                       a blob linked in the repository
//   blobs/<alg>/<2 hex>/<hex>/data   the bytes, manifests too

import { isDigest } from '../../../store/index.js';
import type { DistributionFile, DistributionStorage } from '../../../blobstore/index.js';
import { CliError, Exit } from '../../exit.js';
import type { ImportProblem } from './summary.js';

export interface TagScan {
  name: string;
  current: string | undefined;
  /** The tag's index, oldest first. */
  history: string[];
}

export interface RepositoryScan {
  name: string;
  revisions: string[];
  tags: TagScan[];
  layers: string[];
}

/** A link file found, by what it links. */
interface LinkFile {
  file: DistributionFile;
  /** What the path says it links: a digest, or for `current`, nothing. */
  digest: string;
}

/** A repository's link files as the listing found them. */
interface Found {
  revisions: LinkFile[];
  layers: LinkFile[];
  tags: Map<string, { current?: DistributionFile; index: LinkFile[] }>;
}

/**
 * Every repository: one whose path holds _manifests or _layers link files;
 * names may nest (their components never start with '_').
 * @throws CliError IO on a listing or link file that cannot be read.
 */
export async function scanRepositories(root: DistributionStorage, problems: ImportProblem[]): Promise<RepositoryScan[]> {
  const found = new Map<string, Found>();
  try {
    for await (const file of root.files('repositories')) classify(file, found);
  } catch (error) {
    throw unreadable(root.locate('repositories'), error);
  }
  const scans: RepositoryScan[] = [];
  for (const name of [...found.keys()].sort()) scans.push(await scanRepository(root, name, found.get(name)!, problems));
  return scans;
}

/** Files the layout gives no meaning (distribution's _uploads, anything else) are passed over. */
function classify(file: DistributionFile, found: Map<string, Found>): void {
  const parts = file.path.split('/');
  if (parts[parts.length - 1] !== 'link') return;
  const at = parts.findIndex((p, i) => i > 0 && p.startsWith('_'));
  if (at < 2) return;
  const name = parts.slice(1, at).join('/');
  const rest = parts.slice(at, -1);
  const repo = () => {
    let entry = found.get(name);
    if (entry === undefined) found.set(name, (entry = { revisions: [], layers: [], tags: new Map() }));
    return entry;
  };
  const tag = (t: string) => {
    const tags = repo().tags;
    let entry = tags.get(t);
    if (entry === undefined) tags.set(t, (entry = { index: [] }));
    return entry;
  };
  if (rest[0] === '_layers' && rest.length === 3) repo().layers.push({ file, digest: `${rest[1]}:${rest[2]}` });
  else if (rest[0] !== '_manifests') return;
  else if (rest[1] === 'revisions' && rest.length === 4) repo().revisions.push({ file, digest: `${rest[2]}:${rest[3]}` });
  else if (rest[1] === 'tags' && rest.length === 4 && rest[3] === 'current') tag(rest[2]).current = file;
  else if (rest[1] === 'tags' && rest.length === 6 && rest[3] === 'index') tag(rest[2]).index.push({ file, digest: `${rest[4]}:${rest[5]}` });
}

async function scanRepository(root: DistributionStorage, name: string, found: Found, problems: ImportProblem[]): Promise<RepositoryScan> {
  const tags: TagScan[] = [];
  for (const tag of [...found.tags.keys()].sort()) {
    const scanned = await scanTag(root, tag, found.tags.get(tag)!, name, problems);
    if (scanned) tags.push(scanned);
  }
  return {
    name,
    revisions: await linkedDigests(root, found.revisions, name, problems, 'revision'),
    tags,
    layers: await linkedDigests(root, found.layers, name, problems, 'layer'),
  };
}

/** The digests of link files, each checked against the link's content. */
async function linkedDigests(root: DistributionStorage, links: LinkFile[], repository: string, problems: ImportProblem[], what: string): Promise<string[]> {
  const digests: string[] = [];
  for (const { file, digest } of links) {
    const link = await readLink(root, file.path);
    if (link === undefined) continue; // Gone since the listing: deleted content.
    if (link !== digest || !isDigest(digest)) {
      problems.push({ repository, subject: digest, problem: `${what} link holds ${JSON.stringify(link.slice(0, 80))}` });
      continue;
    }
    digests.push(digest);
  }
  return digests.sort();
}

async function scanTag(root: DistributionStorage, tag: string, found: Found['tags'] extends Map<string, infer T> ? T : never, repository: string, problems: ImportProblem[]) {
  const current = found.current && (await readLink(root, found.current.path));
  // isDigest narrows a refused string to never: keep the text for the message.
  const held: string = current ?? '';
  if (current !== undefined && !isDigest(current)) {
    problems.push({ repository, subject: `tag ${tag}`, problem: `current link holds ${JSON.stringify(held.slice(0, 80))}` });
    return undefined;
  }
  // The index has no order of its own: the link files' times give it (a
  // re-tag rewrites the link), the digest breaks ties.
  const at = new Map(found.index.map((l) => [l.digest, l.file.modified.getTime()]));
  const history = (await linkedDigests(root, found.index, repository, problems, `tag ${tag} index`)).sort(
    (a, b) => at.get(a)! - at.get(b)! || (a < b ? -1 : 1),
  );
  return { name: tag, current, history } satisfies TagScan;
}

async function readLink(root: DistributionStorage, path: string): Promise<string | undefined> {
  try {
    return (await root.read(path))?.toString('utf8').trim();
  } catch (error) {
    throw unreadable(root.locate(path), error);
  }
}

/** The storage's failure to read `where`, in the CLI's words. */
export function unreadable(where: string, error: unknown): CliError {
  const code = (error as NodeJS.ErrnoException).code ?? (error as Error).name ?? String(error);
  return new CliError(Exit.IO, `cannot read ${where}: ${code}`, 'check the permissions of the storage tree');
}
