// `regmeta usage`: the storage each namespace takes, each blob once, with
// its quota, and the registry's total, as the store keeps them (no scan);
// with --namespace, that namespace's repositories. Read-only.

import { JSON_OPTION, parse, type Command } from '../args.js';
import { LOCATION_HELP, LOCATION_OPTIONS, location } from '../config/location.js';
import { Exit } from '../exit.js';
import { openMetadata } from '../open.js';
import { printJson, println, table } from '../output.js';
import { formatBytes } from '../../store/index.js';
import type { NamespaceUsage } from '../../store/index.js';

const options = { ...LOCATION_OPTIONS, ...JSON_OPTION, namespace: { type: 'string' } } as const;

/** A namespace's quota for people: the limit and how much of it is used. */
const quotaText = (n: NamespaceUsage) => (n.quota === undefined ? '-' : `${formatBytes(n.quota)} (${n.quota === 0 ? 100 : Math.round((n.bytes / n.quota) * 100)}%)`);

export const usage: Command = {
  name: 'usage',
  usage: `usage: regmeta usage [--namespace <ns>] [--data <dir>] [--database <url>] [--json]

Prints the storage the registry's blobs take, as the store keeps it on every
push and delete: the total (each blob once), then each namespace (a name's
first component; each blob once however many of its repositories link it)
with its repositories and its quota (serve's quotas: $REGMETA_QUOTAS, else
the config file's). With
--namespace, that namespace and each of its repositories (each blob once).
Manifests' own bytes are not counted.

options:
  --namespace <ns>   one namespace and its repositories
${LOCATION_HELP}
  --json         print the same as one JSON object

example:
  regmeta usage --namespace acme --config /etc/regmeta.yaml
`,
  options,
  exits: {},
  async run(argv) {
    const args = parse(argv, usage, options, { min: 0, max: 0 });
    if (!args) return Exit.OK;
    const where = location(args.values, 'usage', { quotas: true });
    const store = await openMetadata(where, { readOnly: true, policy: { quotas: where.quotas ?? [] } });
    let found;
    try {
      const namespace = args.values.namespace;
      found = await store.usage(namespace === undefined ? {} : { namespace, repositories: true });
    } finally {
      await store.close();
    }
    if (args.values.json) {
      printJson(found);
      return Exit.OK;
    }
    println(`total  ${formatBytes(found.total.bytes)} in ${found.total.blobs} blobs`);
    println();
    const rows = found.namespaces.map((n) => [n.namespace, String(n.repositories), formatBytes(n.bytes), quotaText(n)]);
    for (const line of table([['namespace', 'repositories', 'size', 'quota'], ...rows])) println(line);
    if (found.repositories !== undefined && found.repositories.length > 0) {
      println();
      const repos = found.repositories.map((r) => [r.repository, formatBytes(r.bytes)]);
      for (const line of table([['repository', 'size'], ...repos])) println(line);
    }
    return Exit.OK;
  },
};
