// The data sets of the current conformance suite (conformance/run.go's
// GenerateData, testdata.go's generators at 4fc4ecbe): images, indexes,
// artifacts, referrers, descriptors with `data`, custom fields, sha512.
// Made here from that description; nothing is copied from the suite.

import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { digestOf, MT, type Algorithm } from './conformance-client.js';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  data?: string;
  platform?: Platform;
}

export interface Platform {
  os: string;
  architecture: string;
}

export interface GenOptions {
  algo?: Algorithm;
  tag?: string;
  artifactType?: string;
  annotations?: Record<string, string>;
  /** Adds one random annotation, so each manifest is unique. */
  annotationUniq?: boolean;
  configMediaType?: string;
  configBytes?: Buffer;
  layerCount?: number;
  layerMediaType?: string;
  layerBytes?: Buffer;
  /** Gzip the layers (the default) or not. */
  compress?: boolean;
  subject?: Descriptor;
  /** Set `data` on every descriptor. */
  setData?: boolean;
  /** Add a field no spec names to the manifest and config. */
  extraField?: boolean;
  platform?: Platform;
  platforms?: Platform[];
}

const AMD64: Platform = { os: 'linux', architecture: 'amd64' };
const ARM64: Platform = { os: 'linux', architecture: 'arm64' };
const randomText = () => randomBytes(13).toString('base64url');

/** One data set: what to push, in which order, under which tags, and which referrers to expect. */
export class TestData {
  readonly blobs = new Map<string, Buffer>();
  readonly manifests = new Map<string, Buffer>();
  /** Manifests in push order: children before the indexes that list them. */
  readonly manOrder: string[] = [];
  readonly tags = new Map<string, string>();
  readonly desc = new Map<string, Descriptor>();
  readonly referrers = new Map<string, Descriptor[]>();
  /** Per-digest flags: a manifest the registry must refuse (its bytes do not match its digest). */
  readonly badDigest = new Set<string>();
  /** Push every tag as a `?tag=` parameter of its manifest's push by digest (1.1+dev). */
  tagParam = false;

  constructor(readonly name: string) {}

  addBlob(bytes: Buffer, mediaType: string = MT.octet, o: GenOptions = {}): string {
    const digest = digestOf(bytes, o.algo);
    this.blobs.set(digest, bytes);
    this.desc.set(digest, { mediaType, digest, size: bytes.length, ...(o.setData ? { data: bytes.toString('base64') } : {}) });
    return digest;
  }

  genBlob(size = 2048, o: GenOptions = {}, mediaType: string = MT.octet): string {
    return this.addBlob(randomBytes(size), mediaType, o);
  }

  /** A layer: a small file, gzipped unless `compress` is false. Returns the pushed digest and the diff_id. */
  genLayer(n: number, o: GenOptions): { digest: string; diffId: string } {
    const file = Buffer.from(`Conformance test file contents for file number ${n}.\nTodays lucky number is ${randomBytes(6).readUIntBE(0, 6)}\n`);
    const body = o.compress === false ? file : gzipSync(file);
    const digest = this.addBlob(body, o.compress === false ? MT.layer : MT.layerGzip, o);
    return { digest, diffId: digestOf(file, o.algo) };
  }

  genConfig(platform: Platform, diffIds: string[], o: GenOptions): string {
    const config = { author: 'OCI Conformance Test', ...platform, rootfs: { type: 'layers', diff_ids: diffIds } };
    return this.addBlob(Buffer.from(JSON.stringify(withExtraField(config, o))), MT.config, o);
  }

  /** An image manifest over a config and layers already generated. */
  genManifest(config: Descriptor, layers: Descriptor[], o: GenOptions = {}): string {
    const manifest = {
      schemaVersion: 2,
      mediaType: MT.image,
      ...(o.artifactType ? { artifactType: o.artifactType } : {}),
      config,
      layers,
      ...(o.subject ? { subject: o.subject } : {}),
      ...annotationsOf(o),
    };
    return this.addManifest(manifest, o, o.artifactType || config.mediaType);
  }

  /** An image with `layerCount` layers (2) and a config, or an artifact when the media types say so. */
  genManifestFull(o: GenOptions = {}): string {
    const layers: string[] = [];
    const diffIds: string[] = [];
    for (let n = 0; n < (o.layerCount ?? 2); n++) {
      if (o.layerMediaType === undefined || o.layerMediaType.startsWith('application/vnd.oci.image.layer.v1.')) {
        const { digest, diffId } = this.genLayer(n, o);
        layers.push(digest);
        diffIds.push(diffId);
      } else {
        const digest = o.layerBytes ? this.addBlob(o.layerBytes, o.layerMediaType, o) : this.genBlob(2048, o, o.layerMediaType);
        layers.push(digest);
        diffIds.push(digest);
      }
    }
    const config =
      o.configMediaType === undefined || o.configMediaType === MT.config
        ? this.genConfig(o.platform ?? AMD64, diffIds, o)
        : this.addBlob(o.configBytes ?? Buffer.alloc(0), o.configMediaType, o);
    return this.genManifest(this.desc.get(config)!, layers.map((l) => this.desc.get(l)!), o);
  }

  /** An index over manifests already generated, one platform each (null: none). */
  genIndex(platforms: (Platform | null)[], manifests: string[], o: GenOptions = {}): string {
    const index = {
      schemaVersion: 2,
      mediaType: MT.index,
      ...(o.artifactType ? { artifactType: o.artifactType } : {}),
      manifests: manifests.map((m, i) => ({ ...this.desc.get(m)!, ...(platforms[i] ? { platform: platforms[i] } : {}) })),
      ...(o.subject ? { subject: o.subject } : {}),
      ...annotationsOf(o),
    };
    return this.addManifest(index, o, o.artifactType);
  }

  /** An index of one full image per platform (amd64 and arm64 unless given); the options reach the images too. */
  genIndexFull(o: GenOptions = {}): string {
    const platforms = o.platforms ?? [AMD64, ARM64];
    const images = platforms.map((platform) => this.genManifestFull({ ...o, platform }));
    return this.genIndex(platforms, images, o);
  }

  private addManifest(value: Record<string, unknown>, o: GenOptions, artifactType: string | undefined): string {
    const body = Buffer.from(JSON.stringify(withExtraField(value, o)));
    const digest = digestOf(body, o.algo);
    const mediaType = value.mediaType as string;
    this.manifests.set(digest, body);
    this.manOrder.push(digest);
    this.desc.set(digest, { mediaType, digest, size: body.length, ...(o.setData ? { data: body.toString('base64') } : {}) });
    if (o.subject) {
      const list = this.referrers.get(o.subject.digest) ?? [];
      list.push({ mediaType, digest, size: body.length, artifactType, annotations: value.annotations as Record<string, string> | undefined });
      this.referrers.set(o.subject.digest, list);
    }
    if (o.tag) this.tags.set(o.tag, digest);
    return digest;
  }
}

function annotationsOf(o: GenOptions): { annotations?: Record<string, string> } {
  if (!o.annotations && !o.annotationUniq) return {};
  const annotations = { ...o.annotations };
  if (o.annotationUniq) annotations[`org.example.${randomText()}`] = randomText();
  return { annotations };
}

function withExtraField<T extends object>(value: T, o: GenOptions): T {
  return o.extraField ? { ...value, [`org.${randomText()}`]: randomText() } : value;
}

export { AMD64, ARM64 };
