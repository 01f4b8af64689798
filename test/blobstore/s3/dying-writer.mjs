// A writer that dies mid-chunk: from the built dist/, it appends `first`
// bytes to a new session, then a body of which it sends more than a part
// before it stalls, prints "SESSION <id>" and waits to be killed.
// usage: node dying-writer.mjs <sqlite file> <prefix> <first> <stalled>  (S3 options and credentials in the environment)
import { Readable } from 'node:stream';
import { asyncStore, openStore } from '../../../dist/index.js';
import { S3BlobStore } from '../../../dist/blobstore/s3/store.js';

const [file, prefix, first, stalled] = process.argv.slice(2);
const store = asyncStore(openStore(file));
const s3 = JSON.parse(process.env.REGMETA_TEST_S3);
const blobs = new S3BlobStore({ ...s3, prefix, partSize: 5 * 1024 * 1024 }, { sessions: store.uploads, claimLease: 500, maxBlobSize: 1024 ** 3 });
const upload = await blobs.startUpload('acme/app', 'a');
await blobs.append(upload, Readable.from([Buffer.alloc(Number(first), 1)]));
let sent = false;
const body = new Readable({
  read() {
    if (sent) {
      // Everything sent was taken: the part is on its way or uploaded.
      console.log(`SESSION ${upload.id}`);
      return;
    }
    sent = true;
    this.push(Buffer.alloc(Number(stalled), 2));
  },
});
await blobs.append(upload, body);
