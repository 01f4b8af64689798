// A process that takes a digest's lock and never lets it go: linkBlob with
// a place that never settles, through asyncStore. Prints {holding} once the
// lock's row has committed (the place runs inside the transaction that
// writes it), then hangs until killed.

import { asyncStore, openStore } from '../../../../src/index.js';
import { send, workerArgs } from './common.js';

const { file, digest } = workerArgs<{ file: string; digest: string }>();
const store = asyncStore(openStore(file));
// A pending promise keeps no process alive: this timer does.
setInterval(() => {}, 60_000);
void store.linkBlob('acme/app', { digest, size: 5 }, {}, {
  place: () => {
    // Runs after the transaction that called place has committed.
    setImmediate(() => send({ holding: true, pid: process.pid }));
    return new Promise<void>(() => {});
  },
});
