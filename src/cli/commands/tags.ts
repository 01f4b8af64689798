// `regmeta tags <repo>`: the tags of a repository with their targets; with
// --long, their details (size, platforms, push and pull), sorted and
// filtered by the store, page by page.

import { JSON_OPTION, parse, type Command } from '../args.js';
import { LOCATION_HELP, LOCATION_OPTIONS, location } from '../config/location.js';
import { Exit, usageError } from '../exit.js';
import { openMetadata } from '../open.js';
import { printJson, println, table } from '../output.js';
import { formatBytes } from '../../store/index.js';
import { StoreError, type Store, type TagDetail, type TagQuery } from '../../store/index.js';

const options = {
  ...LOCATION_OPTIONS,
  ...JSON_OPTION,
  long: { type: 'boolean' },
  sort: { type: 'string' },
  order: { type: 'string' },
  prefix: { type: 'string' },
  pattern: { type: 'string' },
} as const;

export const tags: Command = {
  name: 'tags',
  usage: `usage: regmeta tags <repo> [--long] [--sort name|pushed|pulled] [--order asc|desc]
                    [--prefix <text>] [--pattern <glob>] [--data <dir>] [--database <url>] [--json]

Lists the tags of <repo> in byte order with the digest, media type and size
of the manifest each points at. With --long (which --sort, --order,
--prefix and --pattern imply), a table of each tag's details: its digest
(short), media type, size (the manifest and every blob it and its children
reference, each once), platforms (an index's), when its manifest was last
pushed, when the tag was last pulled, and its pulls.

options:
${LOCATION_HELP}
  --long               the details of each tag
  --sort <key>         name (default, byte order), pushed or pulled; ties by name
  --order <order>      asc (default) or desc
  --prefix <text>      only tags that start with <text>
  --pattern <glob>     only tags that match <glob> (* any run of tag characters, ? one)
  --json               print a JSON array: of {tag, digest, mediaType, size};
                       with --long, of each tag's details

examples:
  regmeta tags library/nginx
  regmeta tags library/nginx --long --sort pushed --order desc --pattern 'v1.*'
`,
  options,
  exits: {},
  async run(argv) {
    const args = parse(argv, tags, options, { min: 1, max: 1 });
    if (!args) return Exit.OK;
    const [repo] = args.positionals;
    const { sort, order, prefix, pattern } = args.values;
    const long = args.values.long === true || [sort, order, prefix, pattern].some((value) => value !== undefined);
    const query = long ? tagQuery(args.values) : undefined;
    const store = await openMetadata(location(args.values, 'tags'));
    try {
      if (query !== undefined) await printDetails(store, repo, query, args.values.json === true);
      else {
        const rows = await store.tagDescriptors(repo);
        if (args.values.json) printJson(rows);
        else for (const line of table(rows.map((r) => [r.tag, r.digest, r.mediaType, String(r.size)]))) println(line);
      }
      return Exit.OK;
    } catch (error) {
      // A pattern the store cannot read is the command line's mistake.
      if (error instanceof StoreError && error.code === 'ARGUMENT_INVALID') throw usageError('tags', error.message);
      throw error;
    } finally {
      await store.close();
    }
  },
};

/** The store's query from the options. @throws CliError USAGE for a sort or order it does not know. */
function tagQuery(values: { sort?: string; order?: string; prefix?: string; pattern?: string }): TagQuery {
  const { sort = 'name', order = 'asc', prefix, pattern } = values;
  if (sort !== 'name' && sort !== 'pushed' && sort !== 'pulled') throw usageError('tags', `--sort is name, pushed or pulled, not ${JSON.stringify(sort)}`);
  if (order !== 'asc' && order !== 'desc') throw usageError('tags', `--order is asc or desc, not ${JSON.stringify(order)}`);
  const query: TagQuery = { sort, order, n: 1000 };
  if (prefix !== undefined) query.prefix = prefix;
  if (pattern !== undefined) query.pattern = pattern;
  return query;
}

/** Every page of the tags' details: a JSON array written page by page, or a table (held whole: its columns are as wide as their widest cell). */
async function printDetails(store: Store, repo: string, query: TagQuery, json: boolean): Promise<void> {
  const rows: string[][] = [['TAG', 'DIGEST', 'MEDIA TYPE', 'SIZE', 'PLATFORMS', 'PUSHED', 'PULLED', 'PULLS']];
  let first = true;
  for (let last: string | undefined; ; ) {
    const page = await store.tagDetails(repo, last === undefined ? query : { ...query, last });
    if (json) {
      // Written page by page, so that a repository of any size takes a page's memory.
      for (const detail of page.tags) {
        process.stdout.write(`${first ? '[\n' : ',\n'}${indent(JSON.stringify(detail, null, 2))}`);
        first = false;
      }
    } else rows.push(...page.tags.map(detailRow));
    if (page.next === undefined) break;
    last = page.next;
  }
  if (json) process.stdout.write(first ? '[]\n' : '\n]\n');
  else for (const line of table(rows)) println(line);
}

const indent = (text: string) => text.replace(/^/gm, '  ');

/** A time to the minute, in UTC: what a table of many rows needs. */
const minute = (date: Date | undefined) => (date === undefined ? '-' : `${date.toISOString().slice(0, 16).replace('T', ' ')}Z`);

function detailRow(d: TagDetail): string[] {
  const digest = d.digest.slice(0, d.digest.indexOf(':') + 13);
  const platforms = d.platforms === undefined ? '-' : d.platforms.map((p) => [p.os, p.architecture, p.variant].filter(Boolean).join('/')).join(',') || '-';
  return [d.tag, digest, d.mediaType, formatBytes(d.size), platforms, minute(d.pushedAt), minute(d.pulledAt), String(d.pullCount)];
}
