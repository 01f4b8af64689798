// The bucket as the S3 blob store uses it: a few calls of the AWS SDK,
// which is loaded on first use (a registry on a directory, and `import
// 'regmeta'`, load none of it), with the failures every caller treats alike
// turned into the blob store's errors: a missing object is an answer, an
// unreachable, slow, throttling or failing service is STORAGE_UNAVAILABLE.
// Credentials come from the SDK's standard chain; no message carries them,
// nor a request's signature.

import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import type { CompletedPart, S3Client } from '@aws-sdk/client-s3';
import { BlobStoreError } from '../errors.js';
import type { S3Options } from '../types.js';

type Sdk = typeof import('@aws-sdk/client-s3');
type Presigner = typeof import('@aws-sdk/s3-request-presigner');

/** An object's size and time, as HeadObject gives them. */
interface ObjectStat {
  size: number;
  modified: Date;
}

/** An object as a listing gives it. */
interface ListedObject extends ObjectStat {
  key: string;
}

/** A multipart upload a listing found. */
interface ListedUpload {
  key: string;
  uploadId: string;
  initiated: Date;
}

// Fail fast when the service is away: a connection to S3 is made in
// milliseconds, so one not made in 2 s is not coming; a socket silent for
// 30 s (no byte either way, not a slow part upload) is dead. Two attempts:
// one retry rides out a dropped keep-alive socket or a throttled request,
// and the client of a registry retries a 503 itself; an address that does
// not answer fails in about 4 s.
const CONNECTION_TIMEOUT = 2000;
const REQUEST_TIMEOUT = 30_000;
const MAX_ATTEMPTS = 2;
// Enough sockets for many concurrent pushes and pulls, each with a few parts in flight.
const MAX_SOCKETS = 256;
/** Seconds a client is told to wait after STORAGE_UNAVAILABLE. */
const RETRY_AFTER_SECONDS = 1;

// Errors of the connection rather than of a request.
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);
const NETWORK_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'SlowDown', 'Throttling', 'ThrottlingException', 'ServiceUnavailable', 'InternalError']);

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** Whether `error` is the service's "no such object" (or upload). */
function isMissing(error: unknown): boolean {
  const e = error as SdkError;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.name === 'NoSuchUpload' || e?.$metadata?.httpStatusCode === 404;
}

/** Whether the service does not have the call (s3rver's ListMultipartUploads). */
function isNotImplemented(error: unknown): boolean {
  const e = error as SdkError;
  return e?.name === 'NotImplemented' || e?.$metadata?.httpStatusCode === 501;
}

/**
 * The error a caller sees for an SDK failure: STORAGE_UNAVAILABLE for the
 * service being away, slow, throttling or failing; else an Error naming the
 * service's code and message only (the SDK's error carries the request).
 */
export function storageError(error: unknown): Error {
  if (error instanceof BlobStoreError) return error;
  const e = error as SdkError;
  const status = e?.$metadata?.httpStatusCode;
  const code = e?.code ?? e?.name ?? 'Error';
  const network = NETWORK_CODES.has(e?.code ?? '') || NETWORK_NAMES.has(e?.name ?? '') || /socket hang up/.test(e?.message ?? '');
  if ((status !== undefined && status >= 500) || status === 429 || network) {
    return new BlobStoreError('STORAGE_UNAVAILABLE', `the object storage cannot serve now (${code})`, { retryAfter: RETRY_AFTER_SECONDS });
  }
  return Object.assign(new Error(`object storage: ${e?.name ?? 'Error'}: ${e?.message ?? ''}`), { code: e?.name, status });
}

/**
 * The bucket of `options`, through a client made on first use. Every call
 * throws (rejects with) what storageError makes of the SDK's failure:
 * BlobStoreError STORAGE_UNAVAILABLE, else an Error with the service's code.
 */
export class Bucket {
  readonly name: string;
  /** The service's URL, as configured (undefined: AWS S3): which other buckets a CopyObject reaches. */
  readonly endpoint: string | undefined;
  readonly #options: S3Options;
  #loaded: Promise<{ sdk: Sdk; presigner: Presigner; client: S3Client }> | undefined;

  constructor(options: S3Options) {
    this.name = options.bucket;
    this.endpoint = options.endpoint;
    this.#options = options;
  }

  /** Loads the SDK and makes the client, once. */
  #load(): Promise<{ sdk: Sdk; presigner: Presigner; client: S3Client }> {
    this.#loaded ??= (async () => {
      const [sdk, presigner] = await Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/s3-request-presigner')]);
      const agent = { keepAlive: true, maxSockets: MAX_SOCKETS };
      const make = (region?: string) =>
        new sdk.S3Client({
          ...(this.#options.endpoint === undefined ? {} : { endpoint: this.#options.endpoint }),
          ...(region === undefined ? {} : { region }),
          forcePathStyle: this.#options.forcePathStyle ?? false,
          // Checksums only where the API requires them: MinIO, Ceph and s3rver refuse aws-chunked trailers.
          requestChecksumCalculation: 'WHEN_REQUIRED',
          responseChecksumValidation: 'WHEN_REQUIRED',
          maxAttempts: MAX_ATTEMPTS,
          requestHandler: {
            connectionTimeout: CONNECTION_TIMEOUT,
            requestTimeout: REQUEST_TIMEOUT,
            httpAgent: new HttpAgent(agent),
            httpsAgent: new HttpsAgent(agent),
          },
        });
      let client = make(this.#options.region);
      // The option, else the chain's (AWS_REGION, the shared config file), else us-east-1.
      if (this.#options.region === undefined) {
        try {
          await client.config.region();
        } catch {
          client.destroy();
          client = make('us-east-1');
        }
      }
      return { sdk, presigner, client };
    })();
    return this.#loaded;
  }

  /** Runs one call. @throws storageError's errors. */
  async #call<T>(fn: (sdk: Sdk, client: S3Client) => Promise<T>): Promise<T> {
    const { sdk, client } = await this.#load();
    try {
      return await fn(sdk, client);
    } catch (error) {
      throw storageError(error);
    }
  }

  /** Runs one call whose "no such object" is an answer: `missing`. */
  async #callOr<T, M>(missing: M, fn: (sdk: Sdk, client: S3Client) => Promise<T>): Promise<T | M> {
    const { sdk, client } = await this.#load();
    try {
      return await fn(sdk, client);
    } catch (error) {
      if (isMissing(error)) return missing;
      throw storageError(error);
    }
  }

  /** The object's size and time (in this bucket, or `bucket` of the same service), or undefined. */
  head(key: string, bucket = this.name): Promise<ObjectStat | undefined> {
    return this.#callOr(undefined, async (sdk, client) => {
      const out = await client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: key }));
      return { size: out.ContentLength ?? 0, modified: out.LastModified ?? new Date(0) };
    });
  }

  /** The object's bytes `start`..`end` (inclusive), streamed, or undefined when it is not there. */
  get(key: string, start?: number, end?: number): Promise<{ body: Readable; size: number } | undefined> {
    const range = start === undefined && end === undefined ? undefined : `bytes=${start ?? 0}-${end ?? ''}`;
    return this.#callOr(undefined, async (sdk, client) => {
      const out = await client.send(new sdk.GetObjectCommand({ Bucket: this.name, Key: key, Range: range }));
      const total = out.ContentRange === undefined ? out.ContentLength : Number(/\/(\d+)$/.exec(out.ContentRange)?.[1]);
      return { body: out.Body as Readable, size: total ?? 0 };
    });
  }

  /** The whole (small) object in memory, or undefined. */
  async getBytes(key: string): Promise<Buffer | undefined> {
    const got = await this.get(key);
    if (got === undefined) return undefined;
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of got.body) chunks.push(chunk as Buffer);
    } catch (error) {
      throw storageError(error);
    }
    return Buffer.concat(chunks);
  }

  put(key: string, body: Buffer): Promise<void> {
    return this.#call(async (sdk, client) => {
      await client.send(new sdk.PutObjectCommand({ Bucket: this.name, Key: key, Body: body, ContentLength: body.length }));
    });
  }

  /** Copies object `from` (of this bucket, or `fromBucket` of the same service) to `to`, server-side. */
  copy(from: string, to: string, fromBucket = this.name): Promise<void> {
    return this.#call(async (sdk, client) => {
      await client.send(new sdk.CopyObjectCommand({ Bucket: this.name, Key: to, CopySource: encodeSource(fromBucket, from) }));
    });
  }

  /** Deletes the object; one that is not there is no error. */
  delete(key: string): Promise<void> {
    return this.#callOr(undefined, async (sdk, client) => {
      await client.send(new sdk.DeleteObjectCommand({ Bucket: this.name, Key: key }));
    });
  }

  /** Every object under `prefix`, a page at a time. */
  async *list(prefix: string): AsyncGenerator<ListedObject> {
    let token: string | undefined;
    do {
      const page = await this.#call((sdk, client) =>
        client.send(new sdk.ListObjectsV2Command({ Bucket: this.name, Prefix: prefix, ContinuationToken: token })),
      );
      for (const item of page.Contents ?? []) {
        if (item.Key !== undefined) yield { key: item.Key, size: item.Size ?? 0, modified: item.LastModified ?? new Date(0) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  createMultipart(key: string): Promise<string> {
    return this.#call(async (sdk, client) => {
      const out = await client.send(new sdk.CreateMultipartUploadCommand({ Bucket: this.name, Key: key }));
      return out.UploadId!;
    });
  }

  uploadPart(key: string, uploadId: string, number: number, body: Buffer): Promise<CompletedPart> {
    return this.#call(async (sdk, client) => {
      const out = await client.send(
        new sdk.UploadPartCommand({ Bucket: this.name, Key: key, UploadId: uploadId, PartNumber: number, Body: body, ContentLength: body.length }),
      );
      return { PartNumber: number, ETag: out.ETag };
    });
  }

  /** Copies bytes `start`..`end` (inclusive) of object `from` as part `number`. */
  uploadPartCopy(key: string, uploadId: string, number: number, from: string, start: number, end: number): Promise<CompletedPart> {
    return this.#call(async (sdk, client) => {
      const out = await client.send(
        new sdk.UploadPartCopyCommand({
          Bucket: this.name,
          Key: key,
          UploadId: uploadId,
          PartNumber: number,
          CopySource: encodeSource(this.name, from),
          CopySourceRange: `bytes=${start}-${end}`,
        }),
      );
      return { PartNumber: number, ETag: out.CopyPartResult?.ETag };
    });
  }

  completeMultipart(key: string, uploadId: string, parts: CompletedPart[]): Promise<void> {
    return this.#call(async (sdk, client) => {
      await client.send(
        new sdk.CompleteMultipartUploadCommand({
          Bucket: this.name,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map(({ PartNumber, ETag }) => ({ PartNumber, ETag })) },
        }),
      );
    });
  }

  /** Aborts the multipart upload; one that is gone is no error. */
  abortMultipart(key: string, uploadId: string): Promise<void> {
    return this.#callOr(undefined, async (sdk, client) => {
      await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: this.name, Key: key, UploadId: uploadId }));
    });
  }

  /** The multipart uploads in progress under `prefix`; none where the service cannot list them (s3rver). */
  async *listMultipart(prefix: string): AsyncGenerator<ListedUpload> {
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    do {
      const { sdk, client } = await this.#load();
      let page;
      try {
        page = await client.send(
          new sdk.ListMultipartUploadsCommand({ Bucket: this.name, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: idMarker }),
        );
      } catch (error) {
        if (isNotImplemented(error)) return;
        throw storageError(error);
      }
      for (const upload of page.Uploads ?? []) {
        if (upload.Key !== undefined && upload.UploadId !== undefined) {
          yield { key: upload.Key, uploadId: upload.UploadId, initiated: upload.Initiated ?? new Date(0) };
        }
      }
      [keyMarker, idMarker] = page.IsTruncated ? [page.NextKeyMarker, page.NextUploadIdMarker] : [undefined, undefined];
    } while (keyMarker !== undefined);
  }

  /** A pre-signed GET of the object, valid `expiresIn` seconds. */
  async signedGet(key: string, expiresIn: number): Promise<string> {
    const { sdk, presigner, client } = await this.#load();
    try {
      return await presigner.getSignedUrl(client, new sdk.GetObjectCommand({ Bucket: this.name, Key: key }), { expiresIn });
    } catch (error) {
      throw storageError(error);
    }
  }

  /** Lets go of the client's sockets. */
  async destroy(): Promise<void> {
    const loaded = this.#loaded;
    this.#loaded = undefined;
    if (loaded !== undefined) (await loaded.catch(() => undefined))?.client.destroy();
  }
}

/** CopySource: bucket/key with the key's characters escaped as a URL path. */
function encodeSource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}
