// `regmeta import <root>`: a CNCF distribution registry's filesystem storage
// into the store. Everything goes through the store's public API; every write
// checks first whether it is already done, so a second run, or a run after a
// kill, ends in the same state as one clean run.
//
// The layout (distribution's registry/storage/paths.go):
//   <root>/docker/registry/v2/repositories/<name>/
//     _manifests/revisions/<alg>/<hex>/link          a manifest of the repository
//     _manifests/tags/<tag>/current/link             the digest the tag points at
//     _manifests/tags/<tag>/index/<alg>/<hex>/link   every digest the tag has had
//     _layers/<alg>/<hex>/link                       a blob linked in the repository
//   <root>/docker/registry/v2/blobs/<alg>/<2 hex>/<hex>/data   the bytes, manifests too

import { createHash } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  type Dirent,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { openStore, isDigest, MediaType, NotFoundError, StoreError, type MetadataStore } from 'regmeta';
import {
  CliError,
  DATA_HELP,
  DATA_OPTION,
  Exit,
  JSON_OPTION,
  checkDatabaseFile,
  databaseFile,
  dataDir,
  withReadOnly,
  parse,
  println,
  printJson,
  usageError,
  type Command,
} from '../common.js';
import { Progress } from '../progress.js';
import { blobPath } from '../../server/blobs.js';

const options = {
  ...DATA_OPTION,
  ...JSON_OPTION,
  'dry-run': { type: 'boolean', short: 'n' },
  actor: { type: 'string' },
  blobs: { type: 'string' },
} as const;

/** What to do with the bytes of linked blobs: leave them, hard-link them, or copy them into <data>/blobs. */
type BlobMode = 'none' | 'link' | 'copy';

interface Target {
  /** The data directory blob files go to. */
  dir: string;
  blobs: BlobMode;
  /** Count the files that would be placed, place none. */
  dryRun: boolean;
}

/** One thing the import could not take in, and why. */
export interface ImportProblem {
  repository: string;
  subject: string;
  problem: string;
}

/** The summary an import prints. */
export interface ImportSummary {
  root: string;
  dryRun: boolean;
  repositories: number;
  manifests: { imported: number; present: number };
  tags: { set: number; unchanged: number };
  blobs: { linked: number; present: number; filesPlaced: number };
  problems: ImportProblem[];
  seconds: number;
}

interface Revision {
  digest: string;
  payload: Buffer;
  mediaType: string;
  children: string[];
}

interface TagScan {
  name: string;
  current: string | undefined;
  /** The tag's index, oldest first. */
  history: string[];
}

interface RepositoryScan {
  name: string;
  dir: string;
  revisions: string[];
  tags: TagScan[];
  layers: string[];
}

export const importCommand: Command = {
  name: 'import',
  usage: `usage: regmeta import <root> [--blobs none|link|copy] [--dry-run] [--actor <name>] [--data <dir>] [--json]

Imports the repositories, manifests, tags (with their history) and blob links
of a CNCF distribution (docker-registry) filesystem storage, whose
rootdirectory is <root> (the directory holding docker/registry/v2). Creates
the database if it is missing.

Every manifest's bytes are read from the blob store and verified against their
digest; a mismatch, a missing file or an unsupported manifest (schema 1) is
reported as a problem and skipped. Blobs are linked first (with their sizes
from the blob files), then manifests (an index after its children), then tags.
Idempotent and resumable: running it again, also after an interruption, ends
in the same state.

options:
  --blobs <mode>   the bytes of linked blobs: none (default) leaves them
                   where they are; link hard-links them into <data>/blobs
                   (copying across filesystems); copy copies them. The
                   server serves blobs from there; 'regmeta check' hashes them
  --dry-run, -n    import into a scratch copy of the database and report
                   what would change; the database is not touched
  --actor <name>   the actor of the import's events (default regmeta-import)
${DATA_HELP}
  --json           print the summary as JSON

exit: 0 when all was imported, 1 when problems were found (the rest is in).

example:
  regmeta import /var/lib/docker-registry --data /srv/regmeta
`,
  async run(argv) {
    const args = parse(argv, importCommand, options, { min: 1, max: 1 });
    if (!args) return Exit.OK;
    const v2 = storageRoot(resolve(args.positionals[0]));
    const dir = dataDir(args.values);
    const actor = args.values.actor ?? 'regmeta-import';
    const blobs = (args.values.blobs ?? 'none') as BlobMode;
    if (!['none', 'link', 'copy'].includes(blobs)) throw usageError('import', '--blobs must be none, link or copy');
    const dryRunning = args.values['dry-run'] === true;
    const target: Target = { dir, blobs, dryRun: dryRunning };
    const summary = dryRunning ? await dryRun(v2, target, actor) : importInto(v2, openTarget(dir), actor, target);
    summary.root = resolve(args.positionals[0]);
    if (args.values.json) printJson(summary);
    else {
      for (const p of summary.problems) process.stderr.write(`regmeta import: ${p.repository} ${p.subject}: ${p.problem}\n`);
      const verb = summary.dryRun ? 'would import' : 'imported';
      println(
        `${verb} ${summary.repositories} repositories: ${summary.manifests.imported} manifests (${summary.manifests.present} already there), ` +
          `${summary.tags.set} tags set (${summary.tags.unchanged} unchanged), ${summary.blobs.linked} blobs linked ` +
          `(${summary.blobs.present} already there, ${summary.blobs.filesPlaced} files placed), ${summary.problems.length} problems, ` +
          `in ${summary.seconds.toFixed(1)}s`,
      );
    }
    return summary.problems.length === 0 ? Exit.OK : Exit.PROBLEMS;
  },
};

/** `<root>/docker/registry/v2`, or `<root>` itself when it is that directory. @throws CliError USAGE. */
function storageRoot(root: string): string {
  for (const candidate of [join(root, 'docker', 'registry', 'v2'), root]) {
    if (existsSync(join(candidate, 'repositories')) && existsSync(join(candidate, 'blobs'))) return candidate;
  }
  throw new CliError(
    Exit.USAGE,
    `no distribution storage at ${root} (no docker/registry/v2/repositories and blobs under it)`,
    "pass the registry's storage.filesystem.rootdirectory",
  );
}

/** The store to import into: created when missing, refused when foreign. */
function openTarget(dir: string): MetadataStore {
  const file = databaseFile(dir);
  if (existsSync(file)) checkDatabaseFile(file, { allowEmpty: true });
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw new CliError(Exit.IO, `cannot create the data directory ${dir}: ${(error as NodeJS.ErrnoException).code}`, 'pass --data <dir>');
  }
  // 'normal': no fsync per commit. A power loss may take back the last
  // manifests, and running the import again puts them back.
  return openStore(file, { durability: 'normal' });
}

/** The import on a scratch copy of the database (or an empty one): exact, and changes nothing. */
async function dryRun(v2: string, target: Target, actor: string): Promise<ImportSummary> {
  const dir = target.dir;
  const scratch = mkdtempSync(join(tmpdir(), 'regmeta-import-'));
  try {
    const copy = join(scratch, 'metadata.db');
    if (existsSync(databaseFile(dir))) {
      await withReadOnly(dir, (source) => source.backup(copy));
    }
    return { ...importInto(v2, openStore(copy, { durability: 'normal' }), actor, target), dryRun: true };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
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

/** Every repository: a directory with _manifests or _layers; names may nest. */
function scanRepositories(v2: string, problems: ImportProblem[]): RepositoryScan[] {
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
    const tagDir = join(tagsDir, entry.name);
    const current = readLink(join(tagDir, 'current', 'link'));
    // isDigest narrows a refused string to never: keep the text for the message.
    const held: string = current ?? '';
    if (current !== undefined && !isDigest(current)) {
      problems.push({ repository: name, subject: `tag ${entry.name}`, problem: `current link holds ${JSON.stringify(held.slice(0, 80))}` });
      continue;
    }
    const indexDir = join(tagDir, 'index');
    // The index has no order of its own: the link files' times give it (a
    // re-tag rewrites the link), the digest breaks ties.
    const history = linkedDigests(indexDir, name, problems, `tag ${entry.name} index`)
      .map((digest) => {
        const [algorithm, hex] = digest.split(':');
        return { digest, at: mtime(join(indexDir, algorithm, hex, 'link')) };
      })
      .sort((a, b) => a.at - b.at || (a.digest < b.digest ? -1 : 1))
      .map((h) => h.digest);
    tags.push({ name: entry.name, current, history });
  }
  return {
    name,
    dir,
    revisions: linkedDigests(join(dir, '_manifests', 'revisions'), name, problems, 'revision'),
    tags: tags.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    layers: linkedDigests(join(dir, '_layers'), name, problems, 'layer'),
  };
}

function blobData(v2: string, digest: string): string {
  const [algorithm, hex] = digest.split(':');
  return join(v2, 'blobs', algorithm, hex.slice(0, 2), hex, 'data');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The media type of a manifest payload: its own mediaType field, else what its
 * structure says (an OCI index has manifests, an OCI image config and layers).
 * @returns the media type, or a problem.
 */
export function detectMediaType(json: unknown): { mediaType: string } | { problem: string } {
  if (!isObject(json)) return { problem: 'the manifest is not a JSON object' };
  if (json.schemaVersion === 1) return { problem: 'schema 1 manifests are not supported' };
  if (typeof json.mediaType === 'string') return { mediaType: json.mediaType };
  if (Array.isArray(json.manifests)) return { mediaType: MediaType.OciIndex };
  if (isObject(json.config) && Array.isArray(json.layers)) return { mediaType: MediaType.OciManifest };
  return { problem: 'neither an index nor an image manifest' };
}

/** Reads and verifies a manifest's bytes from the blob store; children are those of an index. */
function readRevision(v2: string, repository: string, digest: string, problems: ImportProblem[]): Revision | undefined {
  const file = blobData(v2, digest);
  let payload: Buffer;
  try {
    payload = readFileSync(file);
  } catch (error) {
    problems.push({ repository, subject: digest, problem: `manifest bytes unreadable: ${(error as NodeJS.ErrnoException).code} ${file}` });
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

/**
 * Stages the blob file `source` next to `target` (hard link or copy, fsynced,
 * under a temporary name) unless `target` is there already; the slow part,
 * done before the store's write lock is taken.
 * @returns the rename that puts it in place (run inside linkBlob) and the
 * clean-up of what is left staged, or undefined when there is nothing to place.
 * @throws the filesystem's error.
 */
function stageBlob(source: string, target: string, options: Target): { place: () => void; discard: () => void } | undefined {
  if (existsSync(target)) return undefined;
  // A dry run counts the file it would place, and places nothing.
  if (options.dryRun) return { place: () => {}, discard: () => {} };
  mkdirSync(dirname(target), { recursive: true });
  const temporary = `${target}.import-${process.pid}`;
  rmSync(temporary, { force: true });
  let copied = options.blobs === 'copy';
  if (!copied) {
    try {
      linkSync(source, temporary);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK') throw error;
      copied = true; // another filesystem, or links not allowed there
    }
  }
  if (copied) {
    copyFileSync(source, temporary);
    const fd = openSync(temporary, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
  return { place: () => renameSync(temporary, target), discard: () => rmSync(temporary, { force: true }) };
}

/** Children before parents: each manifest after everything it lists that is in `revisions`. */
export function childrenFirst<T extends { digest: string; children: string[] }>(revisions: T[]): T[] {
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

function problemOf(error: unknown): string {
  if (error instanceof StoreError && !error.code.startsWith('DATABASE_') && error.code !== 'STORE_CLOSED') return `${error.code}: ${error.message}`;
  throw error;
}

/**
 * Imports the storage under `v2` into `store` (and closes it).
 * @throws StoreError on database failures; CliError IO on an unreadable tree.
 */
export function importInto(v2: string, store: MetadataStore, actor: string, target: Target): ImportSummary {
  const started = Date.now();
  const problems: ImportProblem[] = [];
  const summary: ImportSummary = {
    root: v2,
    dryRun: false,
    repositories: 0,
    manifests: { imported: 0, present: 0 },
    tags: { set: 0, unchanged: 0 },
    blobs: { linked: 0, present: 0, filesPlaced: 0 },
    problems,
    seconds: 0,
  };
  const ctx = { actor };
  try {
    const repositories = scanRepositories(v2, problems);
    const bar = new Progress('import', { total: repositories.reduce((n, r) => n + r.layers.length + r.revisions.length + r.tags.length, 0) });
    for (const repo of repositories) {
      summary.repositories++;
      importRepository(v2, store, repo, ctx, summary, bar, target);
    }
    bar.finish();
  } finally {
    store.close();
  }
  summary.seconds = (Date.now() - started) / 1000;
  return summary;
}

function importRepository(
  v2: string,
  store: MetadataStore,
  repo: RepositoryScan,
  ctx: { actor: string },
  summary: ImportSummary,
  bar: Progress,
  target: Target,
): void {
  const { name } = repo;
  const problems = summary.problems;
  // Blobs first: a registry accepts a manifest only once its blobs are linked.
  for (const digest of repo.layers) {
    bar.tick();
    let linked = false;
    try {
      store.statBlob(name, digest);
      linked = true;
    } catch (error) {
      if (!(error instanceof NotFoundError)) problemOf(error);
    }
    const source = blobData(v2, digest);
    let size: number;
    try {
      size = statSync(source).size;
    } catch (error) {
      if (linked) summary.blobs.present++;
      else problems.push({ repository: name, subject: digest, problem: `layer linked but its blob data is missing (${(error as NodeJS.ErrnoException).code})` });
      continue;
    }
    // The file is staged first, then renamed into place inside linkBlob's
    // transaction, under the write lock that gc's file removal also takes:
    // whoever finds the row finds the bytes, and gc cannot remove them
    // between the placing and the link. Linking an already linked blob again
    // refreshes its grace period.
    let staged: ReturnType<typeof stageBlob>;
    try {
      staged = target.blobs === 'none' ? undefined : stageBlob(source, blobPath(target.dir, digest), target);
    } catch (error) {
      problems.push({ repository: name, subject: digest, problem: `cannot place the blob file: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` });
      continue;
    }
    try {
      store.linkBlob(name, { digest, size }, ctx, { place: staged?.place });
      if (linked) summary.blobs.present++;
      else summary.blobs.linked++;
      if (staged) summary.blobs.filesPlaced++;
    } catch (error) {
      const problem =
        error instanceof StoreError
          ? problemOf(error)
          : `cannot place the blob file: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
      problems.push({ repository: name, subject: digest, problem });
    } finally {
      staged?.discard();
    }
  }

  // Manifests already in the store were verified when they went in: neither
  // read nor hashed again, which keeps a resumed import quick. Images go in
  // as they are read; indexes wait (in memory, and they are few) until every
  // image is in, then go in children first.
  const available = new Set<string>();
  const indexes: Revision[] = [];
  const put = (revision: Revision) => {
    try {
      store.putManifest(name, revision.digest, { mediaType: revision.mediaType, payload: revision.payload }, ctx);
      summary.manifests.imported++;
      available.add(revision.digest);
    } catch (error) {
      problems.push({ repository: name, subject: revision.digest, problem: problemOf(error) });
    }
  };
  for (const digest of repo.revisions) {
    try {
      store.statManifest(name, digest);
      summary.manifests.present++;
      available.add(digest);
      bar.tick();
      continue;
    } catch (error) {
      if (!(error instanceof NotFoundError)) problemOf(error);
    }
    const revision = readRevision(v2, name, digest, problems);
    if (revision === undefined || revision.children.length === 0) {
      bar.tick();
      if (revision) put(revision);
    } else indexes.push(revision);
  }
  for (const revision of childrenFirst(indexes)) {
    bar.tick();
    put(revision);
  }

  for (const tag of repo.tags) {
    bar.tick();
    if (tag.current === undefined) continue; // A tag directory without current: a deleted tag.
    if (!available.has(tag.current)) {
      problems.push({ repository: name, subject: `tag ${tag.name}`, problem: `points at ${tag.current}, which was not imported` });
      continue;
    }
    try {
      if (setTag(store, name, tag, available, ctx)) summary.tags.set++;
      else summary.tags.unchanged++;
    } catch (error) {
      problems.push({ repository: name, subject: `tag ${tag.name}`, problem: problemOf(error) });
    }
  }
}

/**
 * Replays the tag's index, then its current target, so that the store's tag
 * history matches distribution's. A replay cut short by a kill is continued
 * where the store's history shows it stopped; a tag that has moved on since
 * is just set to the current target.
 * @returns whether anything was written.
 */
function setTag(store: MetadataStore, repo: string, tag: TagScan, available: Set<string>, ctx: { actor: string }): boolean {
  const current = tag.current!;
  const wanted = [...tag.history.filter((d) => d !== current && available.has(d)), current];
  let existing: string | undefined;
  try {
    existing = store.getTag(repo, tag.name).digest;
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
  }
  const done = store
    .tagHistory(repo, tag.name)
    .map((h) => h.digest)
    .reverse();
  const isPrefix = done.length <= wanted.length && done.every((d, i) => d === wanted[i]);
  let wrote = false;
  if (isPrefix && existing === (done.length === 0 ? undefined : done[done.length - 1])) {
    for (const digest of wanted.slice(done.length)) {
      store.putTag(repo, tag.name, { digest }, ctx);
      existing = digest;
      wrote = true;
    }
  }
  // A tag deleted or moved in the store since an earlier import is just set.
  if (existing !== current) {
    store.putTag(repo, tag.name, { digest: current }, ctx);
    wrote = true;
  }
  return wrote;
}
