// A writer that is meant to be killed: it resumes the store it finds, then
// puts manifests, moves and deletes tags and deletes manifests in a loop,
// printing what it is about to do before each call and an acknowledgement
// after each call returns. Events carry the actor `run<N>` so that the parent
// can tell the runs apart in the log.
// Protocol: prints {ready}, waits for a line on stdin, prints {opening},
// opens, prints {opened}, then {intent} / {ack} pairs.

import { NotFoundError, openStore } from '../../../../src/index.js';
import { describeError, makeManifest, random, send, stdinLines, workerArgs } from './common.js';

export type CrashOp =
  | { kind: 'putManifest'; label: string; digest: string }
  | { kind: 'putTag'; tag: string; digest: string }
  | { kind: 'deleteTag'; tag: string }
  | { kind: 'deleteManifest'; digest: string };

interface Args {
  file: string;
  repo: string;
  run: number;
  seed: number;
  maxOps: number;
  tags: string[];
}

const { file, repo, run, seed, maxOps, tags: tagNames } = workerArgs<Args>();
const next = random(seed);
const pick = <T>(items: T[]): T => items[Math.floor(next() * items.length)];
const ctx = { actor: `run${run}` };

send({ ready: true });
// A parent that went away (stdin closed) is no go-signal.
if ((await stdinLines().next()).done) process.exit(0);
send({ opening: true });
const store = openStore(file, { durability: 'full' });

// What is there now, as left by the runs before (some of them killed mid-call).
const tags = new Map<string, string>();
try {
  for (const tag of store.allTags(repo)) tags.set(tag, store.getTag(repo, tag).digest);
} catch (error) {
  if (!(error instanceof NotFoundError && error.code === 'NAME_UNKNOWN')) throw error;
}
/** Manifests this run has put and not deleted. */
const mine: string[] = [];
send({ opened: true });

let made = 0;
for (let i = 0; i < maxOps; i++) {
  const roll = next();
  let op: CrashOp;
  if (mine.length === 0 || roll < 0.35) {
    const label = `run${run}-${made++}`;
    op = { kind: 'putManifest', label, digest: makeManifest(label).digest };
  } else if (roll < 0.75 || tags.size === 0) {
    op = { kind: 'putTag', tag: pick(tagNames), digest: pick(mine) };
  } else if (roll < 0.92) {
    op = { kind: 'deleteTag', tag: pick([...tags.keys()]) };
  } else {
    op = { kind: 'deleteManifest', digest: pick([...tags.values()]) };
  }
  send({ intent: i, op });
  try {
    switch (op.kind) {
      case 'putManifest':
        store.putManifest(repo, op.digest, makeManifest(op.label).manifest, ctx);
        mine.push(op.digest);
        break;
      case 'putTag':
        store.putTag(repo, op.tag, { digest: op.digest }, ctx);
        tags.set(op.tag, op.digest);
        break;
      case 'deleteTag':
        store.deleteTag(repo, op.tag, ctx);
        tags.delete(op.tag);
        break;
      case 'deleteManifest': {
        const gone = op.digest;
        store.deleteManifest(repo, gone, ctx);
        for (const [tag, target] of tags) if (target === gone) tags.delete(tag);
        if (mine.includes(gone)) mine.splice(mine.indexOf(gone), 1);
        break;
      }
    }
  } catch (error) {
    // This writer is alone on the file: any error is a finding.
    send({ error: describeError(error), op });
    process.exit(2);
  }
  send({ ack: i });
}
store.close();
send({ finished: true });
process.exit(0);
