// The rules of recordPulls, the same on every backend: a batch of pull
// entries added up per repository, per manifest and per tag before it is
// written, so that each row is written once per batch (an UPDATE joined to
// two entries of one row would apply either), and the PULL event of each
// entry that found what it pulled.

import type { Pull } from './types.js';

/** The pulls of one manifest or one tag in a batch. */
export interface PulledTarget {
  repo: string;
  /** The manifest's digest, or the tag. */
  key: string;
  count: number;
  /** The latest pull, epoch ms. */
  at: number;
}

/** An entry that pulled a manifest or a tag: one PULL event when it is found. */
interface PullEntry {
  repo: string;
  digest?: string;
  tag?: string;
  count: number;
}

/** A batch added up: what each row gets, and the entries for the events. */
export interface PullBatch {
  /** Each repository's latest pull, epoch ms. */
  repositories: Map<string, number>;
  manifests: PulledTarget[];
  tags: PulledTarget[];
  /** Entries of a manifest or a tag, duplicates added up, in the batch's order. */
  entries: PullEntry[];
}

/** A checked batch added up. */
export function addUpPulls(pulls: readonly Pull[]): PullBatch {
  const repositories = new Map<string, number>();
  const manifests = new Map<string, PulledTarget>();
  const tags = new Map<string, PulledTarget>();
  const entries = new Map<string, PullEntry>();
  for (const { repo, digest, tag, at, count = 1 } of pulls) {
    const time = at.getTime();
    repositories.set(repo, Math.max(repositories.get(repo) ?? time, time));
    if (digest !== undefined) add(manifests, repo, digest, count, time);
    if (tag !== undefined) add(tags, repo, tag, count, time);
    if (digest === undefined && tag === undefined) continue;
    // No name holds '@', no digest '#'.
    const key = `${repo}@${digest ?? ''}#${tag ?? ''}`;
    const entry = entries.get(key);
    if (entry === undefined) entries.set(key, { repo, digest, tag, count });
    else entry.count += count;
  }
  return { repositories, manifests: [...manifests.values()], tags: [...tags.values()], entries: [...entries.values()] };
}

function add(targets: Map<string, PulledTarget>, repo: string, key: string, count: number, at: number): void {
  const id = `${repo}@${key}`;
  const target = targets.get(id);
  if (target === undefined) targets.set(id, { repo, key, count, at });
  else {
    target.count += count;
    target.at = Math.max(target.at, at);
  }
}

/** The PULL event of an entry: its manifest (the tag's, for a tag alone), its tag when by tag, its count. */
interface PullEvent {
  repo: string;
  digest: string;
  tag?: string;
  count: number;
}

/**
 * The PULL events of a written batch: one per entry of a count above 0
 * whose manifest (by digest) or tag (alone) was found, `manifests` holding the `repo@digest`
 * found and `tags` the digest of each `repo#tag` found.
 */
export function pullEvents(batch: PullBatch, manifests: ReadonlySet<string>, tags: ReadonlyMap<string, string>): PullEvent[] {
  const events: PullEvent[] = [];
  for (const { repo, digest, tag, count } of batch.entries) {
    // A count of 0 records a time alone (pull times carried over without
    // their counts): no pull to tell a webhook of. The server never notes one.
    if (count === 0) continue;
    const pulled = digest !== undefined ? (manifests.has(`${repo}@${digest}`) ? digest : undefined) : tags.get(`${repo}#${tag}`);
    if (pulled === undefined) continue;
    events.push(tag === undefined ? { repo, digest: pulled, count } : { repo, digest: pulled, tag, count });
  }
  return events;
}
