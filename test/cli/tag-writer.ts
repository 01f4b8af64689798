// A writer process for the backup and gc tests: moves five tags of <repo> between
// the given manifests as fast as it can until killed; prints "ready" once it
// has started.
// usage: node --import tsx test/cli/tag-writer.ts <db file> <repo> <digest>...

import { NotFoundError, openStore } from 'regmeta';

const [file, repo, ...digests] = process.argv.slice(2);
const store = openStore(file);
process.stdout.write('ready\n');
for (let i = 0; ; i++) {
  try {
    store.putTag(repo, `t${i % 5}`, { digest: digests[i % digests.length] }, { actor: 'writer' });
  } catch (error) {
    // A garbage collector may have deleted the manifest: so would a registry answer.
    if (!(error instanceof NotFoundError)) throw error;
  }
  // Let the event loop breathe now and then (stdout, signals).
  if (i % 200 === 199) await new Promise((resolve) => setImmediate(resolve));
}
