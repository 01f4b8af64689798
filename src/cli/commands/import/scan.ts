// Reading a distribution registry's filesystem storage: which repositories
// there are, and in each the revisions, tags (with their history) and layers
// that link files name. Read-only.
//
// The layout (distribution's registry/storage/paths.go):
//   <root>/docker/registry/v2/repositories/<name>/
//     _manifests/revisions/<alg>/<hex>/link          a manifest of the repository
//     _manifests/tags/<tag>/current/link             the digest the tag points at
//     _manifests/tags/<tag>/index/<alg>/<hex>/link   every digest the tag has had
//     _layers/<alg>/<hex>/link                       a blob linked in the repository
//   <root>/docker/registry/v2/blobs/<alg>/<2 hex>/<hex>/data   the bytes, manifests too

import { existsSync, readdirSync, readFileSync, statSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { isDigest } from '../../../store/index.js';
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
  dir: string;
  revisions: string[];
  tags: TagScan[];
  layers: string[];
}

/** `<root>/docker/registry/v2`, or `<root>` itself when it is that directory. @throws CliError USAGE. */
export function storageRoot(root: string): string {
  for (const candidate of [join(root, 'docker', 'registry', 'v2'), root]) {
    if (existsSync(join(candidate, 'repositories')) && existsSync(join(candidate, 'blobs'))) return candidate;
  }
  throw new CliError(
    Exit.USAGE,
    `no distribution storage at ${root} (no docker/registry/v2/repositories and blobs under it)`,
    "pass the registry's storage.filesystem.rootdirectory",
  );
}

/** Where the storage keeps the bytes of `digest`. */
export function blobData(v2: string, digest: string): string {
  const [algorithm, hex] = digest.split(':');
  return join(v2, 'blobs', algorithm, hex.slice(0, 2), hex, 'data');
}

function list(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new CliError(Exit.IO, `cannot read ${dir}: ${(error as NodeJS.ErrnoException).code}`, 'check the permissions of the storage tree');
  }
}

/** Digests under `<dir>/<alg>/<hex>/link`, checked against the link's content. */
function linkedDigests(dir: string, repository: string, problems: ImportProblem[], what: string): string[] {
  const digests: string[] = [];
  for (const algorithm of list(dir)) {
    if (!algorithm.isDirectory()) continue;
    for (const hex of list(join(dir, algorithm.name))) {
      const digest = `${algorithm.name}:${hex.name}`;
      const link = readLink(join(dir, algorithm.name, hex.name, 'link'));
      if (link === undefined) continue; // A directory without a link: deleted content.
      if (link !== digest || !isDigest(digest)) {
        problems.push({ repository, subject: digest, problem: `${what} link holds ${JSON.stringify(link.slice(0, 80))}` });
        continue;
      }
      digests.push(digest);
    }
  }
  return digests.sort();
}

function readLink(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CliError(Exit.IO, `cannot read ${file}: ${(error as NodeJS.ErrnoException).code}`, 'check the permissions of the storage tree');
  }
}

function mtime(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * Every repository: a directory with _manifests or _layers; names may nest.
 * @throws CliError IO on a directory or link file that cannot be read.
 */
export function scanRepositories(v2: string, problems: ImportProblem[]): RepositoryScan[] {
  const found: RepositoryScan[] = [];
  const walk = (dir: string, name: string) => {
    const entries = list(dir);
    if (name !== '' && entries.some((e) => e.isDirectory() && (e.name === '_manifests' || e.name === '_layers'))) {
      found.push(scanRepository(dir, name, problems));
    }
    for (const entry of entries) {
      if (entry.isDirectory() && !entry.name.startsWith('_')) walk(join(dir, entry.name), name === '' ? entry.name : `${name}/${entry.name}`);
    }
  };
  walk(join(v2, 'repositories'), '');
  return found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function scanRepository(dir: string, name: string, problems: ImportProblem[]): RepositoryScan {
  const tags: TagScan[] = [];
  const tagsDir = join(dir, '_manifests', 'tags');
  for (const entry of list(tagsDir)) {
    if (!entry.isDirectory()) continue;
    const tag = scanTag(join(tagsDir, entry.name), entry.name, name, problems);
    if (tag) tags.push(tag);
  }
  return {
    name,
    dir,
    revisions: linkedDigests(join(dir, '_manifests', 'revisions'), name, problems, 'revision'),
    tags: tags.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    layers: linkedDigests(join(dir, '_layers'), name, problems, 'layer'),
  };
}

function scanTag(tagDir: string, tag: string, repository: string, problems: ImportProblem[]): TagScan | undefined {
  const current = readLink(join(tagDir, 'current', 'link'));
  // isDigest narrows a refused string to never: keep the text for the message.
  const held: string = current ?? '';
  if (current !== undefined && !isDigest(current)) {
    problems.push({ repository, subject: `tag ${tag}`, problem: `current link holds ${JSON.stringify(held.slice(0, 80))}` });
    return undefined;
  }
  const indexDir = join(tagDir, 'index');
  // The index has no order of its own: the link files' times give it (a
  // re-tag rewrites the link), the digest breaks ties.
  const history = linkedDigests(indexDir, repository, problems, `tag ${tag} index`)
    .map((digest) => {
      const [algorithm, hex] = digest.split(':');
      return { digest, at: mtime(join(indexDir, algorithm, hex, 'link')) };
    })
    .sort((a, b) => a.at - b.at || (a.digest < b.digest ? -1 : 1))
    .map((h) => h.digest);
  return { name: tag, current, history };
}
