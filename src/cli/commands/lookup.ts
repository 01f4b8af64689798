// `regmeta lookup <repo> <digest>`: which tags point at a manifest.

import { JSON_OPTION, parse, type Command } from '../args.js';
import { LOCATION_HELP, LOCATION_OPTIONS, location } from '../config/location.js';
import { Exit } from '../exit.js';
import { openMetadata } from '../open.js';
import { printJson, println } from '../output.js';

const options = { ...LOCATION_OPTIONS, ...JSON_OPTION } as const;

export const lookup: Command = {
  name: 'lookup',
  usage: `usage: regmeta lookup <repo> <digest> [--data <dir>] [--database <url>] [--json]

Lists the tags of <repo> that point at the manifest <digest>, in byte order.
Exits 1 when none does.

options:
${LOCATION_HELP}
  --json         print a JSON array of tags

example:
  regmeta lookup library/nginx sha256:0123...cdef
`,
  options,
  exits: { [Exit.PROBLEMS]: 'no tag points at the digest' },
  async run(argv) {
    const args = parse(argv, lookup, options, { min: 2, max: 2 });
    if (!args) return Exit.OK;
    const [repo, digest] = args.positionals;
    const store = await openMetadata(location(args.values, 'lookup'));
    try {
      const found = await store.lookupTags(repo, digest);
      if (args.values.json) printJson(found);
      else for (const tag of found) println(tag);
      return found.length > 0 ? Exit.OK : Exit.PROBLEMS;
    } finally {
      await store.close();
    }
  },
};
