// Tags: each tag's history replayed from distribution's tag index, then set
// to its current target, so that the store's tag history matches.

import { NotFoundError, type Store } from '../../../store/index.js';
import type { RepositoryScan, TagScan } from './scan.js';
import { problemOf, type ImportRun } from './summary.js';

/**
 * Sets the repository's tags; a tag whose target was not imported is a problem.
 * @throws StoreError on database failures.
 */
export async function replayTags(run: ImportRun, repo: RepositoryScan, available: Set<string>): Promise<void> {
  const { store, ctx, summary, bar } = run;
  const { name } = repo;
  for (const tag of repo.tags) {
    bar.tick();
    if (tag.current === undefined) continue; // A tag directory without current: a deleted tag.
    if (!available.has(tag.current)) {
      summary.problems.push({ repository: name, subject: `tag ${tag.name}`, problem: `points at ${tag.current}, which was not imported` });
      continue;
    }
    try {
      if (await setTag(store, name, tag, available, ctx)) summary.tags.set++;
      else summary.tags.unchanged++;
    } catch (error) {
      summary.problems.push({ repository: name, subject: `tag ${tag.name}`, problem: problemOf(error) });
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
async function setTag(store: Store, repo: string, tag: TagScan, available: Set<string>, ctx: { actor: string }): Promise<boolean> {
  const current = tag.current!;
  const wanted = [...tag.history.filter((d) => d !== current && available.has(d)), current];
  let existing: string | undefined;
  try {
    existing = (await store.getTag(repo, tag.name)).digest;
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
  }
  const done = (await store.tagHistory(repo, tag.name)).map((h) => h.digest).reverse();
  const isPrefix = done.length <= wanted.length && done.every((d, i) => d === wanted[i]);
  let wrote = false;
  if (isPrefix && existing === (done.length === 0 ? undefined : done[done.length - 1])) {
    for (const digest of wanted.slice(done.length)) {
      await store.putTag(repo, tag.name, { digest }, ctx);
      existing = digest;
      wrote = true;
    }
  }
  // A tag deleted or moved in the store since an earlier import is just set.
  if (existing !== current) {
    await store.putTag(repo, tag.name, { digest: current }, ctx);
    wrote = true;
  }
  return wrote;
}
