// Where a subcommand finds the registry it works on: the data directory,
// the database when the metadata is on PostgreSQL, and the bucket when the
// blobs are in S3-compatible storage. Read from serve's options
// table with serve's sources and precedence (flag > environment > the config
// file of --config or REGMETA_CONFIG > default), so that one config file and
// one environment serve `regmeta serve` and every other command alike.

import type { S3Options } from '../../blobstore/index.js';
import type { Quota } from '../../store/index.js';
import type { ResolvedMirror } from '../../server/index.js';
import type { ImmutableRule, RetentionRule } from '../../store/index.js';
import { resolvedMirrors, type MirrorEntry } from './mirrors.js';
import { refuseProblems, resolveOptions } from './load.js';
import { META_OPTIONS, OPTIONS, type OptionInfo } from './options.js';

/** Where a registry lives. */
export interface Location {
  /** The data directory, absolute: without `storage`, the blobs and the uploads; without `database`, metadata.db. */
  data: string;
  /** The PostgreSQL database's URL; undefined: the SQLite file in `data`. */
  database?: string;
  /** The S3-compatible bucket holding the blobs; undefined: the blobs and uploads in `data`. */
  storage?: S3Options;
  /**
   * The mirrors, checked and with their defaults, as serve runs them (their
   * prefixes, maxSize, maxIdle), without passwords; only where asked for.
   */
  mirrors?: ResolvedMirror[];
  /** The quotas per namespace, as serve enforces them; only where asked for. */
  quotas?: Quota[];
  /** The retention rules (none: []) and the immutable tags they never remove; only where asked for. */
  retention?: RetentionRule[];
  immutable?: ImmutableRule[];
}

const optionOf = (key: string): OptionInfo => OPTIONS.find((o) => o.key === key)!;
const DATA = optionOf('data');
const DATABASE = optionOf('database');
const STORAGE = optionOf('storage.s3');
const MIRRORS = optionOf('mirrors');
const QUOTAS = optionOf('quotas');
const RETENTION = optionOf('retention');
const IMMUTABLE = optionOf('immutable');
const STRING = { type: 'string' } as const;

/** The options of a command that opens the registry: --data, --database, --storage and --config. */
export const LOCATION_OPTIONS = {
  [DATA.flagName]: STRING,
  [DATABASE.flagName]: STRING,
  [STORAGE.flagName]: STRING,
  [META_OPTIONS.config.flag]: STRING,
} as Readonly<Record<'config' | 'data' | 'database' | 'storage', typeof STRING>>;

/** The options of a command that works on the SQLite file in the data directory alone (migrate's source). */
export const DATA_OPTIONS = { [DATA.flagName]: STRING, [META_OPTIONS.config.flag]: STRING } as Readonly<Record<'config' | 'data', typeof STRING>>;

const CONFIG_HELP = `  --${META_OPTIONS.config.flag} <${META_OPTIONS.config.arg}>
                 read the options above from serve's YAML or JSON config
                 file (default: $${META_OPTIONS.config.env}); a flag wins over
                 the environment, which wins over the file`;

/** --data and --config in a command's help (DATA_OPTIONS). */
export const DATA_HELP = `  --${DATA.flagName} <${DATA.arg}>   the registry's data directory, holding metadata.db
                 (default: $${DATA.env}, else ${DATA.default})
${CONFIG_HELP}`;

/** --data, --database, --storage and --config in a command's help (LOCATION_OPTIONS). */
export const LOCATION_HELP = `  --${DATA.flagName} <${DATA.arg}>   the registry's data directory, holding metadata.db
                 (default: $${DATA.env}, else ${DATA.default})
  --${DATABASE.flagName} <${DATABASE.arg}>
                 the metadata on PostgreSQL (postgres://user:password@host/db;
                 default: $${DATABASE.env}, else the SQLite file in --data);
                 --data then holds only the blobs
  --${STORAGE.flagName} <${STORAGE.arg}>
                 the blobs in an S3-compatible bucket (s3://BUCKET/PREFIX?
                 endpoint=URL&region=R&forcePathStyle=true; default:
                 $${STORAGE.env}, else the blobs in --data); credentials
                 come from the AWS chain (AWS_* environment, shared config)
${CONFIG_HELP}`;

/**
 * Where the registry is, from the flags parsed (`values`: LOCATION_OPTIONS,
 * or DATA_OPTIONS with `options.database` false), the environment and the
 * config file, as serve reads the same options. With `options.mirrors`,
 * also the mirrors (from `values.mirror`, the --mirror flags of a command
 * that has them, REGMETA_MIRROR or the file's `mirrors`); with
 * `options.quotas`, the quotas likewise (--quota, REGMETA_QUOTAS, `quotas`).
 * `options.retention`, the retention rules (REGMETA_RETENTION or the file's
 * `retention`) and the immutable tags (`immutable`), which the store is opened with.
 * @throws CliError USAGE listing every problem, one line each (a --database
 * that is no postgres:// URL, a --storage that is no good s3:// URL, a bad
 * mirror, a bad key or value in the config file); IO when
 * the config file cannot be read.
 */
export function location(
  values: { config?: string; data?: string; database?: string; storage?: string; mirror?: string[]; quota?: string[] },
  command: string,
  options: { database?: boolean; mirrors?: boolean; quotas?: boolean; retention?: boolean } = {},
  env: NodeJS.ProcessEnv = process.env,
): Location {
  const problems: string[] = [];
  const read = [
    DATA,
    ...(options.database === false ? [] : [DATABASE, STORAGE]),
    ...(options.mirrors === true ? [MIRRORS] : []),
    ...(options.quotas === true ? [QUOTAS] : []),
    ...(options.retention === true ? [RETENTION, IMMUTABLE] : []),
  ];
  const { values: found } = resolveOptions(values, env, read, problems);
  refuseProblems(problems, command);
  const database = found.get(DATABASE.key) as string | undefined;
  const storage = found.get(STORAGE.key) as S3Options | undefined;
  const entries = found.get(MIRRORS.key) as MirrorEntry[] | undefined;
  const quotas = found.get(QUOTAS.key) as Quota[] | undefined;
  const rules = found.get(RETENTION.key) as RetentionRule[] | undefined;
  return {
    data: found.get(DATA.key) as string,
    ...(database === undefined ? {} : { database }),
    ...(storage === undefined ? {} : { storage }),
    ...(entries === undefined ? {} : { mirrors: resolvedMirrors(entries) }),
    ...(quotas === undefined ? {} : { quotas }),
    ...(options.retention === true ? { retention: rules ?? [], immutable: (found.get(IMMUTABLE.key) as ImmutableRule[] | undefined) ?? [] } : {}),
  };
}
