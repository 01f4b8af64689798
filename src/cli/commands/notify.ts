// `regmeta notify status`: where each webhook endpoint's delivery stands, as
// the store's notification cursors say (the same numbers metrics read):
// position, backlog, failures, last error and success.

import { endpointLabels, withoutUrls } from '../../notify/index.js';
import type { MissedEvents, NotificationStatus } from '../../store/index.js';
import { JSON_OPTION, parse, type Command } from '../args.js';
import { LOCATION_HELP, LOCATION_OPTIONS, location } from '../config/location.js';
import { Exit, usageError } from '../exit.js';
import { openMetadata } from '../open.js';
import { printJson, println, table } from '../output.js';

const options = { ...LOCATION_OPTIONS, ...JSON_OPTION } as const;

const time = (date: Date | undefined) => (date === undefined ? '-' : date.toISOString());

/**
 * The states as they may be shown: each endpoint by its label (its name, or
 * scheme://host:port), never its URL, whose path, query and credentials may
 * be secrets; URLs in a recorded error likewise.
 */
function shown(states: NotificationStatus[]): NotificationStatus[] {
  const labels = endpointLabels(states.map((s) => s.endpoint));
  return states.map((s, i) => ({ ...s, endpoint: labels[i], ...(s.lastError === undefined ? {} : { lastError: withoutUrls(s.lastError) }) }));
}

function printStatus(states: NotificationStatus[]): void {
  if (states.length === 0) {
    println('no webhook endpoints (regmeta serve --notify <url> adds one)');
    return;
  }
  const rows = states.map((s) => [s.endpoint, s.eventId ?? '-', time(s.publishedAt), String(s.backlog), String(s.failures), time(s.lastSuccessAt)]);
  for (const line of table([['endpoint', 'last event delivered', 'its time', 'backlog', 'failures', 'last success'], ...rows])) println(line);
  for (const s of states) {
    if (s.lastError !== undefined) println(`${s.endpoint}: last error at ${time(s.lastFailureAt)}: ${s.lastError}`);
    if (s.missed !== undefined) println(`${s.endpoint}: ${describeMissed(s.missed)}`);
  }
}

/** The events an endpoint never got, pruned first: how many, which, and whether delivery has stepped over them yet. */
function describeMissed(missed: MissedEvents): string {
  const range = missed.from === missed.to ? `seq ${missed.from}` : `seq ${missed.from}-${missed.to}`;
  const when = missed.at === undefined ? 'delivery steps over them next' : `stepped over at ${time(missed.at)}`;
  return `missed ${missed.count} event${missed.count === 1 ? '' : 's'} pruned before it acknowledged them (latest ${range}; ${when})`;
}

export const notify: Command = {
  name: 'notify',
  usage: `usage: regmeta notify status [--data <dir>] [--database <url>] [--json]

Prints, for each webhook endpoint that regmeta serve --notify has delivered
to (by its name, or as scheme://host:port: a URL's path may be a secret):
the last event it acknowledged (id and time), the backlog (events
committed since, not yet acknowledged), failed attempts since the last
success, the last error and the last success, and the events it missed:
pruned from the log (regmeta events prune, serve's events.keep) before it
acknowledged them, as a count and the latest range of seqs. An endpoint no longer
configured keeps its cursor, and resumes from it when configured again.

options:
${LOCATION_HELP}
  --json         print the same as a JSON array

example:
  regmeta notify status --data /srv/registry --json
`,
  options,
  exits: {},
  async run(argv) {
    const args = parse(argv, notify, options, { min: 1, max: 1 });
    if (!args) return Exit.OK;
    if (args.positionals[0] !== 'status') throw usageError('notify', `unknown subcommand ${JSON.stringify(args.positionals[0])} (the one is status)`);
    const store = await openMetadata(location(args.values, 'notify'), { readOnly: true });
    let states: NotificationStatus[];
    try {
      states = await store.notifications.status();
    } finally {
      await store.close();
    }
    if (args.values.json) printJson(shown(states));
    else printStatus(shown(states));
    return Exit.OK;
  },
};
