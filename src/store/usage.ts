// The rows of a namespace's usage, as both backends read them (one row per
// repository and linked blob, a repository without links once with a NULL
// digest), grouped into what Store.namespaceUsage returns.

import type { NamespaceRepository } from './types.js';

/** One repository and one blob linked into it, in repository order. */
export interface UsageRow {
  name: string;
  createdAt: number | string;
  pulledAt: number | string | null;
  digest: string | null;
  size: number | string | null;
}

/** The repositories of `rows`, in their order, each with its blobs. */
export function usageOf(rows: readonly UsageRow[]): NamespaceRepository[] {
  const repositories: NamespaceRepository[] = [];
  let current: NamespaceRepository | undefined;
  for (const row of rows) {
    if (current?.name !== row.name) {
      current = { name: row.name, createdAt: new Date(Number(row.createdAt)), blobs: [] };
      if (row.pulledAt !== null) current.pulledAt = new Date(Number(row.pulledAt));
      repositories.push(current);
    }
    if (row.digest !== null) current.blobs.push({ digest: row.digest, size: Number(row.size) });
  }
  return repositories;
}
