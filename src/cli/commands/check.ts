// `regmeta check`: is the database sound and does it agree with itself and
// with the blob files? Read-only SQL on its own connection, so that checking
// never changes what it checks.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import {
  DATA_HELP,
  DATA_OPTION,
  DEFAULT_GRACE,
  Exit,
  GRACE_OPTION,
  JSON_OPTION,
  dataDir,
  formatBytes,
  graceCutoff,
  withReadOnly,
  parse,
  println,
  printJson,
  usageError,
  type Command,
} from '../common.js';
import { sqlitePrimaryCode } from '../../store/errors.js';
import { digestOf, isDigest, type DigestAlgorithm } from '../../store/grammar.js';
import { DirectoryBlobStore, type BlobStore } from '../../blobstore/index.js';
import { Progress } from '../progress.js';

const options = { ...DATA_OPTION, ...JSON_OPTION, ...GRACE_OPTION, files: { type: 'boolean' }, 'no-files': { type: 'boolean' } } as const;

/** One thing found wrong, or (in `pending`) not yet settled. */
export interface Problem {
  kind: string;
  subject: string;
  detail: string;
}

// A tag must point at a manifest of its own repository.
const BAD_TAGS = `
  SELECT r.name AS repository, t.name AS tag, m.id AS manifestId, m.repository_id AS manifestRepository
  FROM tag t
  JOIN repository r ON r.id = t.repository_id
  LEFT JOIN manifest m ON m.id = t.manifest_id
  WHERE m.id IS NULL OR m.repository_id <> t.repository_id`;

// The registry accepts a manifest only when its config and layers are linked
// in the repository; a reference without a link is an inconsistency.
const UNLINKED_BLOBS = `
  SELECT r.name AS repository, m.digest AS manifest, mb.digest AS blob
  FROM manifest_blob mb
  JOIN manifest m ON m.id = mb.manifest_id
  JOIN repository r ON r.id = m.repository_id
  WHERE NOT EXISTS (
    SELECT 1 FROM blob_link l WHERE l.repository_id = m.repository_id AND l.digest = mb.digest)
  ORDER BY r.name, m.digest, mb.digest`;

// Likewise an index's children must be in its repository.
const MISSING_CHILDREN = `
  SELECT r.name AS repository, p.digest AS parent, c.digest AS child
  FROM manifest_child c
  JOIN manifest p ON p.id = c.parent_id
  JOIN repository r ON r.id = p.repository_id
  WHERE NOT EXISTS (SELECT 1 FROM manifest m WHERE m.repository_id = c.repository_id AND m.digest = c.digest)
  ORDER BY r.name, p.digest, c.digest`;

// LEFT JOIN: a manifest row without its bytes is a problem to report.
const MANIFESTS = `
  SELECT r.name AS repository, m.digest, m.size, p.payload
  FROM manifest m
  JOIN repository r ON r.id = m.repository_id
  LEFT JOIN manifest_payload p ON p.manifest_id = m.id
  ORDER BY m.id`;


export const check: Command = {
  name: 'check',
  usage: `usage: regmeta check [--files | --no-files] [--grace <duration>] [--data <dir>] [--json]

Runs, read-only:
  - SQLite's integrity_check and foreign_key_check;
  - every stored manifest re-hashed against its digest and size;
  - every tag pointing at a manifest of its own repository;
  - every blob a manifest references linked in its repository, and every
    child of an index present there;
  - every blob file present under <data>/blobs/<algorithm>/<2 hex>/<hex>
    with the recorded size and hash, and no file there that no blob row
    names (when <data>/blobs exists, or --files).
Lists each problem on a line and exits 1 when there is any, damage that
stops SQLite reading included. A file no row names that is younger than the
grace period is listed as pending, not as a problem: a push may be in flight,
or it died and gc removes the file once the grace has passed. Exits 3 when
the database cannot be opened (missing, not a regmeta store, header damaged)
or stays busy.

options:
  --files        check blob files even if <data>/blobs is missing
  --no-files     do not check blob files
  --grace <d>    files no row names that are younger are pending (default
                 ${DEFAULT_GRACE}, as gc; e.g. 30m, 7d, 0)
${DATA_HELP}
  --json         print {ok, checked, problems, pending} as JSON

example:
  regmeta check --data /srv/registry || echo "restore from backup"
`,
  async run(argv) {
    const args = parse(argv, check, options, { min: 0, max: 0 });
    if (!args) return Exit.OK;
    if (args.values.files && args.values['no-files']) throw usageError('check', '--files and --no-files exclude each other');
    const olderThan = graceCutoff(args.values, 'check');
    const dir = dataDir(args.values);
    const problems: Problem[] = [];
    const pending: Problem[] = [];
    const checked = { integrity: false, foreignKeys: false, manifests: 0, tags: 0, blobReferences: 0, blobFiles: 0, blobBytes: 0 };
    await withReadOnly(dir, async (db) => {
      try {
        inspectDatabase(db, problems, checked);
        const checkFiles = args.values['no-files'] ? false : args.values.files || existsSync(join(dir, 'blobs'));
        if (checkFiles) await inspectBlobFiles(db, dir, { problems, pending, olderThan }, checked);
      } catch (error) {
        // Damage that stops SQLite reading is what check is for: a problem
        // found (exit 1), listed with the rest. Anything else (busy, i/o)
        // says nothing about the data and ends as a database error (exit 3).
        if (sqlitePrimaryCode(error) !== 'SQLITE_CORRUPT') throw error;
        problems.push({ kind: 'integrity', subject: 'database', detail: `SQLite stopped reading: ${(error as Error).message}` });
      }
    });
    if (args.values.json) printJson({ ok: problems.length === 0, checked, problems, pending });
    else {
      for (const p of [...problems, ...pending]) println(`${p.kind}  ${p.subject}  ${p.detail}`);
      const files = checked.blobFiles > 0 ? `, ${checked.blobFiles} blob files (${formatBytes(checked.blobBytes)})` : '';
      const waiting = pending.length > 0 ? `, ${pending.length} pending` : '';
      process.stderr.write(
        `checked ${checked.manifests} manifests, ${checked.tags} tags, ${checked.blobReferences} blob references${files}: ` +
          `${problems.length === 0 ? 'ok' : `${problems.length} problem${problems.length === 1 ? '' : 's'}`}${waiting}\n`,
      );
    }
    return problems.length === 0 ? Exit.OK : Exit.PROBLEMS;
  },
};

function inspectDatabase(db: Database.Database, problems: Problem[], checked: Record<string, number | boolean>): void {
  const integrity = db.pragma('integrity_check') as { integrity_check: string }[];
  for (const row of integrity) {
    if (row.integrity_check !== 'ok') problems.push({ kind: 'integrity', subject: 'database', detail: row.integrity_check });
  }
  checked.integrity = true;
  const foreign = db.pragma('foreign_key_check') as { table: string; rowid: number | null; parent: string; fkid: number }[];
  for (const row of foreign) {
    problems.push({ kind: 'foreign-key', subject: `${row.table} row ${row.rowid ?? '?'}`, detail: `refers to a missing ${row.parent}` });
  }
  checked.foreignKeys = true;

  const total = db.prepare('SELECT count(*) FROM manifest').pluck().get() as number;
  const progress = new Progress('manifests', { total });
  // Each manifest on its own: a damaged row must not stop the rest.
  for (const row of db.prepare(MANIFESTS).iterate() as Iterable<{ repository: string; digest: string; size: number; payload: Buffer | null }>) {
    const subject = `${row.repository}@${row.digest}`;
    checked.manifests = (checked.manifests as number) + 1;
    progress.tick();
    if (row.payload === null) {
      problems.push({ kind: 'manifest-payload', subject, detail: 'the manifest has no stored bytes' });
      continue;
    }
    if (!isDigest(row.digest)) {
      problems.push({ kind: 'manifest-digest', subject, detail: 'malformed digest' });
    } else if (digestOf(row.payload, row.digest.slice(0, row.digest.indexOf(':')) as DigestAlgorithm) !== row.digest) {
      problems.push({ kind: 'manifest-digest', subject, detail: 'the stored bytes do not hash to the digest' });
    }
    if (row.size !== row.payload.byteLength) {
      problems.push({ kind: 'manifest-size', subject, detail: `recorded size ${row.size}, stored ${row.payload.byteLength} bytes` });
    }
  }
  progress.finish();

  for (const row of db.prepare(BAD_TAGS).all() as { repository: string; tag: string; manifestId: number | null }[]) {
    const detail = row.manifestId === null ? 'points at a manifest that is not there' : 'points at a manifest of another repository';
    problems.push({ kind: 'tag', subject: `${row.repository}:${row.tag}`, detail });
  }
  checked.tags = db.prepare('SELECT count(*) FROM tag').pluck().get() as number;
  for (const row of db.prepare(UNLINKED_BLOBS).all() as { repository: string; manifest: string; blob: string }[]) {
    problems.push({ kind: 'blob-link', subject: `${row.repository}@${row.manifest}`, detail: `references ${row.blob}, which is not linked in ${row.repository}` });
  }
  checked.blobReferences = db.prepare('SELECT count(*) FROM manifest_blob').pluck().get() as number;
  for (const row of db.prepare(MISSING_CHILDREN).all() as { repository: string; parent: string; child: string }[]) {
    problems.push({ kind: 'child', subject: `${row.repository}@${row.parent}`, detail: `lists ${row.child}, which is not in ${row.repository}` });
  }
}

/** Where inspectBlobFiles reports: problems, and files not yet settled (younger than `olderThan`). */
interface Findings {
  problems: Problem[];
  pending: Problem[];
  olderThan: Date;
}

async function inspectBlobFiles(db: Database.Database, dir: string, findings: Findings, checked: Record<string, number | boolean>): Promise<void> {
  const { problems } = findings;
  const store = new DirectoryBlobStore(dir);
  const blobs = db.prepare('SELECT digest, size FROM blob ORDER BY digest').all() as { digest: string; size: number }[];
  const totalBytes = blobs.reduce((sum, b) => sum + b.size, 0);
  const progress = new Progress('blob files', { total: totalBytes, unit: 'B' });
  let done = 0;
  for (const blob of blobs) {
    let file: string;
    try {
      file = store.location(blob.digest);
    } catch {
      problems.push({ kind: 'blob-digest', subject: JSON.stringify(blob.digest), detail: 'malformed digest in the blob table' });
      continue;
    }
    let size: number | undefined;
    try {
      size = (await store.stat(blob.digest))?.size;
    } catch {
      // Unreadable is as good as missing: the registry cannot serve it either.
    }
    checked.blobFiles = (checked.blobFiles as number) + 1;
    if (size === undefined) {
      problems.push({ kind: 'blob-file', subject: blob.digest, detail: `missing: ${file}` });
      continue;
    }
    if (size !== blob.size) {
      problems.push({ kind: 'blob-file', subject: blob.digest, detail: `${file} has ${size} bytes, recorded ${blob.size}` });
      continue;
    }
    const [algorithm, hex] = blob.digest.split(':');
    const hash = createHash(algorithm);
    for await (const chunk of store.read(blob.digest)) {
      hash.update(chunk as Buffer);
      progress.update((done += (chunk as Buffer).byteLength));
    }
    if (hash.digest('hex') !== hex) problems.push({ kind: 'blob-file', subject: blob.digest, detail: `${file} does not hash to its digest` });
    checked.blobBytes = (checked.blobBytes as number) + size;
  }
  progress.update(totalBytes);
  progress.finish();
  inspectStrayFiles(store, new Set(blobs.map((b) => b.digest)), findings);
}

/**
 * Files no row names: a push between placing its file and committing its
 * row (pending), or what a crash or an interrupted gc left (problems, once
 * past the grace period; gc removes them by the same rule).
 */
function inspectStrayFiles(store: BlobStore, known: Set<string>, { problems, pending, olderThan }: Findings): void {
  // A file gone since the listing (gc took it, a push renamed it into place) is not listed.
  for (const { location: file, digest, modified } of store.list()) {
    if (digest !== undefined && known.has(digest)) continue;
    const old = modified.getTime() < olderThan.getTime();
    const subject = digest ?? file;
    if (old) problems.push({ kind: 'blob-orphan', subject, detail: `${file} belongs to no blob of the store (gc removes it)` });
    else pending.push({ kind: 'blob-pending', subject, detail: `${file} belongs to no blob of the store yet, within the grace period` });
  }
}
