// `regmeta events prune`: the event log cut to what was published since a
// time, in short transactions (a running server's writers barely wait),
// with the horizon kept so that webhook cursors below it are reported.

import { pruneInBatches } from '../../server/index.js';
import type { PruneResult } from '../../store/index.js';
import { JSON_OPTION, parse, type Command } from '../args.js';
import { LOCATION_HELP, LOCATION_OPTIONS, location } from '../config/location.js';
import { Exit, usageError } from '../exit.js';
import { openMetadata } from '../open.js';
import { printJson, println } from '../output.js';
import { Progress } from '../progress.js';
import { parseTime } from '../time.js';

const options = { ...LOCATION_OPTIONS, ...JSON_OPTION, before: { type: 'string' }, 'dry-run': { type: 'boolean', short: 'n' } } as const;

export const eventsPrune: Command = {
  name: 'events prune',
  usage: `usage: regmeta events prune --before <time> [--dry-run] [--data <dir>] [--database <url>] [--json]

Deletes the events published before a time, the oldest first, in
transactions of 10000 (a running server's writers barely wait), and prints
how many went and the horizon: the highest seq pruned. Seqs go on from
where they were, so page cursors, regmeta events --follow and webhooks go
on; a webhook endpoint that had not yet acknowledged pruned events is told
nothing of them, and regmeta notify status and the server's log say so.
regmeta serve does the same on a schedule with events.keep.

options:
  --before <time>  prune what was published before this: an ISO date
                   (2026-09-01, 2026-09-01T10:00:00Z) or a duration ago (90d)
  --dry-run, -n    count what would go, and the horizon it would reach; delete nothing
${LOCATION_HELP}
  --json           print { before, dryRun, pruned, horizon, horizonAt } as JSON

examples:
  regmeta events prune --before 90d --dry-run
  regmeta events prune --before 2026-09-01 --data /srv/registry
`,
  options,
  exits: {},
  async run(argv) {
    const args = parse(argv, eventsPrune, options, { min: 0, max: 0 });
    if (!args) return Exit.OK;
    const v = args.values;
    if (v.before === undefined) throw usageError('events prune', '--before is required: a time, or a duration ago like 90d');
    const before = parseTime(v.before, 'events prune', 'before');
    const dryRun = v['dry-run'] === true;
    const store = await openMetadata(location(v, 'events prune'));
    let result: PruneResult;
    try {
      const counted = await store.pruneEvents({ before, dryRun: true });
      if (dryRun) result = counted;
      else {
        const progress = new Progress('pruning events', { total: counted.pruned, unit: 'events' });
        result = await pruneInBatches(store, before, { onBatch: (done) => progress.update(done) });
        progress.finish();
      }
    } finally {
      await store.close();
    }
    if (v.json) printJson({ before: before.toISOString(), dryRun, pruned: result.pruned, horizon: result.horizon, horizonAt: result.horizonAt?.toISOString() });
    else println(describe(result, before, dryRun));
    return Exit.OK;
  },
};

/** One line: how many went (would go) and where the log now starts. */
function describe(result: PruneResult, before: Date, dryRun: boolean): string {
  const what = `${dryRun ? 'would prune' : 'pruned'} ${result.pruned} event${result.pruned === 1 ? '' : 's'} published before ${before.toISOString()}`;
  if (result.horizon === 0) return `${what}; nothing was ever pruned`;
  const at = result.horizonAt === undefined ? '' : `, published ${result.horizonAt.toISOString()}`;
  return `${what}; horizon${dryRun ? ' then' : ''}: seq ${result.horizon}${at} (the log holds only the events after it)`;
}
