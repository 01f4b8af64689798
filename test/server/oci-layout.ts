// Builds OCI image layouts on disk (image-spec image-layout.md) for the real
// client tests: random small layers (tar.gz or bare random bytes) with correct
// descriptors, an image config whose diff_ids match, image manifests, and a
// multi-architecture index, all tagged through index.json's ref.name.

import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export const OCI = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerTarGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  octetStream: 'application/octet-stream',
} as const;

const REF_NAME = 'org.opencontainers.image.ref.name';

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

/** An OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
}

/** An image manifest written into a layout, with the descriptors it names. */
export interface BuiltImage {
  descriptor: Descriptor;
  bytes: Buffer;
  config: Descriptor;
  layers: Descriptor[];
}

/** An image index written into a layout, with its child images. */
export interface BuiltIndex {
  descriptor: Descriptor;
  bytes: Buffer;
  images: BuiltImage[];
}

export interface ImageOptions {
  /** How many layers (default 2). */
  layers?: number;
  /** 'tar.gz' (default): gzipped tar archives of random files; 'raw': random bytes as octet-stream. */
  layerKind?: 'tar.gz' | 'raw';
  /** Bytes of random content per layer (default 4096). */
  layerSize?: number;
  platform?: Platform;
}

export function sha256(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** A one-file ustar archive (two zero blocks at the end), enough for a layer. */
export function tarOneFile(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string) => header.write(value, offset, length, 'ascii');
  const octal = (n: number, width: number) => n.toString(8).padStart(width - 1, '0') + '\0';
  field(0, 100, name);
  field(100, 8, octal(0o644, 8));
  field(108, 8, octal(0, 8));
  field(116, 8, octal(0, 8));
  field(124, 12, octal(content.length, 12));
  field(136, 12, octal(0, 12));
  field(148, 8, '        '); // checksum counts as spaces while summing
  field(156, 1, '0');
  field(257, 6, 'ustar\0');
  field(263, 2, '00');
  let sum = 0;
  for (const byte of header) sum += byte;
  field(148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, pad, Buffer.alloc(1024)]);
}

/** An OCI image layout directory being written. */
export class OciLayout {
  readonly dir: string;
  private readonly refs: Descriptor[] = [];

  /** Creates the layout skeleton in `dir` (which may exist and be empty). */
  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    this.writeIndex();
  }

  /** Stores `bytes` as a blob and returns its descriptor. */
  addBlob(bytes: Buffer, mediaType: string): Descriptor {
    const digest = sha256(bytes);
    writeFileSync(join(this.dir, 'blobs', 'sha256', digest.slice(7)), bytes);
    return { mediaType, digest, size: bytes.length };
  }

  /** Writes an image (random layers, config, manifest) and returns it. */
  addImage(options: ImageOptions = {}): BuiltImage {
    const { layers: count = 2, layerKind = 'tar.gz', layerSize = 4096 } = options;
    const platform = options.platform ?? { architecture: 'amd64', os: 'linux' };
    const layers: Descriptor[] = [];
    const diffIds: string[] = [];
    for (let i = 0; i < count; i++) {
      const content = randomBytes(layerSize);
      if (layerKind === 'raw') {
        layers.push(this.addBlob(content, OCI.octetStream));
        diffIds.push(sha256(content));
      } else {
        const tar = tarOneFile(`file-${i}.bin`, content);
        layers.push(this.addBlob(gzipSync(tar), OCI.layerTarGzip));
        diffIds.push(sha256(tar));
      }
    }
    const configJson = {
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: { Env: ['PATH=/usr/bin'], Labels: { 'test.nonce': randomBytes(8).toString('hex') } },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: layers.map(() => ({ created_by: 'oci-layout.ts' })),
    };
    const config = this.addBlob(Buffer.from(JSON.stringify(configJson)), OCI.config);
    const manifest = { schemaVersion: 2, mediaType: OCI.manifest, config, layers };
    const bytes = Buffer.from(JSON.stringify(manifest, null, 2));
    const descriptor = { ...this.addBlob(bytes, OCI.manifest), platform };
    return { descriptor, bytes, config, layers };
  }

  /** Writes one image per platform and an index over them. */
  addIndex(platforms: Platform[], options: Omit<ImageOptions, 'platform'> = {}): BuiltIndex {
    const images = platforms.map((platform) => this.addImage({ ...options, platform }));
    const index = { schemaVersion: 2, mediaType: OCI.index, manifests: images.map((image) => image.descriptor) };
    const bytes = Buffer.from(JSON.stringify(index, null, 2));
    return { descriptor: this.addBlob(bytes, OCI.index), bytes, images };
  }

  /** Names `descriptor` `tag` in index.json, so that `oci:<dir>:<tag>` finds it. */
  tag(descriptor: Descriptor, tag: string): void {
    const { platform: _platform, ...plain } = descriptor;
    this.refs.push({ ...plain, annotations: { ...plain.annotations, [REF_NAME]: tag } });
    this.writeIndex();
  }

  private writeIndex(): void {
    const index = { schemaVersion: 2, mediaType: OCI.index, manifests: this.refs };
    writeFileSync(join(this.dir, 'index.json'), JSON.stringify(index, null, 2));
  }
}

/** Reads a layout's index.json and finds the descriptor tagged `tag`. */
export function resolveTag(dir: string, tag: string): Descriptor {
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const found = index.manifests.find((d) => d.annotations?.[REF_NAME] === tag);
  if (!found) throw new Error(`no ${tag} in ${dir}/index.json`);
  return found;
}

/** The bytes of a blob in a layout. @throws when the blob is absent. */
export function readBlob(dir: string, digest: string): Buffer {
  const [algorithm, hex] = digest.split(':');
  return readFileSync(join(dir, 'blobs', algorithm, hex));
}

/** Every blob digest in a layout (sha256 only, which is all the builder writes). */
export function listBlobs(dir: string): string[] {
  const folder = join(dir, 'blobs', 'sha256');
  if (!existsSync(folder)) return [];
  return readdirSync(folder).map((hex) => `sha256:${hex}`).sort();
}
