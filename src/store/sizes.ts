// Storage sizes as both backends read them from the rows their schema's
// triggers keep: what usage() returns, with the quotas of the store's
// policy, and what check() reports when the kept numbers and a count of the
// links disagree.

import type { CheckProblem, NamespaceUsage, RepositoryUsage, Usage } from './types.js';

/** A count as a backend returns it: PostgreSQL's bigint arrives as a string. */
type Count = number | string;

/** The kept rows of a usage() read. */
export interface KeptUsage {
  total: { blobs: Count; bytes: Count };
  namespaces: { namespace: string; repositories: Count; bytes: Count }[];
  repositories?: { repository: string; bytes: Count }[];
}

/**
 * What Store.usage returns: the kept rows, each namespace with a quota added
 * (with nothing in use when it has no repository), in name order.
 */
export function usageFrom(kept: KeptUsage, quotas: ReadonlyMap<string, number>, namespace?: string): Usage {
  const byName = new Map<string, NamespaceUsage>();
  for (const row of kept.namespaces) {
    byName.set(row.namespace, { namespace: row.namespace, bytes: Number(row.bytes), repositories: Number(row.repositories) });
  }
  const named = namespace === undefined ? [...quotas.keys()] : [namespace];
  for (const name of named) {
    if (!byName.has(name)) byName.set(name, { namespace: name, bytes: 0, repositories: 0 });
  }
  const namespaces = [...byName.values()].sort((a, b) => (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0));
  for (const entry of namespaces) {
    const quota = quotas.get(entry.namespace);
    if (quota !== undefined) entry.quota = quota;
  }
  const usage: Usage = { total: { blobs: Number(kept.total.blobs), bytes: Number(kept.total.bytes) }, namespaces };
  if (kept.repositories !== undefined) {
    usage.repositories = kept.repositories.map((r): RepositoryUsage => ({ repository: r.repository, bytes: Number(r.bytes) }));
  }
  return usage;
}

/** Where the kept sizes and a count of the links disagree (each list: mismatches only). */
export interface SizeMismatches {
  registry: { keptBlobs: Count; kept: Count; blobs: Count; counted: Count }[];
  namespaces: { namespace: string; kept: Count; counted: Count; keptRepositories: Count; repositories: Count }[];
  repositories: { repository: string; kept: Count; counted: Count }[];
  links: { namespace: string; digest: string; kept: Count; counted: Count }[];
}

/** A 'size' problem for each mismatch. */
export function mismatchProblems(found: SizeMismatches): CheckProblem[] {
  const problem = (subject: string, detail: string): CheckProblem => ({ kind: 'size', subject, detail });
  const problems: CheckProblem[] = [];
  for (const r of found.registry) {
    problems.push(problem('registry', `blobs: kept ${r.keptBlobs}, counted ${r.blobs}; bytes: kept ${r.kept}, counted ${r.counted}`));
  }
  for (const n of found.namespaces) {
    problems.push(
      problem(`namespace ${n.namespace}`, `bytes: kept ${n.kept}, counted ${n.counted}; repositories: kept ${n.keptRepositories}, counted ${n.repositories}`),
    );
  }
  for (const r of found.repositories) problems.push(problem(`repository ${r.repository}`, `bytes: kept ${r.kept}, counted ${r.counted}`));
  for (const l of found.links) {
    problems.push(problem(`namespace ${l.namespace} blob ${l.digest}`, `links: kept ${l.kept}, counted ${l.counted}`));
  }
  return problems;
}
