// `regmeta manifest <repo> <tag|digest>`: a manifest's exact bytes, or what
// is known about it.

import { JSON_OPTION, parse, type Command } from '../args.js';
import { LOCATION_HELP, LOCATION_OPTIONS, location } from '../config/location.js';
import { Exit } from '../exit.js';
import { openMetadata } from '../open.js';
import { printJson } from '../output.js';

const options = { ...LOCATION_OPTIONS, ...JSON_OPTION } as const;

export const manifest: Command = {
  name: 'manifest',
  usage: `usage: regmeta manifest <repo> <tag|digest> [--data <dir>] [--database <url>] [--json]

Prints the manifest's exact bytes as pushed, nothing added (pipe them to
sha256sum to check the digest); on a terminal, a newline follows when they
do not end in one. With --json, prints {repo, digest, mediaType, size, createdAt,
tags, manifest} instead, where manifest is the parsed payload.

options:
${LOCATION_HELP}
  --json         print information about the manifest as JSON

example:
  regmeta manifest library/nginx latest | jq .config
`,
  options,
  exits: {},
  async run(argv) {
    const args = parse(argv, manifest, options, { min: 2, max: 2 });
    if (!args) return Exit.OK;
    const [repo, reference] = args.positionals;
    const store = await openMetadata(location(args.values, 'manifest'));
    try {
      const found = await store.getManifestByReference(repo, reference);
      if (!args.values.json) {
        process.stdout.write(found.payload);
        // The prompt on a line of its own; a pipe gets the bytes as they are.
        if (process.stdout.isTTY && found.payload.at(-1) !== 0x0a) process.stdout.write('\n');
        return Exit.OK;
      }
      printJson({
        repo: found.repo,
        digest: found.digest,
        mediaType: found.mediaType,
        size: found.size,
        createdAt: found.createdAt.toISOString(),
        tags: await store.lookupTags(repo, found.digest),
        manifest: JSON.parse(found.payload.toString('utf8')) as unknown,
      });
      return Exit.OK;
    } finally {
      await store.close();
    }
  },
};
