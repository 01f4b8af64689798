// What a manifest says about the content it references: parsed once, on put,
// and recorded as rows so that no later read has to parse JSON again.
// https://github.com/opencontainers/image-spec/blob/main/manifest.md
// https://github.com/opencontainers/image-spec/blob/main/image-index.md

import { StoreError } from './errors.js';
import { isDigest } from './grammar.js';

/** The manifest media types the store accepts. */
export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

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
  /** Config and layer digests. */
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

function annotationsOf(value: unknown): string | null {
  if (value === undefined) return null;
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    invalid('annotations must map strings to strings');
  }
  return JSON.stringify(value);
}

/**
 * Parses and validates a manifest against the media type it was pushed with.
 * @throws StoreError MANIFEST_INVALID when the payload is not JSON, or is not a
 * manifest of that media type.
 */
export function parseManifest(mediaType: string, payload: Uint8Array): ParsedManifest {
  const isIndex = INDEX_TYPES.has(mediaType);
  if (!isIndex && !IMAGE_TYPES.has(mediaType)) {
    invalid(`unsupported manifest media type ${JSON.stringify(mediaType.slice(0, 100))}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
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
  const layers = descriptorList(json.layers, 'layers');
  return {
    artifactType: (json.artifactType as string | undefined) ?? ((json.config as { mediaType: string }).mediaType),
    annotations,
    subject,
    blobs: [config, ...layers],
    children: [],
  };
}
