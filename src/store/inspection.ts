// The rules of a check of the database, the same on every backend: what is
// wrong with a stored manifest, and what the reference checks' rows say.

import { digestOf, isDigest, type DigestAlgorithm } from './grammar.js';
import type { CheckProblem, DatabaseCheck } from './types.js';

/** A stored manifest as a check reads it. */
export interface CheckedManifestRow {
  repository: string;
  digest: string;
  size: number;
  payload: Buffer | null;
}

/** A check that has found nothing yet. */
export function emptyCheck(): DatabaseCheck {
  return {
    checked: { integrity: false, foreignKeys: false, manifests: 0, tags: 0, blobReferences: 0 },
    problems: [],
    complete: true,
  };
}

/** What is wrong with one stored manifest: missing bytes, a digest or size they do not match. */
export function manifestProblems(row: CheckedManifestRow): CheckProblem[] {
  const subject = `${row.repository}@${row.digest}`;
  if (row.payload === null) return [{ kind: 'manifest-payload', subject, detail: 'the manifest has no stored bytes' }];
  const problems: CheckProblem[] = [];
  if (!isDigest(row.digest)) {
    problems.push({ kind: 'manifest-digest', subject, detail: 'malformed digest' });
  } else if (digestOf(row.payload, row.digest.slice(0, row.digest.indexOf(':')) as DigestAlgorithm) !== row.digest) {
    problems.push({ kind: 'manifest-digest', subject, detail: 'the stored bytes do not hash to the digest' });
  }
  if (row.size !== row.payload.byteLength) {
    problems.push({ kind: 'manifest-size', subject, detail: `recorded size ${row.size}, stored ${row.payload.byteLength} bytes` });
  }
  return problems;
}

/** What the reference checks read: each a statement's rows, and the counts of what was checked. */
export interface ReferenceRows {
  badTags: { repository: string; tag: string; manifestId: number | null }[];
  tags: number;
  unlinkedBlobs: { repository: string; manifest: string; blob: string }[];
  blobReferences: number;
  missingChildren: { repository: string; parent: string; child: string }[];
}

/** Records what the reference checks found, on either backend. */
export function referenceProblems({ checked, problems }: DatabaseCheck, rows: ReferenceRows): void {
  for (const row of rows.badTags) {
    const detail = row.manifestId === null ? 'points at a manifest that is not there' : 'points at a manifest of another repository';
    problems.push({ kind: 'tag', subject: `${row.repository}:${row.tag}`, detail });
  }
  checked.tags = rows.tags;
  for (const row of rows.unlinkedBlobs) {
    problems.push({
      kind: 'blob-link',
      subject: `${row.repository}@${row.manifest}`,
      detail: `references ${row.blob}, which is not linked in ${row.repository}`,
    });
  }
  checked.blobReferences = rows.blobReferences;
  for (const row of rows.missingChildren) {
    problems.push({ kind: 'child', subject: `${row.repository}@${row.parent}`, detail: `lists ${row.child}, which is not in ${row.repository}` });
  }
}
