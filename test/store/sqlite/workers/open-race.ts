// A worker that opens a brand-new store file at the same moment as its
// siblings and writes at once. It serves many rounds: each line on stdin
// names a file that does not exist yet; the reply is one line per round.

import { openStore } from '../../../../src/index.js';
import { describeError, makeManifest, send, stdinLines } from './common.js';

const worker = Number(process.argv[2]);
const repo = 'race/app';
const tag = `w${worker}`;
const { digest, manifest } = makeManifest(`race ${worker}`);

send({ ready: true });
const lines = stdinLines();
for (let line = await lines.next(); !line.done && line.value !== 'exit'; line = await lines.next()) {
  const { file, round } = JSON.parse(line.value) as { file: string; round: number };
  try {
    const store = openStore(file);
    try {
      store.putManifest(repo, digest, manifest, { actor: tag });
      store.putTag(repo, tag, { digest }, { actor: tag });
      const read = store.getTag(repo, tag).digest;
      send({ round, ok: read === digest, read });
    } finally {
      store.close();
    }
  } catch (error) {
    send({ round, ok: false, error: describeError(error) });
  }
}
process.exit(0);
