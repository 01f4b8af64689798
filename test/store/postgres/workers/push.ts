// A replica pushing into one namespace while others do: opens the
// PostgreSQL store at argv[2] (with a quota of argv[4] bytes on `team` when
// given), prints 'ready', waits for a line on stdin, then makes argv[3]
// rounds of links, mounts, unlinks and deletes, some of blobs every replica
// shares (with argv[5] `grow`: links and mounts only, so that what the
// namespace holds never shrinks; with `repositories`: links whose file is
// placed by an action that awaits, as an object store's copy does, beside
// deletes of the repositories linked into), and prints a JSON line of what
// it did and what was refused.

import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { openPostgresStore } from '../../../../src/postgres.js';

const [url, roundsText, quotaText, mode] = process.argv.slice(2);
const grow = mode === 'grow';
const repositories = mode === 'repositories';
const rounds = Number(roundsText);
const digest = (seed: string) => `sha256:${createHash('sha256').update(seed).digest('hex')}`;
const blob = (seed: string, size: number) => ({ digest: digest(seed), size });

const store = await openPostgresStore(url, quotaText === undefined ? {} : { policy: { quotas: [{ namespace: 'team', maxSize: Number(quotaText) }] } });
console.log('ready');
await new Promise<void>((resolve) => createInterface({ input: process.stdin }).once('line', () => resolve()));

const me = process.pid;
const refused: Record<string, number> = {};
let linked = 0;
/** Runs a write; a refusal (a quota, a blob already gone) is counted, not thrown. */
async function attempt(write: () => Promise<unknown>): Promise<boolean> {
  try {
    await write();
    return true;
  } catch (error) {
    const code = (error as { code?: string }).code ?? String(error);
    refused[code] = (refused[code] ?? 0) + 1;
    return false;
  }
}

/** Links into, and deletes, two repositories every replica shares. */
async function linkAndDelete(i: number): Promise<void> {
  const place = () => new Promise<void>((resolve) => setImmediate(resolve));
  if (await attempt(() => store.linkBlob(`team/r${i % 2}`, blob(`own${me}-${i}`, 10 + i), undefined, { place }))) linked++;
  await attempt(() => store.mountBlob(`team/r${(i + 1) % 2}`, digest(`own${me}-${i}`), `team/r${i % 2}`));
  await attempt(() => store.deleteRepository(`team/r${(i + 1) % 2}`));
}

for (let i = 0; i < rounds; i++) {
  if (repositories) {
    await linkAndDelete(i);
    continue;
  }
  const shared = blob(`shared${i % 5}`, 1000 + (i % 5));
  const own = blob(`own${me}-${i}`, 10 + i);
  if (await attempt(() => store.linkBlob(`team/app${i % 3}`, shared))) linked++;
  if (await attempt(() => store.linkBlob(`team/w${me}`, own))) linked++;
  await attempt(() => store.mountBlob(`team/app${(i + 1) % 3}`, shared.digest, `team/app${i % 3}`));
  await attempt(() => store.linkBlob(`other/w${me}`, shared));
  if (grow) continue;
  if (i % 4 === 3) await attempt(() => store.unlinkBlob(`team/w${me}`, blob(`own${me}-${i - 1}`, 0).digest));
  if (i % 6 === 5) await attempt(() => store.deleteBlob(blob(`own${me}-${i - 2}`, 0).digest));
  if (i % 8 === 7) {
    await attempt(() => store.linkBlob(`team/tmp${me}`, shared));
    await attempt(() => store.deleteRepository(`team/tmp${me}`));
  }
  if (i % 10 === 9) await attempt(() => store.unlinkBlob(`team/app${i % 3}`, shared.digest));
}
await store.close();
console.log(JSON.stringify({ linked, refused }));
