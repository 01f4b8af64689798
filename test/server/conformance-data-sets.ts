// The data sets the current conformance suite pushes, pulls and deletes, in its
// order (run.go's GenerateData at 4fc4ecbe, with the 1.1 defaults: every set but
// "sparse"; the tag-param sets only under 1.1+dev).

import { randomBytes } from 'node:crypto';
import { digestOf, MT } from './conformance-client.js';
import { AMD64, ARM64, TestData, type GenOptions } from './conformance-data.js';

const EMPTY_JSON = Buffer.from('{}');
const artifactOf = (layerMediaType: string): GenOptions => ({
  configMediaType: MT.empty,
  configBytes: EMPTY_JSON,
  layerCount: 1,
  layerMediaType,
});
const HELLO = { 'org.opencontainers.conformance': 'hello conformance test' };

function set(name: string, build: (td: TestData) => void): TestData {
  const td = new TestData(name);
  build(td);
  return td;
}

/** The image with two non-distributable layers (never pushed, with urls) and one ordinary layer. */
function nonDistributable(td: TestData): void {
  const foreign = (mediaType: string, size: number) => {
    const digest = digestOf(randomBytes(256));
    return { mediaType, digest, size, urls: [`https://store.example.com/blobs/sha256/${digest.slice(7)}`] };
  };
  const layers = [foreign(MT.layerNdGzip, 123456), foreign(MT.layerNd, 12345)];
  const plain = td.genLayer(1, {});
  const config = td.genConfig(AMD64, [digestOf(randomBytes(256)), layers[1].digest, plain.diffId], {});
  td.genManifest(td.desc.get(config)!, [...layers, td.desc.get(plain.digest)!], { tag: 'non-distributable-image' });
}

/** Every data set of the suite, for the given configuration. */
export function dataSets(tagParam: boolean): TestData[] {
  const sets = [
    set('Image', (td) => td.genManifestFull({ tag: 'image' })),
    set('Image Uncompressed', (td) => td.genManifestFull({ tag: 'image-uncompressed', compress: false })),
    set('Image with Large Manifest', (td) => {
      const annotations: Record<string, string> = {};
      for (let i = 0; i < 390; i++) annotations[`large-annotation-${i}`] = 'A'.repeat(10000);
      td.genManifestFull({ tag: 'large-manifest', annotations });
    }),
    set('Index', (td) => td.genIndexFull({ tag: 'index' })),
    set('Nested Index', (td) => {
      const children = [td.genIndexFull(), td.genIndexFull()];
      td.genIndex([null, null], children, { tag: 'index-of-index' });
    }),
    set('Empty Index', (td) => td.genIndexFull({ tag: 'index', platforms: [] })),
    set('Artifact', (td) => td.genManifestFull({ tag: 'artifact', artifactType: MT.example1, ...artifactOf(MT.example1) })),
    set('Artifact Index', (td) =>
      td.genIndexFull({ tag: 'artifact-index', platforms: [AMD64, ARM64], artifactType: MT.example1, ...artifactOf(MT.example1) }),
    ),
    set('Artifact without Layers', (td) =>
      td.genManifestFull({ tag: 'artifact-without-layers', artifactType: MT.example1, ...artifactOf(MT.empty), layerBytes: EMPTY_JSON }),
    ),
    set('Artifacts with Subject', (td) => {
      const subject = td.desc.get(td.genManifestFull({ tag: 'image' }))!;
      td.genManifestFull({ subject });
      const referrer: GenOptions = { annotations: HELLO, annotationUniq: true, subject };
      td.genManifestFull({ ...referrer, artifactType: MT.example1, ...artifactOf(MT.example1), tag: 'tagged-artifact1' });
      td.genManifestFull({ ...referrer, artifactType: MT.example2, ...artifactOf(MT.octet), tag: 'tagged-artifact2' });
    }),
    set('Index with Subject', (td) => {
      const subject = td.desc.get(td.genIndexFull({ tag: 'index' }))!;
      td.genIndexFull({ artifactType: MT.example1, annotations: HELLO, annotationUniq: true, ...artifactOf(MT.example1), subject, tag: 'tagged-artifact' });
    }),
    set('Missing Subject', (td) => {
      const subject = { mediaType: MT.image, size: 123, digest: digestOf('missing content') };
      td.genManifestFull({ artifactType: MT.example1, annotations: HELLO, annotationUniq: true, ...artifactOf(MT.example1), subject, tag: 'tagged-artifact' });
    }),
    set('Data Field', (td) => td.genManifestFull({ tag: 'data-field', setData: true })),
    set('Non-distributable Layers', nonDistributable),
    set('Custom Fields', (td) => td.genIndexFull({ tag: 'custom-fields', extraField: true })),
    set('No Layers', (td) => td.genManifestFull({ tag: 'no-layers', layerCount: 0 })),
    // Non-canonical digests need the tag parameter to be tagged, so this set is pushed by digest only.
    set('Digest Algorithm sha512', (td) => td.genIndexFull({ algo: 'sha512' })),
  ];
  if (tagParam) {
    // The index has two tags; every manifest is tagged by parameters of its push by digest.
    for (const [name, algo] of [['sha256', 'sha256'], ['sha512', 'sha512']] as const) {
      sets.push(
        set(algo === 'sha256' ? 'Tag Param' : 'Tag Param sha512', (td) => {
          td.genIndexFull({ tag: `tag-param-${name}`, algo });
          td.manOrder.forEach((digest, i) => td.tags.set(`tag-param-${name}-${i}`, digest));
          td.tagParam = true;
        }),
      );
    }
  }
  sets.push(
    set('Bad Digest Image', (td) => {
      const digest = td.genManifestFull();
      // Whitespace after the JSON: the bytes no longer match the digest they are pushed under.
      td.manifests.set(digest, Buffer.concat([td.manifests.get(digest)!, Buffer.from('  ')]));
      td.badDigest.add(digest);
    }),
  );
  return sets;
}
