// `regmeta history <repo> <tag>`: every target a tag has had.

import { JSON_OPTION, parse, type Command } from '../args.js';
import { LOCATION_HELP, LOCATION_OPTIONS, location } from '../config/location.js';
import { CliError, Exit } from '../exit.js';
import { openMetadata } from '../open.js';
import { printJson, println, table } from '../output.js';

const options = { ...LOCATION_OPTIONS, ...JSON_OPTION } as const;

export const history: Command = {
  name: 'history',
  usage: `usage: regmeta history <repo> <tag> [--data <dir>] [--database <url>] [--json]

Lists every digest <tag> of <repo> has pointed at, newest first, with when
(a deleted tag's too). Exits 4 when the repository is missing or the tag
was never set.

options:
${LOCATION_HELP}
  --json         print a JSON array of {digest, taggedAt}

example:
  regmeta history library/nginx latest
`,
  options,
  exits: { [Exit.NOT_FOUND]: 'the repository is missing, or the tag was never set' },
  async run(argv) {
    const args = parse(argv, history, options, { min: 2, max: 2 });
    if (!args) return Exit.OK;
    const [repo, tag] = args.positionals;
    const store = await openMetadata(location(args.values, 'history'));
    try {
      const entries = await store.tagHistory(repo, tag);
      if (entries.length === 0) {
        throw new CliError(Exit.NOT_FOUND, `tag ${JSON.stringify(tag)} was never set in ${repo}`, `list the tags with 'regmeta tags ${repo}'`);
      }
      if (args.values.json) printJson(entries.map((e) => ({ digest: e.digest, taggedAt: e.taggedAt.toISOString() })));
      else for (const line of table(entries.map((e) => [e.taggedAt.toISOString(), e.digest]))) println(line);
      return Exit.OK;
    } finally {
      await store.close();
    }
  },
};
