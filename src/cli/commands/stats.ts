// `regmeta stats`: counts, database size and the largest repositories, as
// the store's stats() reads them in one snapshot on a read-only connection.

import { JSON_OPTION, parse, type Command } from '../args.js';
import { LOCATION_HELP, LOCATION_OPTIONS, location } from '../config/location.js';
import { Exit, usageError } from '../exit.js';
import { openMetadata } from '../open.js';
import { printJson, println, table } from '../output.js';
import { formatBytes } from '../../store/index.js';

const options = { ...LOCATION_OPTIONS, ...JSON_OPTION, top: { type: 'string' } } as const;

export const stats: Command = {
  name: 'stats',
  usage: `usage: regmeta stats [--top <n>] [--data <dir>] [--database <url>] [--json]

Prints how many repositories, manifests, tags, blobs, blob links and events
the store holds, the size of the database (file and write-ahead log), and the
<n> largest repositories by the bytes of the blobs linked in them.

options:
  --top <n>      how many repositories to list (default 10)
${LOCATION_HELP}
  --json         print the same as one JSON object

example:
  regmeta stats --top 5 --json
`,
  options,
  exits: {},
  async run(argv) {
    const args = parse(argv, stats, options, { min: 0, max: 0 });
    if (!args) return Exit.OK;
    const top = args.values.top === undefined ? 10 : Number(args.values.top);
    if (!Number.isSafeInteger(top) || top < 0) throw usageError('stats', '--top must be a non-negative integer');
    const store = await openMetadata(location(args.values, 'stats'), { readOnly: true });
    let found;
    try {
      found = await store.stats({ top });
    } finally {
      await store.close();
    }
    const { counts, database, largestRepositories: largest } = found;
    if (args.values.json) {
      printJson({ ...counts, database, largestRepositories: largest });
      return Exit.OK;
    }
    println(`repositories  ${counts.repositories}`);
    println(`manifests     ${counts.manifests} (${formatBytes(counts.manifestBytes)})`);
    println(`tags          ${counts.tags}`);
    println(`blobs         ${counts.blobs} (${formatBytes(counts.blobBytes)}), ${counts.blobLinks} links`);
    println(`events        ${counts.events}`);
    println(
      // A database server reports its size alone; a file has its log and pages too.
      database.server === undefined
        ? `database      ${formatBytes(database.fileBytes)} + ${formatBytes(database.walBytes)} WAL, ${database.pages} pages of ${database.pageSize} B, ${database.freePages} free`
        : `database      ${formatBytes(database.fileBytes)} (${database.server}, ${database.file})`,
    );
    if (largest.length > 0) {
      println();
      const rows = largest.map((r) => [r.repository, String(r.manifests), String(r.tags), String(r.blobs), formatBytes(r.blobBytes)]);
      for (const line of table([['repository', 'manifests', 'tags', 'blobs', 'size'], ...rows])) println(line);
    }
    return Exit.OK;
  },
};
