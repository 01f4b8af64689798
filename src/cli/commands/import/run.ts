// One import, repository by repository: blobs, then manifests, then tags.

import type { Store } from '../../../store/index.js';
import type { DistributionStorage } from '../../../blobstore/index.js';
import { openBlobs } from '../../open.js';
import { Progress } from '../../progress.js';
import { importBlobs } from './blobs.js';
import { importRevisions } from './revisions.js';
import { scanRepositories } from './scan.js';
import { emptySummary, type ImportRun, type ImportSummary, type Target } from './summary.js';
import { replayTags } from './tags.js';

/**
 * Imports the distribution storage `root` into `store` (and closes it).
 * @throws StoreError on database failures; CliError IO on an unreadable tree.
 */
export async function importInto(root: DistributionStorage, store: Store, actor: string, target: Target): Promise<ImportSummary> {
  const started = Date.now();
  const summary = emptySummary(root.location);
  try {
    const repositories = await scanRepositories(root, summary.problems);
    const bar = new Progress('import', { total: repositories.reduce((n, r) => n + r.layers.length + r.revisions.length + r.tags.length, 0) });
    // No size limit: an import takes whatever the source registry holds.
    const blobs = openBlobs(target.where, { maxBlobSize: Number.POSITIVE_INFINITY });
    const run: ImportRun = { root, store, ctx: { actor }, target, blobs, summary, bar };
    for (const repo of repositories) {
      summary.repositories++;
      await importBlobs(run, repo);
      const available = await importRevisions(run, repo);
      await replayTags(run, repo, available);
    }
    bar.finish();
  } finally {
    await store.close();
  }
  summary.seconds = (Date.now() - started) / 1000;
  return summary;
}
