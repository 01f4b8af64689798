// A worker that moves, deletes and re-creates the same few tags and manifests
// as its siblings, as fast as it can, and reports every error it saw.
// Protocol: prints {ready}, waits for a line on stdin, runs, prints {done, ...}.
// With `holdAt`, it prints {held} after that many operations and waits for
// another line before the rest.

import { NotFoundError, openStore } from '../../../../src/index.js';
import { describeError, makeManifest, random, send, stdinLines, workerArgs } from './common.js';

interface Args {
  file: string;
  repo: string;
  worker: number;
  ops: number;
  seed: number;
  tags: string[];
  /** Labels of the manifests, for makeManifest. */
  manifests: string[];
  durability?: 'full' | 'normal';
  holdAt?: number;
}

const args = workerArgs<Args>();
const manifests = args.manifests.map(makeManifest);
const next = random(args.seed);
const pick = <T>(items: T[]): T => items[Math.floor(next() * items.length)];
// Tag operations and manifest operations carry different actors, so that the
// parent can tell a deleteTag's DELETE TAG event from a deleteManifest's.
const tagActor = { actor: `w${args.worker}` };
const manifestActor = { actor: `w${args.worker}.m` };

const ok = { putTag: 0, deleteTag: 0, deleteManifest: 0, putManifest: 0 };
let notFound = 0;
const unexpected: Array<{ op: string; error: ReturnType<typeof describeError> }> = [];

send({ ready: true });
const lines = stdinLines();
// A parent that went away (stdin closed) is no go-signal.
if ((await lines.next()).done) process.exit(0);

const store = openStore(args.file, { durability: args.durability ?? 'normal' });
for (let i = 0; i < args.ops; i++) {
  if (i === args.holdAt) {
    send({ held: true });
    if ((await lines.next()).done) process.exit(0);
  }
  const roll = next();
  const target = pick(manifests);
  const tag = pick(args.tags);
  const op = roll < 0.5 ? 'putTag' : roll < 0.8 ? 'deleteTag' : roll < 0.88 ? 'deleteManifest' : 'putManifest';
  try {
    if (op === 'putTag') store.putTag(args.repo, tag, { digest: target.digest }, tagActor);
    else if (op === 'deleteTag') store.deleteTag(args.repo, tag, tagActor);
    else if (op === 'deleteManifest') store.deleteManifest(args.repo, target.digest, manifestActor);
    else store.putManifest(args.repo, target.digest, target.manifest, manifestActor);
    ok[op]++;
  } catch (error) {
    // The only failure a sibling can cause: the tag or manifest is already gone.
    if (error instanceof NotFoundError && error.code === 'MANIFEST_UNKNOWN') notFound++;
    else unexpected.push({ op, error: describeError(error) });
  }
}
store.close();
send({ done: true, worker: args.worker, ok, notFound, unexpected });
process.exit(0);
