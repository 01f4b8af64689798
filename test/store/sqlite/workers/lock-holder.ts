// A process that takes a digest's lock: linkBlob with a place that awaits,
// through asyncStore. Prints {holding} once the lock's row has committed
// (the place runs inside the transaction that writes it); the place then
// settles when a line "release" comes on stdin (never, if none comes: the
// parent kills it), and {linked} is printed once the link has committed.

import { asyncStore, openStore } from '../../../../src/index.js';
import { describeError, send, stdinLines, workerArgs } from './common.js';

const { file, digest } = workerArgs<{ file: string; digest: string }>();
const store = asyncStore(openStore(file));
const lines = stdinLines();
store
  .linkBlob('acme/app', { digest, size: 5 }, {}, {
    place: async () => {
      // Runs after the transaction that called place has committed.
      setImmediate(() => send({ holding: true }));
      // stdin closed without a release: hang until killed.
      if ((await lines.next()).done) await new Promise(() => setInterval(() => {}, 60_000));
    },
  })
  .then(
    () => send({ linked: true }),
    (error: unknown) => send({ error: describeError(error) }),
  )
  .finally(() => process.exit(0));
