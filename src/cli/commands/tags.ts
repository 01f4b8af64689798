// `regmeta tags <repo>`: the tags of a repository with their targets.

import { JSON_OPTION, parse, type Command } from '../args.js';
import { LOCATION_HELP, LOCATION_OPTIONS, location } from '../config/location.js';
import { Exit } from '../exit.js';
import { openMetadata } from '../open.js';
import { printJson, println, table } from '../output.js';

const options = { ...LOCATION_OPTIONS, ...JSON_OPTION } as const;

export const tags: Command = {
  name: 'tags',
  usage: `usage: regmeta tags <repo> [--data <dir>] [--database <url>] [--json]

Lists the tags of <repo> in byte order with the digest, media type and size
of the manifest each points at.

options:
${LOCATION_HELP}
  --json         print a JSON array of {tag, digest, mediaType, size}

example:
  regmeta tags library/nginx
`,
  options,
  exits: {},
  async run(argv) {
    const args = parse(argv, tags, options, { min: 1, max: 1 });
    if (!args) return Exit.OK;
    const [repo] = args.positionals;
    const store = await openMetadata(location(args.values, 'tags'));
    try {
      const rows = await store.tagDescriptors(repo);
      if (args.values.json) printJson(rows);
      else for (const line of table(rows.map((r) => [r.tag, r.digest, r.mediaType, String(r.size)]))) println(line);
      return Exit.OK;
    } finally {
      await store.close();
    }
  },
};
