// Blob pull, push (monolithic, session, streamed, chunked), mount and delete over HTTP.

import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, truncateSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OCI_MANIFEST, errorCode, pushBlob, pushImage, sha256, startRegistry, type TestRegistry } from './helpers.js';

let r: TestRegistry;
beforeAll(async () => {
  r = await startRegistry();
});
afterAll(async () => {
  await r.close();
});

function blobFile(digest: string): string {
  const [algorithm, hex] = digest.split(':');
  return path.join(r.dataDir, 'blobs', algorithm, hex.slice(0, 2), hex);
}

async function startSession(repo: string): Promise<string> {
  const res = await fetch(`${r.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  expect(res.status).toBe(202);
  expect(res.headers.get('docker-upload-uuid')).toMatch(/^[0-9a-f-]{36}$/);
  return res.headers.get('location')!;
}

describe('blob push', () => {
  it('takes a monolithic POST with ?digest= and stores the bytes under blobs/sha256/<2 hex>/<hex>', async () => {
    const bytes = randomBytes(1000);
    const res = await fetch(`${r.url}/v2/mono/blobs/uploads/?digest=${sha256(bytes)}`, { method: 'POST', body: bytes });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`/v2/mono/blobs/${sha256(bytes)}`);
    expect(res.headers.get('docker-content-digest')).toBe(sha256(bytes));
    expect(readFileSync(blobFile(sha256(bytes)))).toEqual(bytes);
    expect(r.store.statBlob('mono', sha256(bytes)).size).toBe(1000);
  });

  it('takes POST then PUT with the whole body', async () => {
    const bytes = Buffer.from('session body');
    const location = await startSession('sess');
    const res = await fetch(`${r.url}${location}?digest=${sha256(bytes)}`, { method: 'PUT', body: bytes });
    expect(res.status).toBe(201);
    expect((await fetch(`${r.url}/v2/sess/blobs/${sha256(bytes)}`)).status).toBe(200);
  });

  it('takes streamed PATCHes without Content-Range and a PUT with no body', async () => {
    const parts = [randomBytes(300), randomBytes(500)];
    const whole = Buffer.concat(parts);
    let location = await startSession('streamed');
    for (const part of parts) {
      const res = await fetch(`${r.url}${location}`, {
        method: 'PATCH',
        headers: { 'Content-Type': 'application/octet-stream' },
        body: part,
      });
      expect(res.status).toBe(202);
      location = res.headers.get('location')!;
    }
    const status = await fetch(`${r.url}${location}`);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-799');
    const res = await fetch(`${r.url}${location}?digest=${sha256(whole)}`, { method: 'PUT' });
    expect(res.status).toBe(201);
    const got = await fetch(`${r.url}/v2/streamed/blobs/${sha256(whole)}`);
    expect(Buffer.from(await got.arrayBuffer())).toEqual(whole);
  });

  it('takes chunks with Content-Range and a final chunk on the PUT', async () => {
    const whole = randomBytes(100);
    const location = await startSession('chunked');
    const first = await fetch(`${r.url}${location}`, {
      method: 'PATCH',
      headers: { 'Content-Range': '0-59', 'Content-Type': 'application/octet-stream' },
      body: whole.subarray(0, 60),
    });
    expect(first.status).toBe(202);
    expect(first.headers.get('range')).toBe('0-59');
    const last = await fetch(`${r.url}${first.headers.get('location')}?digest=${sha256(whole)}`, {
      method: 'PUT',
      headers: { 'Content-Range': '60-99', 'Content-Type': 'application/octet-stream' },
      body: whole.subarray(60),
    });
    expect(last.status).toBe(201);
    expect(readFileSync(blobFile(sha256(whole)))).toEqual(whole);
  });

  it('answers 416 with the current Range to a chunk that leaves a gap, and keeps the session usable', async () => {
    const whole = randomBytes(20);
    const location = await startSession('gap');
    const gap = await fetch(`${r.url}${location}`, {
      method: 'PATCH',
      headers: { 'Content-Range': '10-19' },
      body: whole.subarray(10),
    });
    expect(gap.status).toBe(416);
    expect(gap.headers.get('range')).toBe('0-0');
    expect(await errorCode(gap)).toBe('BLOB_UPLOAD_INVALID');
    const ok = await fetch(`${r.url}${location}?digest=${sha256(whole)}`, { method: 'PUT', body: whole });
    expect(ok.status).toBe(201);
  });

  it('refuses a chunk whose Content-Range and Content-Length disagree without appending it', async () => {
    const location = await startSession('disagree');
    const res = await fetch(`${r.url}${location}`, {
      method: 'PATCH',
      headers: { 'Content-Range': '0-9' },
      body: Buffer.alloc(5),
    });
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe('SIZE_INVALID');
    expect((await fetch(`${r.url}${location}`)).headers.get('range')).toBe('0-0');
  });

  it('leaves nothing behind when the digest does not match', async () => {
    const bytes = Buffer.from('these bytes');
    const wrong = sha256('other bytes');
    const before = readdirSync(path.join(r.dataDir, 'uploads')).length;
    const res = await fetch(`${r.url}/v2/mismatch/blobs/uploads/?digest=${wrong}`, { method: 'POST', body: bytes });
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe('DIGEST_INVALID');
    expect(existsSync(blobFile(wrong))).toBe(false);
    expect(existsSync(blobFile(sha256(bytes)))).toBe(false);
    expect(readdirSync(path.join(r.dataDir, 'uploads')).length).toBe(before);
    expect((await fetch(`${r.url}/v2/mismatch/blobs/${wrong}`, { method: 'HEAD' })).status).toBe(404);

    const location = await startSession('mismatch');
    const put = await fetch(`${r.url}${location}?digest=${wrong}`, { method: 'PUT', body: bytes });
    expect(put.status).toBe(400);
    // The session is over: its file is gone and its URL unknown.
    expect((await fetch(`${r.url}${location}`)).status).toBe(404);
    expect(readdirSync(path.join(r.dataDir, 'uploads')).length).toBe(before);
  });

  it('verifies sha512 digests too', async () => {
    const bytes = Buffer.from('sha512 content');
    const digest = `sha512:${createHash('sha512').update(bytes).digest('hex')}`;
    const res = await fetch(`${r.url}/v2/five12/blobs/uploads/?digest=${digest}`, { method: 'POST', body: bytes });
    expect(res.status).toBe(201);
    expect(readFileSync(blobFile(digest))).toEqual(bytes);
    const bad = await fetch(`${r.url}/v2/five12/blobs/uploads/?digest=${digest}`, { method: 'POST', body: 'not it' });
    expect(bad.status).toBe(400);
  });

  it('requires ?digest= on the closing PUT', async () => {
    const location = await startSession('nodigest');
    const res = await fetch(`${r.url}${location}`, { method: 'PUT', body: 'x' });
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe('DIGEST_INVALID');
  });

  it('cancels a session with DELETE and forgets it', async () => {
    const location = await startSession('cancel');
    await fetch(`${r.url}${location}`, { method: 'PATCH', body: 'partial' });
    const id = location.split('/').pop()!;
    expect(existsSync(path.join(r.dataDir, 'uploads', id))).toBe(true);
    expect((await fetch(`${r.url}${location}`, { method: 'DELETE' })).status).toBe(204);
    expect(existsSync(path.join(r.dataDir, 'uploads', id))).toBe(false);
    const after = await fetch(`${r.url}${location}`);
    expect(after.status).toBe(404);
    expect(await errorCode(after)).toBe('BLOB_UPLOAD_UNKNOWN');
  });

  it('finishes a session once when two PUTs race: one 201, the other BLOB_UPLOAD_UNKNOWN', async () => {
    const bytes = randomBytes(2000);
    const location = await startSession('race');
    expect((await fetch(`${r.url}${location}`, { method: 'PATCH', body: bytes })).status).toBe(202);
    const statuses = await Promise.all(
      [0, 1].map(() => fetch(`${r.url}${location}?digest=${sha256(bytes)}`, { method: 'PUT' }).then((res) => res.status)),
    );
    expect(statuses.sort()).toEqual([201, 404]);
    expect(readFileSync(blobFile(sha256(bytes)))).toEqual(bytes);
  });

  it('serializes racing chunks that claim the same range: one 202, the other 416', async () => {
    const location = await startSession('chunkrace');
    const statuses = await Promise.all(
      [1, 2].map((fill) =>
        fetch(`${r.url}${location}`, { method: 'PATCH', headers: { 'Content-Range': '0-999' }, body: Buffer.alloc(1000, fill) }).then(
          (res) => res.status,
        ),
      ),
    );
    expect(statuses.sort()).toEqual([202, 416]);
    expect((await fetch(`${r.url}${location}`)).headers.get('range')).toBe('0-999');
  });

  it('keeps one repository out of another repository\'s upload sessions', async () => {
    const location = await startSession('owner');
    const stolen = location.replace('/v2/owner/', '/v2/thief/');
    const res = await fetch(`${r.url}${stolen}`, { method: 'PATCH', body: 'x' });
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe('BLOB_UPLOAD_UNKNOWN');
  });
});

describe('blob pull', () => {
  const bytes = Buffer.from('0123456789');
  let digest: string;
  beforeAll(async () => {
    digest = await pushBlob(r.url, 'pull/repo', bytes);
  });

  it('answers HEAD with the size and digest and no body', async () => {
    const res = await fetch(`${r.url}/v2/pull/repo/blobs/${digest}`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('10');
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    expect(await res.text()).toBe('');
  });

  it('serves a byte range with 206 and Content-Range', async () => {
    const res = await fetch(`${r.url}/v2/pull/repo/blobs/${digest}`, { headers: { Range: 'bytes=2-5' } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe('bytes 2-5/10');
    expect(await res.text()).toBe('2345');
  });

  it('answers 416 to a range past the end', async () => {
    const res = await fetch(`${r.url}/v2/pull/repo/blobs/${digest}`, { headers: { Range: 'bytes=10-' } });
    expect(res.status).toBe(416);
    expect(res.headers.get('content-range')).toBe('bytes */10');
    expect(await errorCode(res)).toBe('RANGE_INVALID');
  });

  it('serves a blob of several read pieces whole and in ranges that cross a piece boundary', async () => {
    // Pieces are 1 MiB: this is two whole pieces and a part of a third.
    const big = randomBytes(2 * 1024 * 1024 + 17);
    const bigDigest = await pushBlob(r.url, 'pull/big', big);
    const whole = await fetch(`${r.url}/v2/pull/big/blobs/${bigDigest}`);
    expect(whole.status).toBe(200);
    expect(Buffer.from(await whole.arrayBuffer()).equals(big)).toBe(true);
    for (const [start, end] of [[1024 * 1024 - 3, 1024 * 1024 + 2], [5, 2 * 1024 * 1024 + 9], [2 * 1024 * 1024, big.length - 1]]) {
      const res = await fetch(`${r.url}/v2/pull/big/blobs/${bigDigest}`, { headers: { Range: `bytes=${start}-${end}` } });
      expect(res.status).toBe(206);
      expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/${big.length}`);
      expect(Buffer.from(await res.arrayBuffer()).equals(big.subarray(start, end + 1))).toBe(true);
    }
  });

  it('serves the right bytes to concurrent downloads, also after one that the client abandoned', async () => {
    // Read buffers are reused from one download to the next: none may see another's bytes.
    const blobs = [randomBytes(3 * 1024 * 1024 + 5), randomBytes(3 * 1024 * 1024 + 11)];
    const digests = await Promise.all(blobs.map((bytes) => pushBlob(r.url, 'pull/concurrent', bytes)));
    const abandoned = new AbortController();
    const first = await fetch(`${r.url}/v2/pull/concurrent/blobs/${digests[0]}`, { signal: abandoned.signal });
    await first.body!.getReader().read();
    abandoned.abort();
    const bodies = await Promise.all(
      [0, 1, 0, 1, 1, 0].map(async (k) => [k, Buffer.from(await (await fetch(`${r.url}/v2/pull/concurrent/blobs/${digests[k]}`)).arrayBuffer())] as const),
    );
    for (const [k, body] of bodies) expect(body.equals(blobs[k])).toBe(true);
  });

  it('cuts the connection when the file is shorter than its record, rather than end an answer short', async () => {
    const big = randomBytes(3 * 1024 * 1024);
    const bigDigest = await pushBlob(r.url, 'pull/short', big);
    truncateSync(blobFile(bigDigest), 1024 * 1024 + 5);
    const res = await fetch(`${r.url}/v2/pull/short/blobs/${bigDigest}`);
    expect(res.status).toBe(200);
    await expect(res.arrayBuffer()).rejects.toThrow();
  });

  it('does not serve a blob from a repository it is not linked in', async () => {
    await pushBlob(r.url, 'other/repo', 'something');
    const res = await fetch(`${r.url}/v2/other/repo/blobs/${digest}`);
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe('BLOB_UNKNOWN');
    const unknownRepo = await fetch(`${r.url}/v2/nowhere/blobs/${digest}`);
    expect(unknownRepo.status).toBe(404);
    expect(await errorCode(unknownRepo)).toBe('NAME_UNKNOWN');
  });
});

describe('cross-repository mount', () => {
  it('mounts a blob the source repository has: 201 and readable from the target', async () => {
    const digest = await pushBlob(r.url, 'mount/src', 'mounted bytes');
    const res = await fetch(`${r.url}/v2/mount/dst/blobs/uploads/?mount=${digest}&from=mount/src`, { method: 'POST' });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`/v2/mount/dst/blobs/${digest}`);
    expect(await (await fetch(`${r.url}/v2/mount/dst/blobs/${digest}`)).text()).toBe('mounted bytes');
  });

  it('opens a session instead when the source repository does not have the blob', async () => {
    const digest = await pushBlob(r.url, 'mount/elsewhere', 'secret bytes');
    for (const from of ['mount/empty', 'not a repo', '']) {
      const res = await fetch(`${r.url}/v2/mount/dst2/blobs/uploads/?mount=${digest}&from=${encodeURIComponent(from)}`, {
        method: 'POST',
      });
      expect(res.status).toBe(202);
      expect(res.headers.get('location')).toMatch(/^\/v2\/mount\/dst2\/blobs\/uploads\//);
    }
    expect((await fetch(`${r.url}/v2/mount/dst2/blobs/${digest}`)).status).toBe(404);
  });
});

describe('blob delete', () => {
  it('unlinks the blob from the repository: 202, then 404', async () => {
    const digest = await pushBlob(r.url, 'del/a', 'to delete');
    await pushBlob(r.url, 'del/b', 'to delete');
    const res = await fetch(`${r.url}/v2/del/a/blobs/${digest}`, { method: 'DELETE' });
    expect(res.status).toBe(202);
    expect((await fetch(`${r.url}/v2/del/a/blobs/${digest}`)).status).toBe(404);
    // Still linked elsewhere, so still there.
    expect((await fetch(`${r.url}/v2/del/b/blobs/${digest}`)).status).toBe(200);
    const again = await fetch(`${r.url}/v2/del/a/blobs/${digest}`, { method: 'DELETE' });
    expect(again.status).toBe(404);
    expect(await errorCode(again)).toBe('BLOB_UNKNOWN');
  });

  it('refuses with 409 BLOB_REFERENCED while a manifest of the repository references the blob, and the image still pulls', async () => {
    const image = await pushImage(r.url, 'del/img', 'latest', 'referenced');
    for (const blob of [image.config, image.layer]) {
      const res = await fetch(`${r.url}/v2/del/img/blobs/${sha256(blob)}`, { method: 'DELETE' });
      expect(res.status).toBe(409);
      expect(await errorCode(res)).toBe('BLOB_REFERENCED');
    }
    const manifest = await fetch(`${r.url}/v2/del/img/manifests/latest`, { headers: { Accept: OCI_MANIFEST } });
    expect(manifest.status).toBe(200);
    expect(await manifest.text()).toBe(image.manifest);
    for (const blob of [image.config, image.layer]) {
      const res = await fetch(`${r.url}/v2/del/img/blobs/${sha256(blob)}`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(blob);
    }
  });

  it('never logged a server fault', () => {
    expect(r.errors).toEqual([]);
    expect(r.logs.filter((entry) => entry.status >= 500)).toEqual([]);
  });
});

describe('a linked blob whose file is gone', () => {
  it('HEADs 200 from the metadata alone, GETs 404 BLOB_UNKNOWN, and is reported as a fault once per digest', async () => {
    const own = await startRegistry();
    try {
      const lost = await pushBlob(own.url, 'lost/repo', 'bytes that vanish');
      const also = await pushBlob(own.url, 'lost/repo', 'more bytes that vanish');
      for (const digest of [lost, also]) {
        const [algorithm, hex] = digest.split(':');
        unlinkSync(path.join(own.dataDir, 'blobs', algorithm, hex.slice(0, 2), hex));
      }
      // HEAD asks the storage nothing: the record answers, as for a blob that is there.
      const head = await fetch(`${own.url}/v2/lost/repo/blobs/${lost}`, { method: 'HEAD' });
      expect([head.status, head.headers.get('content-length'), head.headers.get('docker-content-digest')]).toEqual([200, '17', lost]);
      expect(own.errors).toEqual([]);
      for (let i = 0; i < 2; i++) {
        const res = await fetch(`${own.url}/v2/lost/repo/blobs/${lost}`);
        expect(res.status).toBe(404);
        expect(await errorCode(res)).toBe('BLOB_UNKNOWN');
      }
      expect(own.errors).toHaveLength(1);
      expect(String(own.errors[0])).toContain(lost);
      expect((await fetch(`${own.url}/v2/lost/repo/blobs/${also}`)).status).toBe(404);
      expect(own.errors).toHaveLength(2);
      expect(String(own.errors[1])).toContain(also);
      // A fault for the operator, not a server error for the client.
      expect(own.logs.filter((entry) => entry.status >= 500)).toEqual([]);
    } finally {
      await own.close();
    }
  });

  it('HEADs 404 once unlinked from the repository: the record is what HEAD reads', async () => {
    const own = await startRegistry();
    try {
      const digest = await pushBlob(own.url, 'gone/repo', 'unlinked bytes');
      expect((await fetch(`${own.url}/v2/gone/repo/blobs/${digest}`, { method: 'DELETE' })).status).toBe(202);
      expect((await fetch(`${own.url}/v2/gone/repo/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
    } finally {
      await own.close();
    }
  });
});

describe('storageRedirect on storage without pre-signed URLs (a directory)', () => {
  it('serves the bytes itself, whole and by Range', async () => {
    const own = await startRegistry({ storageRedirect: true });
    try {
      const digest = await pushBlob(own.url, 'direct/repo', 'served from the directory');
      const res = await fetch(`${own.url}/v2/direct/repo/blobs/${digest}`, { redirect: 'manual' });
      expect([res.status, await res.text()]).toEqual([200, 'served from the directory']);
      const part = await fetch(`${own.url}/v2/direct/repo/blobs/${digest}`, { redirect: 'manual', headers: { Range: 'bytes=7-10' } });
      expect([part.status, await part.text()]).toEqual([206, 'from']);
    } finally {
      await own.close();
    }
  });
});
