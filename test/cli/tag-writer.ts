// A writer process for the backup and gc tests: moves five tags of <repo> between
// the given manifests in bursts until killed; prints "ready" once it has
// started.
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
  // A pause of a millisecond every 20 writes, as a server has between
  // requests. SQLite's lock is not fair: a writer that never lets go starves
  // the other process's busy handler, which polls, past its timeout (CI saw
  // gc fail with SQLITE_BUSY that way), and no server writes like that.
  if (i % 20 === 19) await new Promise((resolve) => setTimeout(resolve, 1));
}
