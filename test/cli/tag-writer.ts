// A writer process for the backup test: moves tags of bk/x between the given
// manifests as fast as it can until killed; prints "ready" once it has started.
// usage: node --import tsx test/cli/tag-writer.ts <db file> <digest>...

import { openStore } from 'regmeta';

const [file, ...digests] = process.argv.slice(2);
const store = openStore(file);
process.stdout.write('ready\n');
for (let i = 0; ; i++) {
  store.putTag('bk/x', `t${i % 50}`, { digest: digests[i % digests.length] }, { actor: 'writer' });
  // Let the event loop breathe now and then (stdout, signals).
  if (i % 200 === 199) await new Promise((resolve) => setImmediate(resolve));
}
