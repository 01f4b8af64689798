// Several `regmeta serve` replicas on one PostgreSQL database and one blob
// directory, or one S3 bucket prefix with a data directory each (no shared
// directory), for the replica tests: starting them, reading what they
// answered from their request logs, small images pushed over HTTP with
// every answer kept, and the real CLI's view of the store.

import { execFile } from 'node:child_process';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { descriptor, imageManifest, OCI_MANIFEST, putManifest, sha256 } from '../server/helpers.js';
import { startS3Server, type S3Server } from '../blobstore/s3/server.js';
import { startPostgres, type PostgresOptions, type PostgresServer } from '../store/postgres/server.js';
import { regmeta, serve, tempDir, type Served } from './run.js';

/** Where a cluster's blobs are: one directory all replicas share, or one S3 bucket prefix. */
export type StorageKind = 'directory' | 's3';

/** Every kind, for describe.each. */
export const STORAGES: StorageKind[] = ['directory', 's3'];

/** A cluster: its database, its blob directory (on S3 a directory no replica uses), its replicas, and the --storage arguments every command on it takes. */
export interface Cluster {
  database: string;
  data: string;
  all: Served[];
  storage: string[];
}

/** What a replica test file works with: see replicaSuite. */
export interface ReplicaSuite {
  /** A fresh database and blob directory (or bucket prefix), with `n` replicas started on them, `args` added to each one's `regmeta serve`. */
  cluster(n: number, args?: string[]): Promise<Cluster>;
  /** `n` more replicas on a cluster's database and blobs (on S3, each with a data directory of its own), `args` added to each one's `regmeta serve`. */
  more(database: string, data: string, n: number, args?: string[]): Promise<Served[]>;
  /** The test S3 server (storage 's3' only; to stop and start it). */
  s3(): S3Server;
  /** A temporary directory, removed after the file's tests. */
  dir(prefix: string): string;
  /** The PostgreSQL server under every cluster (to kill and restart it). */
  server(): PostgresServer;
}

/**
 * A PostgreSQL server started before a test file's tests and stopped after
 * them, with every replica and directory they made. Call at the file's top.
 */
export function replicaSuite(options: PostgresOptions & { storage?: StorageKind } = {}): ReplicaSuite {
  const { storage: kind = 'directory', ...postgresOptions } = options;
  let postgres: PostgresServer | undefined;
  let s3: S3Server | undefined;
  const dirs: string[] = [];
  const replicas: Served[] = [];
  /** Each database's --storage arguments: a bucket prefix of its own, so that one cluster's gc never sees another's blobs. */
  const storageOf = new Map<string, string[]>();
  beforeAll(async () => {
    [postgres, s3] = await Promise.all([startPostgres(postgresOptions), kind === 's3' ? startS3Server() : undefined]);
  });
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    await Promise.all([postgres?.stop(), s3?.cleanup()]);
  });
  const suite: ReplicaSuite = {
    async cluster(n, args = []) {
      const database = await postgres!.createDatabase();
      const storage = s3 ? ['--storage', `s3://${s3.bucket}/cluster-${storageOf.size}?endpoint=${s3.endpoint}&forcePathStyle=true`] : [];
      storageOf.set(database, storage);
      const data = suite.dir('regmeta-replicas-');
      return { database, data, storage, all: await suite.more(database, data, n, args) };
    },
    async more(database, data, n, args = []) {
      const storage = storageOf.get(database) ?? [];
      // Started at once: their migrations race on the advisory lock.
      const started = await Promise.all(
        Array.from({ length: n }, () => serve(s3 ? suite.dir('regmeta-replica-') : data, ['--database', database, ...storage, ...args])),
      );
      replicas.push(...started);
      return started;
    },
    s3() {
      if (!s3) throw new Error('this replica suite keeps its blobs in a directory');
      return s3;
    },
    dir(prefix) {
      const dir = tempDir(prefix);
      dirs.push(dir);
      return dir;
    },
    server() {
      return postgres!;
    },
  };
  return suite;
}

/** One line of a replica's request log. */
export interface Answered {
  method: string;
  path: string;
  status: number;
}

/** What a replica answered so far, from its request log on stdout. */
export function answers(replica: Served): Answered[] {
  const found: Answered[] = [];
  for (const line of replica.stdout().split('\n')) {
    if (!line.startsWith('{')) continue;
    const record = JSON.parse(line) as { msg?: string } & Answered;
    if (record.msg === 'request') found.push({ method: record.method, path: record.path, status: record.status });
  }
  return found;
}

/** The answers of 500 and above a replica logged. */
export function serverErrors(replica: Served): Answered[] {
  return answers(replica).filter((a) => a.status >= 500);
}

/** A small image: a config and `own` layers unique to `seed` (after `shared` layers), and its manifest. */
export interface Image {
  seed: string;
  blobs: string[];
  manifest: string;
  digest: string;
}

export function makeImage(seed: string, shared: string[] = [], own = 1): Image {
  const config = JSON.stringify({ architecture: 'amd64', os: 'linux', seed });
  const layers = [...shared, ...Array.from({ length: own }, (_, i) => `layer ${i} of ${seed}`)];
  const manifest = imageManifest(config, layers);
  return { seed, blobs: [config, ...layers], manifest, digest: sha256(manifest) };
}

/** An answer a test keeps: the status, and the OCI error code when there is one. */
export interface Answer {
  status: number;
  code?: string;
}

/** The status of `res`, and its OCI error code when there is one; the body is read. */
export async function answerOf(res: Response): Promise<Answer> {
  const text = await res.text();
  if (res.status < 400) return { status: res.status };
  try {
    return { status: res.status, code: (JSON.parse(text) as { errors: { code: string }[] }).errors[0].code };
  } catch {
    return { status: res.status };
  }
}

/** POSTs `bytes` as a monolithic upload; the answer, never a throw for a status. */
export async function postBlob(url: string, repo: string, bytes: string | Uint8Array, signal?: AbortSignal): Promise<Answer> {
  const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${sha256(bytes)}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: bytes,
    signal,
  });
  return answerOf(res);
}

/** The answers of one push: each blob's, then the manifest's (absent when a blob failed). */
export interface Pushed {
  blobs: Answer[];
  manifest?: Answer;
}

/** Pushes an image's blobs, then its manifest under `reference`, as a client does; stops at the first blob not created. */
export async function pushTo(url: string, repo: string, reference: string, image: Image): Promise<Pushed> {
  const blobs: Answer[] = [];
  for (const bytes of image.blobs) {
    const answer = await postBlob(url, repo, bytes);
    blobs.push(answer);
    if (answer.status !== 201) return { blobs };
  }
  return { blobs, manifest: await answerOf(await putManifest(url, repo, reference, image.manifest)) };
}

/** Whether a push was acknowledged: every answer 201. */
export function acknowledged(pushed: Pushed): boolean {
  return pushed.blobs.every((a) => a.status === 201) && pushed.manifest?.status === 201;
}

/**
 * Whether `image` pulls whole from `url` as `repo:reference`: the exact
 * manifest bytes, and every blob it references with its digest.
 * @returns what is wrong, or '' when nothing is.
 */
export async function pullProblem(url: string, repo: string, reference: string, image: Image): Promise<string> {
  const res = await fetch(`${url}/v2/${repo}/manifests/${reference}`, { headers: { Accept: OCI_MANIFEST } });
  if (res.status !== 200) return `${repo}:${reference} answered ${res.status} at ${url}`;
  const body = Buffer.from(await res.arrayBuffer());
  if (!body.equals(Buffer.from(image.manifest))) return `${repo}:${reference} at ${url} is not ${image.digest}`;
  for (const bytes of image.blobs) {
    const { digest } = descriptor('', bytes);
    const blob = await fetch(`${url}/v2/${repo}/blobs/${digest}`);
    if (blob.status !== 200) return `blob ${digest} of ${repo}:${reference} answered ${blob.status} at ${url}`;
    if (sha256(Buffer.from(await blob.arrayBuffer())) !== digest) return `blob ${digest} of ${repo}:${reference} at ${url} has other bytes`;
  }
  return '';
}

/** A TAG event as `regmeta events --json` prints it. */
export interface TagEvent {
  type: 'CREATE' | 'UPDATE' | 'DELETE';
  tag: string;
  digest?: string;
  previousDigest?: string;
}

/** The TAG events of `repo`, through the real CLI, in commit order (it prints newest first). */
export async function tagEvents(database: string, repo: string): Promise<TagEvent[]> {
  const run = await regmeta(['events', '--database', database, '--json', '--object', 'TAG', '--repo', repo, '--limit', '0']);
  if (run.status !== 0) throw new Error(`regmeta events: ${run.stderr}`);
  return (JSON.parse(run.stdout) as TagEvent[]).reverse();
}

/** `regmeta <args> --database <database> --json`, parsed; throws with its stderr when it fails. */
export async function cliJson<T>(database: string, args: string[]): Promise<T> {
  const run = await regmeta([...args, '--database', database, '--json']);
  if (run.status !== 0) throw new Error(`regmeta ${args.join(' ')} exited ${run.status}: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}

/** Resolves once `condition` holds, looking every 20 ms; rejects after `seconds`. */
export async function until(condition: () => boolean | Promise<boolean>, what: string, seconds = 90): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The size of the biggest file under <data>/uploads: an upload a replica is receiving. */
export function biggestUpload(data: string): number {
  let biggest = 0;
  for (const name of readdirSync(join(data, 'uploads'))) {
    try {
      biggest = Math.max(biggest, statSync(join(data, 'uploads', name)).size);
    } catch {
      // finished (renamed) or cancelled meanwhile
    }
  }
  return biggest;
}

/** A skopeo run: exit code and output. */
export interface SkopeoRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs skopeo with an empty auth file, so nothing from $HOME leaks in; rejects with its stderr when it fails. */
export function skopeo(authFile: string, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'skopeo',
      args,
      { env: { ...process.env, REGISTRY_AUTH_FILE: authFile }, maxBuffer: 64 << 20, timeout: 120_000 },
      (error, stdout, stderr) => (error ? reject(new Error(`skopeo ${args.join(' ')}: ${error.message}\n${stderr}`)) : resolve(stdout)),
    );
  });
}
