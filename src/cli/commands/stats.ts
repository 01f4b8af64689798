// `regmeta stats`: counts, database size and the largest repositories.
// Read-only SQL on its own connection: the store has no method for these
// whole-database aggregates, and they need none of its write machinery.

import { statSync } from 'node:fs';
import {
  DATA_HELP,
  DATA_OPTION,
  Exit,
  JSON_OPTION,
  dataDir,
  formatBytes,
  withReadOnly,
  parse,
  println,
  printJson,
  table,
  usageError,
  type Command,
} from '../common.js';

const options = { ...DATA_OPTION, ...JSON_OPTION, top: { type: 'string' } } as const;

const COUNTS = `
  SELECT
    (SELECT count(*) FROM repository) AS repositories,
    (SELECT count(*) FROM manifest) AS manifests,
    (SELECT coalesce(sum(size), 0) FROM manifest) AS manifestBytes,
    (SELECT count(*) FROM tag) AS tags,
    (SELECT count(*) FROM blob) AS blobs,
    (SELECT coalesce(sum(size), 0) FROM blob) AS blobBytes,
    (SELECT count(*) FROM blob_link) AS blobLinks,
    (SELECT count(*) FROM event) AS events`;

// Largest by the bytes of the blobs linked there, then by manifests.
const LARGEST = `
  SELECT
    r.name AS repository,
    (SELECT count(*) FROM manifest m WHERE m.repository_id = r.id) AS manifests,
    (SELECT count(*) FROM tag t WHERE t.repository_id = r.id) AS tags,
    (SELECT count(*) FROM blob_link l WHERE l.repository_id = r.id) AS blobs,
    (SELECT coalesce(sum(b.size), 0) FROM blob_link l JOIN blob b ON b.digest = l.digest
      WHERE l.repository_id = r.id) AS blobBytes
  FROM repository r
  ORDER BY blobBytes DESC, manifests DESC, r.name
  LIMIT :top`;

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

export const stats: Command = {
  name: 'stats',
  usage: `usage: regmeta stats [--top <n>] [--data <dir>] [--json]

Prints how many repositories, manifests, tags, blobs, blob links and events
the store holds, the size of the database (file and write-ahead log), and the
<n> largest repositories by the bytes of the blobs linked in them.

options:
  --top <n>      how many repositories to list (default 10)
${DATA_HELP}
  --json         print the same as one JSON object

example:
  regmeta stats --top 5 --json
`,
  run(argv) {
    const args = parse(argv, stats, options, { min: 0, max: 0 });
    if (!args) return Exit.OK;
    const top = args.values.top === undefined ? 10 : Number(args.values.top);
    if (!Number.isSafeInteger(top) || top < 0) throw usageError('stats', '--top must be a non-negative integer');
    const dir = dataDir(args.values);
    return withReadOnly(dir, (db, file) => {
      // Both reads in one transaction, so the numbers agree with each other.
      const { counts, largest, pages } = db.transaction(() => ({
        counts: db.prepare(COUNTS).get() as Record<string, number>,
        largest: db.prepare(LARGEST).all({ top }) as Record<string, string | number>[],
        pages: {
          pageSize: db.pragma('page_size', { simple: true }) as number,
          pageCount: db.pragma('page_count', { simple: true }) as number,
          freePages: db.pragma('freelist_count', { simple: true }) as number,
        },
      }))();
      const database = {
        file,
        fileBytes: fileSize(file),
        walBytes: fileSize(`${file}-wal`),
        pageSize: pages.pageSize,
        pages: pages.pageCount,
        freePages: pages.freePages,
      };
      if (args.values.json) {
        printJson({ ...counts, database, largestRepositories: largest });
        return Exit.OK;
      }
      println(`repositories  ${counts.repositories}`);
      println(`manifests     ${counts.manifests} (${formatBytes(counts.manifestBytes)})`);
      println(`tags          ${counts.tags}`);
      println(`blobs         ${counts.blobs} (${formatBytes(counts.blobBytes)}), ${counts.blobLinks} links`);
      println(`events        ${counts.events}`);
      println(`database      ${formatBytes(database.fileBytes)} + ${formatBytes(database.walBytes)} WAL, ${database.pages} pages of ${database.pageSize} B, ${database.freePages} free`);
      if (largest.length > 0) {
        println();
        const rows = largest.map((r) => [String(r.repository), String(r.manifests), String(r.tags), String(r.blobs), formatBytes(Number(r.blobBytes))]);
        for (const line of table([['repository', 'manifests', 'tags', 'blobs', 'size'], ...rows])) println(line);
      }
      return Exit.OK;
    });
  },
};
