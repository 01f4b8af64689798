// Test helpers: a registry on port 0 over a temp data directory, and small
// clients for pushing blobs and manifests over real HTTP.

import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openStore, type MetadataStore, type StoreOptions } from 'regmeta';
import { closeRegistry, createRegistry, type FaultContext, type RegistryOptions, type RequestLogEntry } from 'regmeta/server';
import type { Descriptor } from '../../src/index.js';
import { startS3Server, type S3Server } from '../blobstore/s3/server.js';

export interface TestRegistry {
  url: string;
  dataDir: string;
  store: MetadataStore;
  server: Server;
  logs: RequestLogEntry[];
  errors: unknown[];
  /** The request each of `errors` happened in, when there was one. */
  faults: (FaultContext | undefined)[];
  close(): Promise<void>;
}

/**
 * Starts a registry on 127.0.0.1:0 over a fresh temp directory (or
 * `options.dataDir`, which the caller keeps owning), or over the store and
 * directory of another test registry (`on`, which keeps owning them). A
 * store of its own is opened with `storeOptions`.
 */
export async function startRegistry(
  options: Partial<Omit<RegistryOptions, 'store'>> = {},
  on?: TestRegistry,
  storeOptions: StoreOptions = {},
): Promise<TestRegistry> {
  const owned = on === undefined && options.dataDir === undefined;
  const dataDir = on?.dataDir ?? options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'regmeta-server-'));
  const store = on?.store ?? openStore(path.join(dataDir, 'metadata.db'), { durability: 'normal', pollInterval: 20, ...storeOptions });
  const logs: RequestLogEntry[] = [];
  const errors: unknown[] = [];
  const faults: (FaultContext | undefined)[] = [];
  const server = createRegistry({
    store,
    dataDir,
    log: (entry) => logs.push(entry),
    onError: (error, request) => {
      errors.push(error);
      faults.push(request);
    },
    ...options,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    dataDir,
    store,
    server,
    logs,
    errors,
    faults,
    async close() {
      await closeRegistry(server, 2000);
      if (on) return;
      store.close();
      if (owned) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const EMPTY_CONFIG = 'application/vnd.oci.empty.v1+json';

/** Pushes `bytes` to `repo` in one POST; returns the digest. */
export async function pushBlob(url: string, repo: string, bytes: Uint8Array | string, init: RequestInit = {}): Promise<string> {
  const digest = sha256(bytes);
  const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream', ...(init.headers as Record<string, string>) },
    body: bytes,
  });
  if (res.status !== 201) throw new Error(`blob push: ${res.status} ${await res.text()}`);
  return digest;
}

export function descriptor(mediaType: string, bytes: Uint8Array | string, extra: Partial<Descriptor> = {}): Descriptor {
  return { mediaType, digest: sha256(bytes), size: Buffer.byteLength(bytes), ...extra };
}

/** An OCI image manifest over a config and layers (bytes not pushed). */
export function imageManifest(
  config: string,
  layers: string[],
  extra: { subject?: Descriptor; artifactType?: string; annotations?: Record<string, string>; configType?: string } = {},
): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    ...(extra.artifactType ? { artifactType: extra.artifactType } : {}),
    config: descriptor(extra.configType ?? 'application/vnd.oci.image.config.v1+json', config),
    layers: layers.map((layer) => descriptor('application/vnd.oci.image.layer.v1.tar', layer)),
    ...(extra.subject ? { subject: extra.subject } : {}),
    ...(extra.annotations ? { annotations: extra.annotations } : {}),
  });
}

/** Pushes a config and layers, then the manifest under `reference`; returns the manifest and its digest. */
export async function pushImage(
  url: string,
  repo: string,
  reference: string,
  seed: string,
  extra: Parameters<typeof imageManifest>[2] = {},
): Promise<{ manifest: string; digest: string; config: string; layer: string }> {
  const config = JSON.stringify({ architecture: 'amd64', os: 'linux', seed });
  const layer = `layer of ${seed}`;
  await pushBlob(url, repo, config);
  await pushBlob(url, repo, layer);
  const manifest = imageManifest(config, [layer], extra);
  const res = await putManifest(url, repo, reference, manifest);
  if (res.status !== 201) throw new Error(`manifest push: ${res.status} ${await res.text()}`);
  return { manifest, digest: sha256(manifest), config, layer };
}

export function putManifest(url: string, repo: string, reference: string, body: string | Uint8Array, mediaType = OCI_MANIFEST, headers: Record<string, string> = {}) {
  return fetch(`${url}/v2/${repo}/manifests/${reference}`, {
    method: 'PUT',
    headers: { 'Content-Type': mediaType, ...headers },
    body,
  });
}

/** The OCI error code of an error response. */
export async function errorCode(res: Response): Promise<string> {
  const body = (await res.json()) as { errors: { code: string }[] };
  return body.errors[0].code;
}

/** A place a suite's registries keep blobs in: its name, and startRegistry's options for it. */
export interface BlobStorage {
  name: string;
  options: () => Promise<Parameters<typeof startRegistry>[0]>;
}

/**
 * A directory, and a bucket under `prefix` of a test S3 server started on
 * first use: what a suite runs over with describe.each. `cleanup` stops the
 * server.
 */
export function blobStorages(prefix: string): { storages: BlobStorage[]; cleanup: () => Promise<void> } {
  let s3: S3Server | undefined;
  return {
    storages: [
      { name: 'a directory', options: async () => ({}) },
      {
        name: 'S3',
        options: async () => {
          s3 ??= await startS3Server();
          return { storage: { ...s3.options, prefix } };
        },
      },
    ],
    cleanup: async () => {
      await s3?.cleanup();
    },
  };
}
