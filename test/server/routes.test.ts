import { describe, expect, it } from 'vitest';
import { StoreError } from 'regmeta';
import { BlobStoreError } from '../../src/blobstore/errors.js';
import { HttpError, statusOf, toWireError } from '../../src/server/errors.js';
import { parseRange } from '../../src/server/handlers/blobs.js';
import { accepts } from '../../src/server/handlers/manifests.js';
import { parseRoute } from '../../src/server/routes.js';

const D = `sha256:${'a'.repeat(64)}`;
const UUID = '123e4567-e89b-12d3-a456-426614174000';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return (error as StoreError | HttpError).code;
  }
  throw new Error('did not throw');
}

describe('parseRoute', () => {
  it('takes the name as everything before the endpoint suffix, slashes included', () => {
    expect(parseRoute('GET', `/v2/a/b/c/manifests/latest`)).toEqual({ kind: 'manifest', name: 'a/b/c', reference: { tag: 'latest' } });
    expect(parseRoute('GET', `/v2/a/b/blobs/${D}`)).toEqual({ kind: 'blob', name: 'a/b', digest: D });
    expect(parseRoute('POST', `/v2/a/blobs/uploads/`)).toEqual({ kind: 'uploadStart', name: 'a' });
    expect(parseRoute('POST', `/v2/a/blobs/uploads`)).toEqual({ kind: 'uploadStart', name: 'a' });
    expect(parseRoute('PATCH', `/v2/x/blobs/uploads/${UUID}`)).toEqual({ kind: 'upload', name: 'x', id: UUID });
    expect(parseRoute('GET', `/v2/x/y/tags/list`)).toEqual({ kind: 'tags', name: 'x/y' });
    expect(parseRoute('GET', `/v2/x/referrers/${D}`)).toEqual({ kind: 'referrers', name: 'x', digest: D });
    expect(parseRoute('GET', `/v2/`)).toEqual({ kind: 'base' });
    expect(parseRoute('GET', `/v2`)).toEqual({ kind: 'base' });
    expect(parseRoute('GET', `/v2/_catalog`)).toEqual({ kind: 'catalog' });
    expect(parseRoute('GET', `/api/v0/events`)).toEqual({ kind: 'events' });
    expect(parseRoute('GET', `/api/v0/events/stream`)).toEqual({ kind: 'eventStream' });
  });

  it('reads a digest reference as a digest and anything else as a tag', () => {
    expect(parseRoute('GET', `/v2/a/manifests/${D}`)).toMatchObject({ reference: { digest: D } });
    expect(parseRoute('GET', `/v2/a/manifests/${D.replace(':', '%3A')}`)).toMatchObject({ reference: { digest: D } });
  });

  it('refuses names that could reach outside the repository before any lookup', () => {
    expect(code(() => parseRoute('GET', `/v2/../etc/manifests/latest`))).toBe('NAME_INVALID');
    expect(code(() => parseRoute('GET', `/v2/a/%2e%2e/manifests/latest`))).toBe('NAME_INVALID');
    expect(code(() => parseRoute('GET', `/v2/a%2F..%2Fb/tags/list`))).toBe('NAME_INVALID');
    expect(code(() => parseRoute('GET', `/v2/A/tags/list`))).toBe('NAME_INVALID');
    expect(code(() => parseRoute('GET', `/v2/a%00/tags/list`))).toBe('NAME_INVALID');
    expect(code(() => parseRoute('GET', `/v2/a%zz/tags/list`))).toBe('NAME_INVALID');
    expect(code(() => parseRoute('GET', `/v2/${'a'.repeat(256)}/tags/list`))).toBe('NAME_INVALID');
  });

  it('refuses malformed digests, tags and upload ids', () => {
    expect(code(() => parseRoute('GET', `/v2/a/blobs/sha256:abc`))).toBe('DIGEST_INVALID');
    expect(code(() => parseRoute('GET', `/v2/a/blobs/${D.toUpperCase()}`))).toBe('DIGEST_INVALID');
    expect(code(() => parseRoute('GET', `/v2/a/blobs/md5:${'a'.repeat(32)}`))).toBe('DIGEST_INVALID');
    expect(code(() => parseRoute('PUT', `/v2/a/manifests/sha256:totallywrong`))).toBe('DIGEST_INVALID');
    expect(code(() => parseRoute('PUT', `/v2/a/manifests/.hidden`))).toBe('TAG_INVALID');
    expect(code(() => parseRoute('PUT', `/v2/a/manifests/${'t'.repeat(129)}`))).toBe('TAG_INVALID');
    expect(code(() => parseRoute('GET', `/v2/a/blobs/uploads/..%2F..%2Fblobs`))).toBe('BLOB_UPLOAD_UNKNOWN');
    expect(code(() => parseRoute('GET', `/v2/a/blobs/uploads/not-a-uuid`))).toBe('BLOB_UPLOAD_UNKNOWN');
  });

  it('answers 405 with Allow for a method the endpoint does not take, 404 for no endpoint', () => {
    let thrown: HttpError | undefined;
    try {
      parseRoute('POST', `/v2/a/tags/list`);
    } catch (error) {
      thrown = error as HttpError;
    }
    expect(thrown?.code).toBe('UNSUPPORTED');
    expect(toWireError(thrown).status).toBe(405);
    expect(toWireError(thrown).headers).toEqual({ Allow: 'GET' });
    expect(code(() => parseRoute('GET', `/v1/x`))).toBe('NOT_FOUND');
    expect(code(() => parseRoute('GET', `/v2/a/unknown/thing`))).toBe('NOT_FOUND');
  });
});

describe('error table', () => {
  it('maps store codes to the statuses of the spec', () => {
    expect(statusOf('NAME_UNKNOWN')).toBe(404);
    expect(statusOf('MANIFEST_UNKNOWN')).toBe(404);
    expect(statusOf('BLOB_UNKNOWN')).toBe(404);
    expect(statusOf('BLOB_UPLOAD_UNKNOWN')).toBe(404);
    expect(statusOf('DIGEST_INVALID')).toBe(400);
    expect(statusOf('MANIFEST_BLOB_UNKNOWN')).toBe(400);
    expect(statusOf('DENIED')).toBe(403);
    expect(statusOf('UNAUTHORIZED')).toBe(401);
    expect(statusOf('UNSUPPORTED')).toBe(405);
    expect(statusOf('MANIFEST_REFERENCED')).toBe(409);
  });

  it('hides the message of server faults and of unknown errors', () => {
    const busy = toWireError(new StoreError('DATABASE_BUSY', '/secret/path/metadata.db is locked'));
    expect(busy.status).toBe(503);
    expect(busy.message).not.toContain('/secret');
    const unknown = toWireError(new Error('stack details'));
    expect(unknown).toEqual({ status: 500, code: 'UNKNOWN', message: 'internal server error' });
  });

  it('answers storage that cannot serve now with 503 and Retry-After, naming nothing of it', () => {
    const away = toWireError(new BlobStoreError('STORAGE_UNAVAILABLE', 'the object storage cannot serve now (ECONNREFUSED)', { retryAfter: 2 }));
    expect(away).toEqual({ status: 503, code: 'UNAVAILABLE', message: 'the registry cannot serve this request now', headers: { 'Retry-After': '2' } });
  });
});

describe('parseRange', () => {
  it('reads single byte ranges and ignores what it cannot read', () => {
    expect(parseRange('bytes=0-4', 10)).toEqual([0, 4]);
    expect(parseRange('bytes=5-', 10)).toEqual([5, 9]);
    expect(parseRange('bytes=-3', 10)).toEqual([7, 9]);
    expect(parseRange('bytes=8-100', 10)).toEqual([8, 9]);
    expect(parseRange('bytes=10-', 10)).toBe('unsatisfiable');
    expect(parseRange('bytes=5-4', 10)).toBe('unsatisfiable');
    expect(parseRange('bytes=0-1,3-4', 10)).toBeUndefined();
    expect(parseRange('items=0-1', 10)).toBeUndefined();
    expect(parseRange(undefined, 10)).toBeUndefined();
  });
});

describe('accepts', () => {
  it('admits a manifest type by name, by wildcard, or when no Accept is sent', () => {
    const oci = 'application/vnd.oci.image.manifest.v1+json';
    expect(accepts(undefined, oci)).toBe(true);
    expect(accepts(`${oci}, application/json`, oci)).toBe(true);
    expect(accepts('*/*', oci)).toBe(true);
    expect(accepts('application/vnd.docker.distribution.manifest.v2+json', oci)).toBe(false);
    expect(accepts(`${oci};q=0, */*;q=0`, oci)).toBe(false);
  });
});
