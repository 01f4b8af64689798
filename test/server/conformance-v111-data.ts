// The test data of the v1.1.1 conformance workflows (conformance/setup.go at
// b5f09ebe): per workflow a config and an image manifest whose config
// descriptor carries `data` and an unspecified field, one gzip layer, two
// random blobs for the push flows, and the referrers of content discovery.
// Made here from the description in setup.go; nothing is copied from it.

import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { digestOf, MT } from './conformance-client.js';

export interface Blob {
  content: Buffer;
  digest: string;
}

function blob(content: Buffer | string): Blob {
  const bytes = Buffer.from(content);
  return { content: bytes, digest: digestOf(bytes) };
}

const descriptor = (mediaType: string, b: Blob) => ({ mediaType, digest: b.digest, size: b.content.length });
/** Indented with tabs, as the suite marshals: the registry must keep the bytes as they came. */
const marshal = (value: unknown) => blob(JSON.stringify(value, null, '\t'));

/** Five workflows' worth of configs and manifests (setup.go makes one per workflow bit; 0..4 are used). */
const WORKFLOWS = 5;

export const layer = blob(gzipSync(Buffer.from('you bothered to find out what was in here. Congratulations!\n')));

export const configs: Blob[] = Array.from({ length: WORKFLOWS }, () =>
  marshal({
    architecture: 'amd64',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [] },
    // A fresh author per run makes each config, and so each manifest, unique.
    author: randomBytes(12).toString('base64url'),
  }),
);

function configDescriptor(config: Blob) {
  return {
    ...descriptor(MT.config, config),
    // The config's own bytes in `data`, and a field the spec does not name: both must pass through.
    data: config.content.toString('base64'),
    newUnspecifiedField: Buffer.from('hello world').toString('base64'),
  };
}

export const manifests: Blob[] = configs.map((config) =>
  marshal({ schemaVersion: 2, mediaType: MT.image, config: configDescriptor(config), layers: [descriptor(MT.layerGzip, layer)] }),
);

/** An image manifest with no layers and no mediaType field (its Content-Type names it). */
export const emptyLayerManifest = marshal({ schemaVersion: 2, config: configDescriptor(configs[1]), layers: [] });

export const nonexistentManifest = '.INVALID_MANIFEST_NAME';
export const invalidManifestContent = 'blablabla';
export const dummyDigest = digestOf('hello world');

export const testBlobA = blob(randomBytes(42));
export const testBlobB = blob(randomBytes(42));
/** testBlobB in two chunks, the first one byte past half (setupChunkedBlob). */
export const chunk1 = testBlobB.content.subarray(0, 22);
export const chunk2 = testBlobB.content.subarray(22);
export const chunk1Range = `0-${chunk1.length - 1}`;
export const chunk2Range = `${chunk1.length}-${testBlobB.content.length - 1}`;

// --- content discovery: referrers of manifests[4], and one of manifests[3] (not pushed then) ---

export const emptyJSON = blob('{}');
export const refBlobA = blob('conformance referrer blob A');
export const refBlobB = blob('conformance referrer blob B');
export const artifactTypeA = 'application/vnd.conformance.a';
export const artifactTypeB = 'application/vnd.conformance.b';
export const annotationKey = 'org.opencontainers.conformance.test';

const subjectOf = (m: Blob) => descriptor(MT.image, m);
const emptyDescriptor = descriptor(MT.empty, emptyJSON);

function configArtifact(type: string, content: Blob, label: string) {
  return marshal({
    schemaVersion: 2,
    mediaType: MT.image,
    config: descriptor(type, content),
    subject: subjectOf(manifests[4]),
    layers: [emptyDescriptor],
    annotations: { [annotationKey]: label },
  });
}

function layerArtifact(type: string, content: Blob, subject: Blob, label?: string) {
  return marshal({
    schemaVersion: 2,
    mediaType: MT.image,
    artifactType: type,
    config: emptyDescriptor,
    subject: subjectOf(subject),
    layers: [descriptor(type, content)],
    ...(label === undefined ? {} : { annotations: { [annotationKey]: label } }),
  });
}

export const refs = {
  aConfig: configArtifact(artifactTypeA, refBlobA, 'test config a'),
  bConfig: configArtifact(artifactTypeB, refBlobB, 'test config b'),
  aLayer: layerArtifact(artifactTypeA, refBlobA, manifests[4], 'test layer a'),
  bLayer: layerArtifact(artifactTypeB, refBlobB, manifests[4], 'test layer b'),
  /** Like bLayer, but its subject (manifests[3]) is not in the registry when it is pushed. */
  cLayer: layerArtifact(artifactTypeB, refBlobB, manifests[3]),
};

export const refsIndex = marshal({
  schemaVersion: 2,
  mediaType: MT.index,
  artifactType: 'application/vnd.conformance.index',
  manifests: [descriptor(MT.image, refs.aConfig), descriptor(MT.image, refs.aLayer)],
  subject: subjectOf(manifests[4]),
  annotations: { [annotationKey]: 'test index' },
});

/** The annotation each referrer of manifests[4] carries, by digest. */
export const annotationValues: Record<string, string> = Object.fromEntries(
  [refs.aConfig, refs.bConfig, refs.aLayer, refs.bLayer, refsIndex].map((b) => [b.digest, JSON.parse(b.content.toString()).annotations[annotationKey]]),
);
