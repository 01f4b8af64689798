// The bench's S3 server: @20minutes/s3rver on 127.0.0.1, patched so that
// both regmeta's S3 client and distribution 2.8's s3 driver can use it.
// usage: node --openssl-legacy-provider s3rver.cjs <dir> [port] [bucket]  -> prints "LISTENING <port>"
// (--openssl-legacy-provider: s3rver's ListObjectsV2 continuation tokens use DES.)
// The tests start it too (test/blobstore/s3/server.ts): the bench runs without test/.
// 1. s3rver computes the SigV4 canonical URI of bucket-level requests without
//    the trailing slash that AWS SDK v3 signs ("/bucket/"): restored here.
// 2. s3rver has no AbortMultipartUpload: answered here (204, then NoSuchUpload).
// 3. s3rver has no ListMultipartUploads (501) and no ListParts (405), which
//    distribution calls to take up an upload at each PATCH and PUT: both are
//    answered here from s3rver's own upload directories, after its
//    signature check, as routes placed before its own.
const { AsyncLocalStorage } = require('node:async_hooks');
const fsp = require('node:fs/promises');
const path = require('node:path');
const pkgDir = path.dirname(require.resolve('@20minutes/s3rver/package.json'));
const v4 = require(pkgDir + '/lib/signature/v4.js');
const router = require(pkgDir + '/lib/routes.js');
const { bucketExists } = require(pkgDir + '/lib/controllers/bucket.js');
const S3rver = require('@20minutes/s3rver');

const [directory, port = '0', bucket = 'test-bucket'] = process.argv.slice(2);
const als = new AsyncLocalStorage();
const orig = v4.getStringToSign;
v4.getStringToSign = function (cr, req) {
  const rawPath = als.getStore();
  if (rawPath && rawPath.endsWith('/') && !cr.uri.endsWith('/')) cr = { ...cr, uri: cr.uri + '/' };
  return orig.call(this, cr, req);
};
const app = new S3rver({ address: '127.0.0.1', port: Number(port), silent: !process.env.VERBOSE, directory, configureBuckets: [{ name: bucket }] });
const uploadsDir = (name) => app.store.getResourcePath(name, undefined, 'uploads');
const noSuchUpload = (ctx) => {
  ctx.status = 404;
  ctx.type = 'application/xml';
  ctx.body = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>';
};

app.middleware.unshift((ctx, next) => als.run(ctx.path, next));
app.middleware.splice(1, 0, async (ctx, next) => {
  const m = /^\/([^/]+)\/(.+)$/.exec(ctx.path);
  if (ctx.method !== 'DELETE' || !m || !('uploadId' in ctx.query)) return next();
  const dir = path.join(uploadsDir(m[1]), String(ctx.query.uploadId));
  try {
    await fsp.access(path.join(dir, 'key'));
  } catch {
    return noSuchUpload(ctx);
  }
  await fsp.rm(dir, { recursive: true, force: true });
  ctx.status = 204;
});

/** Registers a GET route ahead of s3rver's own for the same path, which answer these queries with an error. */
function before(routePath, handler) {
  router.get(routePath, bucketExists, async (ctx, next) => (ctx.params.queryMethod === (routePath === '/:bucket' ? 'uploads' : 'uploadId') ? handler(ctx) : next()));
  const added = router.stack.pop();
  const theirs = router.stack.findIndex((layer) => layer.path === routePath && layer.methods.includes('GET'));
  router.stack.splice(theirs, 0, added);
}

const owner = { ID: '123456789000', DisplayName: 'S3rver' };
const list = (dir) => fsp.readdir(dir).catch((error) => (error.code === 'ENOENT' ? [] : Promise.reject(error)));

// ListMultipartUploads: every upload whose key starts with ?prefix=, in one
// page; left to s3rver's 501 with S3RVER_NO_UPLOAD_LISTING=1, as a service
// without the call answers.
if (!process.env.S3RVER_NO_UPLOAD_LISTING) before('/:bucket', async (ctx) => {
  const prefix = String(ctx.query.prefix ?? '');
  const uploads = [];
  for (const id of await list(uploadsDir(ctx.params.bucket))) {
    const dir = path.join(uploadsDir(ctx.params.bucket), id);
    const key = await fsp.readFile(path.join(dir, 'key'), 'utf8').catch(() => undefined);
    if (key === undefined || !key.startsWith(prefix)) continue;
    const { mtime } = await fsp.stat(dir);
    uploads.push({ Key: key, UploadId: id, Initiator: owner, Owner: owner, StorageClass: 'STANDARD', Initiated: mtime.toISOString() });
  }
  uploads.sort((a, b) => (a.Key === b.Key ? a.Initiated.localeCompare(b.Initiated) : a.Key < b.Key ? -1 : 1));
  ctx.body = {
    ListMultipartUploadsResult: {
      '@': { xmlns: 'http://s3.amazonaws.com/doc/2006-03-01/' },
      Bucket: ctx.params.bucket, KeyMarker: '', UploadIdMarker: '', Prefix: prefix, MaxUploads: 1000, IsTruncated: false, Upload: uploads,
    },
  };
});

// ListParts: every part of ?uploadId=, in one page.
before('/:bucket/:key+', async (ctx) => {
  const dir = path.join(uploadsDir(ctx.params.bucket), String(ctx.query.uploadId));
  const names = await list(dir);
  if (!names.includes('key')) return noSuchUpload(ctx);
  const parts = [];
  for (const name of names.filter((n) => /^\d+$/.test(n)).sort((a, b) => a - b)) {
    const [{ size, mtime }, md5] = await Promise.all([fsp.stat(path.join(dir, name)), fsp.readFile(path.join(dir, `${name}.md5`), 'utf8')]);
    parts.push({ PartNumber: Number(name), LastModified: mtime.toISOString(), ETag: `"${md5}"`, Size: size });
  }
  ctx.body = {
    ListPartsResult: {
      '@': { xmlns: 'http://s3.amazonaws.com/doc/2006-03-01/' },
      Bucket: ctx.params.bucket, Key: ctx.params.key, UploadId: String(ctx.query.uploadId), Initiator: owner, Owner: owner, StorageClass: 'STANDARD',
      PartNumberMarker: 0, NextPartNumberMarker: parts.length ? parts[parts.length - 1].PartNumber : 0, MaxParts: 1000, IsTruncated: false, Part: parts,
    },
  };
});

app.run().then(({ port }) => console.log('LISTENING ' + port));
