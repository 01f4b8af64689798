// `regmeta gc --retention`: the config's retention rules applied to the
// registry (or, with --dry-run, what they would remove and why, from a
// read-only store: on PostgreSQL as on SQLite). The store's retention
// engine plans and applies; this prints its rows, a summary and progress.

import { applyPlan, deletionsOf, planRetention, type RetentionDeletion, type RetentionRule, type Store } from '../../store/index.js';
import { usageError } from '../exit.js';
import { openMetadata, type Location } from '../open.js';
import { printJson, println, table } from '../output.js';
import { Progress } from '../progress.js';
import { counted } from '../units.js';

/** What a retention run did (or, dry, would do). */
interface RetentionReport {
  dryRun: boolean;
  /** The time the rules' durations counted back from. */
  at: string;
  repositoriesMatched: number;
  tags: RetentionDeletion[];
  manifests: RetentionDeletion[];
  /** Planned deletions left because what they weighed changed meanwhile. */
  skipped: number;
  seconds: number;
}

/** Plans with `rules` and, unless `dryRun`, applies the plan; closes `store`. */
async function run(store: Store, rules: readonly RetentionRule[], dryRun: boolean): Promise<RetentionReport> {
  const started = Date.now();
  const planning = new Progress('retention: weighing', { unit: 'repositories' });
  const applying = new Progress('retention: deleting', { unit: 'deletions' });
  try {
    const plan = await planRetention(store, rules, { onProgress: (p) => planning.update(p.done) });
    planning.finish();
    const report = { dryRun, at: plan.at.toISOString(), repositoriesMatched: plan.repositoriesMatched, skipped: 0 };
    if (dryRun) return { ...report, ...deletionsOf(plan), seconds: (Date.now() - started) / 1000 };
    const result = await applyPlan(store, plan, {
      onProgress: (p) => {
        applying.total = p.total;
        applying.update(p.done);
      },
    });
    applying.finish();
    return { ...report, tags: result.tags, manifests: result.manifests, skipped: result.skipped, seconds: (Date.now() - started) / 1000 };
  } finally {
    await store.close();
  }
}

/** A digest as the table shows it: its algorithm and 12 hex digits. */
const short = (digest: string) => `${digest.slice(0, digest.indexOf(':') + 13)}…`;

function print(report: RetentionReport): void {
  const rows = [
    ...report.tags.map((d) => [d.repository, `tag ${d.tag!}`, short(d.digest), d.rule, d.reason]),
    ...report.manifests.map((d) => [d.repository, 'manifest', short(d.digest), d.rule, d.reason]),
  ];
  if (rows.length > 0) for (const line of table([['REPOSITORY', 'WHAT', 'DIGEST', 'RULE', 'WHY'], ...rows])) println(line);
  const verb = report.dryRun ? 'would delete' : 'deleted';
  process.stderr.write(
    `${verb} ${counted(report.tags.length, 'tag')} and ${counted(report.manifests.length, 'manifest')} ` +
      `from ${counted(report.repositoriesMatched, 'repository', 'repositories')} the rules match` +
      `${report.dryRun ? '' : `, skipped ${report.skipped} changed since the plan`}, in ${report.seconds.toFixed(1)}s` +
      `${report.dryRun || report.manifests.length === 0 ? '' : "; 'regmeta gc' removes the blobs they leave unreferenced"}\n`,
  );
}

/**
 * gc --retention: the rules of `where` (the config's `retention:`) applied, or with `dryRun` planned only.
 * @throws CliError USAGE when no rule is configured; StoreError on database failures.
 */
export async function retentionGc(where: Location, options: { dryRun: boolean; json: boolean }): Promise<void> {
  const rules = where.retention ?? [];
  if (rules.length === 0) {
    throw usageError('gc', 'no retention rules: --retention applies the config file\'s retention: (pass --config FILE, or set REGMETA_RETENTION)');
  }
  // The immutable tags are the store's policy, as serve opens it: retention keeps them, and the store refuses to delete them.
  const immutable = where.immutable ?? [];
  const store = await openMetadata(where, { readOnly: options.dryRun, ...(immutable.length > 0 ? { policy: { immutable } } : {}) });
  const report = await run(store, rules, options.dryRun);
  if (options.json) printJson(report);
  else print(report);
}
