// The test S3 server: @20minutes/s3rver on 127.0.0.1, with two patches.
// usage: node --openssl-legacy-provider s3rver-launch.cjs <dir> [port] [bucket]  -> prints "LISTENING <port>"
// (--openssl-legacy-provider: s3rver's ListObjectsV2 continuation tokens use DES.)
// 1. s3rver computes the SigV4 canonical URI of bucket-level requests without
//    the trailing slash that AWS SDK v3 signs ("/bucket/"): restored here.
// 2. s3rver has no AbortMultipartUpload: a shim answers it (204, then
//    NoSuchUpload); it runs before s3rver's auth, so it checks no signature.
// s3rver has no ListMultipartUploads (501): nothing here covers it.
const { AsyncLocalStorage } = require('node:async_hooks');
const fsp = require('node:fs/promises');
const path = require('node:path');
const pkgDir = path.dirname(require.resolve('@20minutes/s3rver/package.json'));
const v4 = require(pkgDir + '/lib/signature/v4.js');
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
app.middleware.unshift((ctx, next) => als.run(ctx.path, next));
app.middleware.splice(1, 0, async (ctx, next) => {
  const m = /^\/([^/]+)\/(.+)$/.exec(ctx.path);
  if (ctx.method !== 'DELETE' || !m || !('uploadId' in ctx.query)) return next();
  const dir = path.join(app.store.getResourcePath(m[1], undefined, 'uploads'), String(ctx.query.uploadId));
  try {
    await fsp.access(path.join(dir, 'key'));
  } catch {
    ctx.status = 404;
    ctx.type = 'application/xml';
    ctx.body = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>';
    return;
  }
  await fsp.rm(dir, { recursive: true, force: true });
  ctx.status = 204;
});
app.run().then(({ port }) => console.log('LISTENING ' + port));
