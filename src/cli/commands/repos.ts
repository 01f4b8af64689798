// `regmeta repos`: the repository catalog.

import { DATA_HELP, DATA_OPTION, Exit, JSON_OPTION, openMetadata, parse, println, printJson, type Command } from '../common.js';

const options = { ...DATA_OPTION, ...JSON_OPTION } as const;

export const repos: Command = {
  name: 'repos',
  usage: `usage: regmeta repos [--data <dir>] [--database <url>] [--json]

Lists every repository in byte order, one a line. An empty store prints
nothing (as ls does for an empty directory), or [] with --json.

options:
${DATA_HELP}
  --json         print a JSON array of names

example:
  regmeta repos --data /srv/registry
`,
  options,
  exits: {},
  async run(argv) {
    const args = parse(argv, repos, options, { min: 0, max: 0 });
    if (!args) return Exit.OK;
    const store = await openMetadata(args.values);
    try {
      const names = await store.catalog();
      if (args.values.json) printJson(names);
      else for (const name of names) println(name);
      return Exit.OK;
    } finally {
      await store.close();
    }
  },
};
