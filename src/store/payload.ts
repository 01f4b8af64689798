// What a manifest's bytes say: its media type and the content it references,
// parsed once, on put, and recorded as rows so that no later read has to
// parse JSON again.
// https://github.com/opencontainers/image-spec/blob/main/manifest.md
// https://github.com/opencontainers/image-spec/blob/main/image-index.md

import { StoreError } from './errors.js';
import { digestOf, isDigest, verifyDigest } from './grammar.js';
import { MAX_MANIFEST_DEPTH } from './limits.js';
import type { Manifest } from './types.js';

/** The manifest media types the store accepts. */
export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

const MANIFEST_TYPES: ReadonlySet<string> = new Set(Object.values(MediaType));
const INDEX_TYPES: ReadonlySet<string> = new Set([MediaType.OciIndex, MediaType.DockerManifestList]);
const IMAGE_TYPES: ReadonlySet<string> = new Set([MediaType.OciManifest, MediaType.DockerManifest]);
// Docker's types always name themselves in the payload; OCI's may leave it out.
const SELF_NAMING: ReadonlySet<string> = new Set([MediaType.DockerManifest, MediaType.DockerManifestList]);

/** What the store records of a manifest beyond its bytes. */
export interface ParsedManifest {
  /** The artifactType a referrers response reports: the manifest's, else its config's media type. */
  artifactType: string | null;
  /** The manifest's annotations as JSON, for the referrers response. */
  annotations: string | null;
  /** The digest of the manifest's `subject`, if any (OCI 1.1). */
  subject: string | null;
  /**
   * Config and layer digests: what the registry must hold. Non-distributable
   * layers (see isForeignLayer) are not among them.
   */
  blobs: string[];
  /** Child manifest digests of an index or manifest list. */
  children: string[];
}

function invalid(message: string, detail?: unknown): never {
  throw new StoreError('MANIFEST_INVALID', message, detail);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks the required fields of a descriptor (image-spec descriptor.md) and returns its digest. */
function descriptorDigest(value: unknown, where: string): string {
  if (!isObject(value)) invalid(`${where} is not a descriptor`);
  if (typeof value.mediaType !== 'string' || value.mediaType === '') invalid(`${where} has no mediaType`);
  if (!isDigest(value.digest)) invalid(`${where} has an invalid digest`, { digest: value.digest });
  if (!Number.isSafeInteger(value.size) || (value.size as number) < 0) invalid(`${where} has an invalid size`);
  return value.digest;
}

function descriptorList(value: unknown, where: string): string[] {
  if (!Array.isArray(value)) invalid(`${where} is not an array`);
  return value.map((d, i) => descriptorDigest(d, `${where}[${i}]`));
}

/**
 * Whether a layer is one the registry need not hold, as distribution decides
 * (its schema2 and ocischema manifest handlers): image-spec's
 * non-distributable layer types (`application/vnd.oci.image.layer.nondistributable.v1.tar…`),
 * Docker's foreign layers (`application/vnd.docker.image.rootfs.foreign.diff.tar.gzip`),
 * and any descriptor with `urls`, which clients fetch from there. Such a
 * manifest must be accepted without those blobs (the conformance suite pushes one).
 */
function isForeignLayer(descriptor: Record<string, unknown>): boolean {
  const type = descriptor.mediaType as string;
  if (type.includes('nondistributable') || type.includes('.rootfs.foreign.')) return true;
  return Array.isArray(descriptor.urls) && descriptor.urls.length > 0;
}

function annotationsOf(value: unknown): string | null {
  if (value === undefined) return null;
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    invalid('annotations must map strings to strings');
  }
  return JSON.stringify(value);
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPENERS: ReadonlySet<number> = new Set([0x5b, 0x7b]); // [ {
const CLOSERS: ReadonlySet<number> = new Set([0x5d, 0x7d]); // ] }

/**
 * Whether `bytes` nest arrays and objects deeper than `limit`, by a scan of
 * the bytes before any parsing (brackets inside strings do not count): deep
 * nesting is refused without building it. Malformed JSON is JSON.parse's to
 * refuse. UTF-8 continuation bytes are all above 0x7f, so never one of these.
 */
function nestsDeeperThan(bytes: Uint8Array, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i];
    if (inString) {
      if (byte === BACKSLASH) i++; // the escaped byte cannot end the string
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) inString = true;
    else if (OPENERS.has(byte)) {
      if (++depth > limit) return true;
    } else if (CLOSERS.has(byte)) depth--;
  }
  return false;
}

// EF BB BF: RFC 8259 tells senders never to add one, and Go's decoder refuses it.
function startsWithBom(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
}

/**
 * Parses and validates a manifest against the media type it was pushed with.
 * @throws StoreError MANIFEST_INVALID when the payload is not JSON (a UTF-8
 * BOM before it included), nests deeper than MAX_MANIFEST_DEPTH, or is not a
 * manifest of that media type.
 */
function parseManifest(mediaType: string, payload: Uint8Array): ParsedManifest {
  const isIndex = INDEX_TYPES.has(mediaType);
  if (!isIndex && !IMAGE_TYPES.has(mediaType)) {
    invalid(`unsupported manifest media type ${JSON.stringify(mediaType.slice(0, 100))}`);
  }
  if (startsWithBom(payload)) invalid('manifest starts with a UTF-8 byte order mark, which JSON decoders such as Go\'s refuse');
  if (nestsDeeperThan(payload, MAX_MANIFEST_DEPTH)) invalid(`manifest nests deeper than ${MAX_MANIFEST_DEPTH} levels`);
  let json: unknown;
  try {
    // ignoreBOM: parse exactly the bytes the digest covers, never fewer.
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(payload));
  } catch {
    invalid('manifest is not UTF-8 JSON');
  }
  if (!isObject(json)) invalid('manifest is not a JSON object');
  if (json.schemaVersion !== 2) invalid('manifest schemaVersion must be 2');
  if (json.mediaType !== undefined || SELF_NAMING.has(mediaType)) {
    if (json.mediaType !== mediaType) {
      invalid(`manifest mediaType ${JSON.stringify(json.mediaType)} does not match ${mediaType}`);
    }
  }
  if (json.artifactType !== undefined && typeof json.artifactType !== 'string') invalid('artifactType must be a string');
  const subject = json.subject === undefined ? null : descriptorDigest(json.subject, 'subject');
  const annotations = annotationsOf(json.annotations);

  if (isIndex) {
    if (json.config !== undefined || json.layers !== undefined) invalid('an index has no config or layers');
    return {
      artifactType: (json.artifactType as string | undefined) ?? null,
      annotations,
      subject,
      blobs: [],
      children: descriptorList(json.manifests, 'manifests'),
    };
  }
  if (json.manifests !== undefined) invalid('an image manifest has no manifests list');
  const config = descriptorDigest(json.config, 'config');
  const layers = descriptorList(json.layers, 'layers').filter((_, i) => !isForeignLayer((json.layers as Record<string, unknown>[])[i]));
  return {
    artifactType: (json.artifactType as string | undefined) ?? ((json.config as { mediaType: string }).mediaType),
    annotations,
    subject,
    blobs: [config, ...layers],
    children: [],
  };
}

/**
 * The media type a manifest was pushed as: its Content-Type when that names
 * a manifest type (parameters and case aside), else (no header, or a
 * generic one such as text/plain) the manifest type the payload names in its
 * own mediaType field. Only that fallback reads the payload.
 * @throws StoreError MANIFEST_INVALID when neither names a manifest type.
 */
export function pushedMediaType(contentType: string | undefined, payload: Uint8Array): string {
  const declared = contentType?.split(';')[0].trim().toLowerCase();
  if (declared && MANIFEST_TYPES.has(declared)) return declared;
  try {
    const text = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');
    const named = (JSON.parse(text) as { mediaType?: unknown }).mediaType;
    if (typeof named === 'string' && MANIFEST_TYPES.has(named)) return named;
  } catch {
    // Not JSON: refused below.
  }
  invalid(`unsupported manifest media type ${JSON.stringify((declared ?? '').slice(0, 100))}: send a manifest type as Content-Type`);
}

/** A manifest checked and parsed, ready to insert. */
export interface CheckedManifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
  parsed: ParsedManifest;
}

/**
 * What putManifest checks before it takes any lock, on either backend: the
 * shape of the argument, the size limit, the digest against the bytes, and
 * the manifest against its media type.
 * @throws StoreError MANIFEST_INVALID, SIZE_INVALID, DIGEST_INVALID.
 */
export function checkManifest(maxManifestSize: number, digest: string | undefined, manifest: Manifest): CheckedManifest {
  if (typeof manifest !== 'object' || manifest === null || !(manifest.payload instanceof Uint8Array)) {
    throw new StoreError('MANIFEST_INVALID', 'a manifest needs a payload of bytes');
  }
  if (typeof manifest.mediaType !== 'string') throw new StoreError('MANIFEST_INVALID', 'a manifest needs a mediaType');
  const { mediaType, payload } = manifest;
  const limit = maxManifestSize;
  if (payload.byteLength > limit) {
    throw new StoreError('SIZE_INVALID', `manifest of ${payload.byteLength} bytes is above the limit of ${limit}`);
  }
  const valid = digest === undefined ? digestOf(payload) : verifyDigest(digest, payload);
  const parsed = parseManifest(mediaType, payload);
  return { digest: valid, mediaType, bytes: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), parsed };
}
