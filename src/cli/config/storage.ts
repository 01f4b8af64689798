// The kind of the `storage.s3` option: an S3-compatible bucket for the blobs,
// written as s3://BUCKET/PREFIX?endpoint=URL&region=R&forcePathStyle=true
// (flag, environment and file) or, in the config file, as a mapping of
// bucket, prefix, endpoint, region and forcePathStyle. Every problem of a
// value is named, none echoing what may be a credential: credentials come
// from the AWS chain (AWS_* variables, shared config, a role), never from here.

import type { S3Options } from '../../blobstore/index.js';
import type { Kind } from './kinds.js';
import { usageError } from '../exit.js';

/** The URL's parameters and the mapping's keys besides bucket and prefix. */
const PARAMETERS = ['endpoint', 'region', 'forcePathStyle'] as const;
const KEYS = new Set<string>(['bucket', 'prefix', ...PARAMETERS]);

const CREDENTIALS = 'credentials come from the AWS chain (AWS_* environment, shared config, a role), never from this option';

/** A name as a message quotes it: short, and only the characters a parameter name has. */
const quoted = (name: string) => JSON.stringify(name.length > 32 ? `${name.slice(0, 29)}...` : name.replace(/[^\w.-]/g, '?'));

/** What a parameter or key that looks like a credential gets told. */
const looksSecret = (name: string) => /key|secret|token|credential|signature|password|session/i.test(name);

/** The fields of a value before they are checked: each as written, undefined when absent. */
interface Fields {
  bucket: string;
  prefix: string;
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean | string;
}

/** A value checked: the options, or every problem found, one clause each. */
type Parsed = { value: S3Options; problems?: undefined } | { value?: undefined; problems: string[] };

/** The problems of an endpoint: an http(s) URL without credentials, query or fragment. */
function endpointProblems(endpoint: string): string[] {
  if (!URL.canParse(endpoint)) return ['the endpoint is not a URL (like http://127.0.0.1:9000)'];
  const url = new URL(endpoint);
  const problems: string[] = [];
  if (url.protocol !== 'http:' && url.protocol !== 'https:') problems.push('the endpoint is not an http or https URL');
  if (url.username !== '' || url.password !== '') problems.push(`the endpoint carries a user or password: ${CREDENTIALS}`);
  if (url.search !== '' || url.hash !== '') problems.push('the endpoint has a query or fragment');
  return problems;
}

/** Checks the fields of either form, naming every problem. */
function check(fields: Fields, problems: string[]): Parsed {
  const { bucket, endpoint, region, forcePathStyle } = fields;
  if (bucket === '') problems.push('the bucket is empty');
  else if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/.test(bucket)) problems.push('the bucket has characters other than letters, digits, ".", "-" and "_"');
  const prefix = fields.prefix.replace(/^\/+|\/+$/g, '');
  if (prefix.split('/').some((part) => part === '.' || part === '..' || (part === '' && prefix !== ''))) {
    problems.push('the prefix has an empty, "." or ".." part');
  }
  if (endpoint !== undefined) problems.push(...endpointProblems(endpoint));
  if (region !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(region)) problems.push('the region is not a region name (like us-east-1 or auto)');
  const pathStyle = typeof forcePathStyle === 'string' ? { true: true, '1': true, false: false, '0': false }[forcePathStyle.toLowerCase()] : forcePathStyle;
  if (forcePathStyle !== undefined && pathStyle === undefined) problems.push('forcePathStyle is not true or false');
  if (problems.length > 0) return { problems };
  const value: S3Options = { bucket, prefix };
  if (endpoint !== undefined) value.endpoint = endpoint;
  if (region !== undefined) value.region = region;
  if (pathStyle !== undefined) value.forcePathStyle = pathStyle;
  return { value };
}

/** An s3:// URL's fields; undefined when the text is not an s3:// URL at all. */
function fromUrl(text: string): Parsed | undefined {
  const match = /^s3:\/\/([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/i.exec(text);
  if (!match) return undefined;
  const [, authority, path, query = '', fragment] = match;
  const problems: string[] = [];
  // Neither the user part nor the rest of the authority is echoed: it may be a key and its secret.
  if (authority.includes('@')) problems.push(`the URL carries a user or password: ${CREDENTIALS}`);
  else if (authority.includes(':')) problems.push('a port after the bucket: name the service by ?endpoint=URL');
  if (fragment !== undefined) problems.push('the URL has a fragment');
  let prefix = '';
  try {
    prefix = decodeURIComponent(path);
  } catch {
    problems.push('the prefix is not valid percent-encoding');
  }
  const fields: Fields = { bucket: authority.slice(authority.lastIndexOf('@') + 1).replace(/:.*$/, ''), prefix };
  const params = new URLSearchParams(query);
  const seen = new Set<string>();
  for (const [name, value] of params) {
    if (!(PARAMETERS as readonly string[]).includes(name)) {
      problems.push(`unknown parameter ${quoted(name)} (known: ${PARAMETERS.join(', ')})${looksSecret(name) ? `; ${CREDENTIALS}` : ''}`);
    } else if (seen.has(name)) problems.push(`the parameter ${name} is given twice`);
    else fields[name as (typeof PARAMETERS)[number]] = value;
    seen.add(name);
  }
  return check(fields, problems);
}

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The config file's mapping form; undefined when the value is not a mapping. */
function fromMapping(v: unknown): Parsed | undefined {
  if (!isMapping(v)) return undefined;
  const problems: string[] = [];
  for (const key of Object.keys(v)) {
    if (!KEYS.has(key)) problems.push(`unknown key ${quoted(key)} (known: ${[...KEYS].join(', ')})${looksSecret(key) ? `; ${CREDENTIALS}` : ''}`);
  }
  const { bucket, prefix = '', endpoint, region, forcePathStyle } = v;
  const text = (name: string, x: unknown, optional: boolean) => {
    if ((x === undefined && optional) || typeof x === 'string') return true;
    problems.push(x === undefined ? `${name} is missing` : `${name} is not a string`);
    return false;
  };
  const good = [text('bucket', bucket, false), text('prefix', prefix, true), text('endpoint', endpoint, true), text('region', region, true)].every(Boolean);
  if (forcePathStyle !== undefined && typeof forcePathStyle !== 'boolean') problems.push('forcePathStyle is not true or false');
  if (!good) return { problems };
  return check({ bucket: bucket as string, prefix: prefix as string, endpoint: endpoint as string | undefined, region: region as string | undefined, forcePathStyle: forcePathStyle as boolean | undefined }, problems);
}

/** Either form, from the file. */
const fromFileValue = (v: unknown): Parsed | undefined => (typeof v === 'string' ? fromUrl(v) : fromMapping(v));

/** The URL that reads back as `value`. */
function formatUrl(value: S3Options): string {
  const prefix = value.prefix === '' ? '' : `/${value.prefix.split('/').map(encodeURIComponent).join('/')}`;
  const params = new URLSearchParams();
  if (value.endpoint !== undefined) params.set('endpoint', value.endpoint);
  if (value.region !== undefined) params.set('region', value.region);
  if (value.forcePathStyle !== undefined) params.set('forcePathStyle', String(value.forcePathStyle));
  // ':' and '/' need no escape in a query: the endpoint stays readable.
  const query = params.toString().replace(/%3A/gi, ':').replace(/%2F/gi, '/');
  return `s3://${value.bucket}${prefix}${query === '' ? '' : `?${query}`}`;
}

/**
 * An S3-compatible bucket and key prefix: an s3:// URL anywhere, or a
 * mapping in the config file. Written out as the URL.
 */
export const s3: Kind<S3Options> = {
  expected: 'an s3://BUCKET/PREFIX URL (parameters: endpoint, region, forcePathStyle)',
  fromText: (t) => fromUrl(t)?.value,
  fromFile: (v) => fromFileValue(v)?.value,
  why: (raw) => {
    const problems = (typeof raw === 'string' ? fromUrl(raw) : fromMapping(raw))?.problems;
    return problems === undefined ? undefined : problems.join('; ');
  },
  format: formatUrl,
};

/**
 * An s3:// URL given to a command (import's source, migrate's --blobs-to),
 * read as --storage reads it.
 * @throws CliError USAGE naming every problem (never echoing a credential).
 */
export function s3Argument(text: string, command: string, what: string): S3Options {
  const value = s3.fromText(text);
  if (value !== undefined) return value;
  throw usageError(command, `${what}: expected ${s3.expected}${s3.why ? `: ${s3.why(text) ?? ''}` : ''}`.replace(/: $/, ''));
}

/** The URL of `value`, for messages and summaries (it holds no credential). */
export function s3Url(value: S3Options): string {
  return formatUrl(value);
}
