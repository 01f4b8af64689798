// The grammar of the distribution spec, in one place: repository names, tags,
// digests and references. Everything that comes from outside passes through
// here before it reaches SQL or the filesystem.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests

import { createHash } from 'node:crypto';
import { StoreError } from './errors.js';

const component = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
const REPOSITORY = new RegExp(`^${component}(?:/${component})*$`);
// `[\w][\w.-]{0,127}`; Go's \w is ASCII, and so is JavaScript's without the u flag.
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGESTS: Record<string, RegExp> = {
  sha256: /^sha256:[a-f0-9]{64}$/,
  sha512: /^sha512:[a-f0-9]{128}$/,
};

/** The longest repository name the spec lets a registry refuse beyond. */
const MAX_REPOSITORY_LENGTH = 255;

/** The supported digest algorithms, in the spec's spelling. */
export type DigestAlgorithm = 'sha256' | 'sha512';

// Error messages quote what they refuse, cut short: a megabyte of input must
// not become a megabyte of log line.
function quote(value: unknown): string {
  if (typeof value !== 'string') return typeof value;
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

/** True when `name` is a valid repository name. */
export function isRepository(name: unknown): name is string {
  return typeof name === 'string' && name.length <= MAX_REPOSITORY_LENGTH && REPOSITORY.test(name);
}

/** True when `tag` is a valid tag. */
function isTag(tag: unknown): tag is string {
  return typeof tag === 'string' && TAG.test(tag);
}

/** True when `digest` is a sha256 or sha512 digest in canonical (lowercase) form. */
export function isDigest(digest: unknown): digest is string {
  if (typeof digest !== 'string') return false;
  const algorithm = digest.slice(0, digest.indexOf(':'));
  return Object.hasOwn(DIGESTS, algorithm) && DIGESTS[algorithm].test(digest);
}

/** @throws StoreError NAME_INVALID when `name` is not a repository name. */
export function checkRepository(name: unknown): string {
  if (isRepository(name)) return name;
  throw new StoreError('NAME_INVALID', `invalid repository name ${quote(name)}`);
}

/** @throws StoreError NAME_INVALID when a catalog's prefix is not a string of name characters no longer than a name. */
export function checkCatalogPrefix(options: { prefix?: unknown } | undefined): void {
  const prefix = options?.prefix === undefined ? '' : options.prefix;
  if (typeof prefix !== 'string' || prefix.length > MAX_REPOSITORY_LENGTH || !/^[a-z0-9._/-]*$/.test(prefix)) {
    throw new StoreError('NAME_INVALID', `invalid repository name prefix ${quote(prefix)}`);
  }
}

/**
 * The range a catalog page reads, for the query `low` ≤ name < `high` and
 * name ≠ `last` (a checked `last`, '' for none): the names after `last`
 * that start with `options.prefix` (checked). Names are ASCII below DEL, so
 * byte order is JavaScript's, the character after the prefix's last one
 * bounds it, and DEL bounds the empty prefix.
 */
export function catalogBounds(options: { prefix?: string } | undefined, last: string): { low: string; high: string } {
  const prefix = options?.prefix ?? '';
  const high = prefix === '' ? '\x7f' : prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  return { low: last > prefix ? last : prefix, high };
}

/** The range of the names inside the namespace `prefix` (`prefix/…`): '0' is the character after '/'. */
export function namespaceBounds(prefix: string): { low: string; high: string } {
  return { low: `${prefix}/`, high: `${prefix}0` };
}

/** @throws StoreError TAG_INVALID when `tag` is not a tag. */
export function checkTag(tag: unknown): string {
  if (isTag(tag)) return tag;
  throw new StoreError('TAG_INVALID', `invalid tag ${quote(tag)}`);
}

/** @throws StoreError DIGEST_INVALID when `digest` is not a sha256 or sha512 digest. */
export function checkDigest(digest: unknown): string {
  if (isDigest(digest)) return digest;
  throw new StoreError('DIGEST_INVALID', `invalid digest ${quote(digest)}`);
}

/** The digest of `bytes` in the form `algorithm:hex`. */
export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/**
 * Checks that `digest` is valid and is the hash of `bytes`.
 * @throws StoreError DIGEST_INVALID on a malformed digest or a mismatch.
 */
export function verifyDigest(digest: unknown, bytes: Uint8Array): string {
  const valid = checkDigest(digest);
  const algorithm = valid.slice(0, valid.indexOf(':')) as DigestAlgorithm;
  if (digestOf(bytes, algorithm) !== valid) {
    throw new StoreError('DIGEST_INVALID', `digest ${valid} does not match the content`);
  }
  return valid;
}

/** A reference in a manifest URL is a tag or a digest. */
export type Reference = { tag: string; digest?: undefined } | { digest: string; tag?: undefined };

/**
 * Parses the `<reference>` of `/v2/<name>/manifests/<reference>`: a digest when it
 * has an algorithm prefix, else a tag.
 * @throws StoreError DIGEST_INVALID or TAG_INVALID.
 */
export function parseReference(reference: unknown): Reference {
  if (typeof reference === 'string' && reference.includes(':')) return { digest: checkDigest(reference) };
  return { tag: checkTag(reference) };
}

/**
 * Checks a reference already split into tag or digest.
 * @throws StoreError DIGEST_INVALID or TAG_INVALID.
 */
export function checkReference(reference: Reference): Reference {
  if (typeof reference !== 'object' || reference === null) throw new StoreError('TAG_INVALID', 'a reference is a tag or a digest');
  return reference.digest !== undefined ? { digest: checkDigest(reference.digest) } : { tag: checkTag(reference.tag) };
}

/** The tag or digest a checked reference names: a string is a digest when it has an algorithm prefix. */
export function referenceOf(reference: string | Reference): Reference {
  if (typeof reference !== 'string') return reference.digest !== undefined ? { digest: reference.digest } : { tag: reference.tag };
  return reference.includes(':') ? { digest: reference } : { tag: reference };
}

// --- patterns ------------------------------------------------------------------
// The patterns of access rules, retention, immutable tags and quotas: one
// grammar for every rule that names repositories or tags.

/** A pattern segment: the repository grammar's characters, and `*`. */
const SEGMENT = /^[a-z0-9._*-]+$/;

/**
 * A repository pattern as an anchored regular expression: `*` matches
 * characters within a segment, a `**` segment any number of whole segments
 * (`acme/**` matches acme/a and acme/a/b, `**` everything).
 * @returns a message when the pattern is malformed.
 */
export function compilePattern(pattern: string): RegExp | string {
  if (pattern === '') return 'an empty pattern';
  const parts = pattern.split('/');
  let source = '';
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (part === '**') {
      if (parts.length === 1) source += '.+';
      else if (i === 0) source += '(?:[^/]+/)*';
      else if (i === parts.length - 1) source += '/.+';
      else source += '/(?:[^/]+/)*';
      continue;
    }
    if (!SEGMENT.test(part)) return `${JSON.stringify(part)} is not a pattern segment (lowercase letters, digits, . _ - and *)`;
    if (part.includes('**')) return `** must be a whole segment, not part of ${JSON.stringify(part)}`;
    const separator = i === 0 || parts[i - 1] === '**' ? '' : '/';
    source += separator + part.replace(/[.]/g, '\\.').replace(/\*/g, '[^/]*');
  }
  return new RegExp(`^${source}$`);
}

/** A tag pattern's characters: the tag grammar's, `*` and `?`. */
const TAG_PATTERN = /^[A-Za-z0-9_.*?-]{1,128}$/;

/**
 * A tag pattern as an anchored regular expression: `*` matches any run of
 * characters (tags have no `/`), `?` one character (`v*`, `release-?.?`).
 * @returns a message when the pattern is malformed.
 */
export function compileTagPattern(pattern: string): RegExp | string {
  if (typeof pattern !== 'string' || !TAG_PATTERN.test(pattern)) {
    return `${quote(pattern)} is not a tag pattern (letters, digits, _ . - and the wildcards * ?)`;
  }
  return new RegExp(`^${pattern.replace(/[.]/g, '\\.').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

/**
 * The namespace of a repository, which quotas and sizes count by: its first
 * path component (`acme` of `acme/team/app`); a one-component name is its
 * own namespace.
 */
export function namespaceOf(name: string): string {
  const slash = name.indexOf('/');
  return slash === -1 ? name : name.slice(0, slash);
}
