// `regmeta repos`: the repository catalog.

import { JSON_OPTION, parse, type Command } from '../args.js';
import { LOCATION_HELP, LOCATION_OPTIONS, location } from '../config/location.js';
import { Exit } from '../exit.js';
import { openMetadata } from '../open.js';
import { printJson, println } from '../output.js';

const options = { ...LOCATION_OPTIONS, ...JSON_OPTION } as const;

export const repos: Command = {
  name: 'repos',
  usage: `usage: regmeta repos [--data <dir>] [--database <url>] [--json]

Lists every repository in byte order, one a line. An empty store prints
nothing (as ls does for an empty directory), or [] with --json.

options:
${LOCATION_HELP}
  --json         print a JSON array of names

example:
  regmeta repos --data /srv/registry
`,
  options,
  exits: {},
  async run(argv) {
    const args = parse(argv, repos, options, { min: 0, max: 0 });
    if (!args) return Exit.OK;
    const store = await openMetadata(location(args.values, 'repos'));
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
