// Garbage collection while replicas serve: real `regmeta gc` processes with
// no grace period, over and over, while two `regmeta serve` replicas on the
// same PostgreSQL database and blob directory push images whose tags move
// (leaving garbage) and whose layers are partly shared (so a blob is garbage
// one moment and referenced by a push in flight the next). Nothing tagged may
// lose a blob, no push may get a 500; and two sweeps at once finish cleanly.
// All of it with the blobs in one shared directory, and in one S3 bucket
// (each replica and each gc with a data directory of its own).

import postgresClient from 'postgres';
import { describe, expect, it } from 'vitest';
import type { GcResult } from '../../src/cli/commands/gc.js';
import { gateTagWrites } from '../store/postgres/gate.js';
import { putManifest, sha256 } from '../server/helpers.js';
import {
  acknowledged,
  answerOf,
  cliJson,
  makeImage,
  postBlob,
  pullProblem,
  pushTo,
  serverErrors,
  replicaSuite,
  STORAGES,
  until,
  type Image,
  type Pushed,
} from './replicas.js';
import { regmeta, type Run, type Served } from './run.js';

const REPO = 'gc/app';

/** `regmeta gc --grace 0` on a cluster's database and blobs (`storage`: its --storage arguments). */
function gcRun(database: string, data: string, storage: string[]): Promise<Run> {
  return regmeta(['gc', '--database', database, '--data', data, ...storage, '--grace', '0', '--json']);
}

/** A sweep's result; fails with its stderr when it did not exit 0. */
function swept(run: Run): GcResult {
  expect(run.stderr.split('\n').filter((l) => l.startsWith('regmeta')), run.stderr).toEqual([]);
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as GcResult;
}

/** Whether gc has deleted, as an event says, any of `blobs`: it is sweeping them right now. */
async function gcTakes(url: string, blobs: Set<string>): Promise<boolean> {
  const res = await fetch(`${url}/api/v0/events?actorId=GARBAGE_COLLECTOR&objectType=BLOB&eventType=DELETE&limit=100`);
  const page = (await res.json()) as { events: { digest?: string }[] };
  return page.events.some((event) => event.digest !== undefined && blobs.has(event.digest));
}

/**
 * Pushes one image, again and again while gc takes a blob between its upload
 * and the manifest (MANIFEST_BLOB_UNKNOWN, what the grace period is for), as
 * a client would. @returns how many times it pushed again, or the failure.
 */
async function pushAgain(url: string, tag: string, image: Image, first?: Pushed): Promise<number | Pushed> {
  let pushed = first ?? (await pushTo(url, REPO, tag, image));
  for (let again = 0; ; again++) {
    if (acknowledged(pushed)) return again;
    if (pushed.manifest?.code !== 'MANIFEST_BLOB_UNKNOWN' || again === 10) return pushed;
    pushed = await pushTo(url, REPO, tag, image);
  }
}

/**
 * Pushes through `url` in batches until `stop()`, as slow clients would:
 * the blobs of five images, then, once gc is seen taking some of them, the
 * five manifests at once, so that manifests commit while gc decides about
 * their blobs. One image of each batch goes under the moving tag `name`
 * (leaving the previous one to gc), the others under tags of their own.
 * @returns how many pushes were made again.
 */
async function pushLoop(url: string, name: string, stop: () => boolean, tagged: Map<string, Image>, failures: Pushed[]): Promise<number> {
  let again = 0;
  const record = (tag: string, image: Image, result: number | Pushed) => {
    if (typeof result !== 'number') return void failures.push(result);
    again += result;
    tagged.set(tag, image);
  };
  for (let batch = 0; !stop() || batch < 3; batch++) {
    const images = Array.from({ length: 5 }, (_, i) => makeImage(`${name} ${batch} ${i}`, [`shared layer ${(batch + i) % 4}`], 3));
    const tags = images.map((_, i) => (i === 0 ? name : `${name}-${batch}-${i}`));
    const uploaded = new Set<string>();
    for (const image of images) {
      for (const bytes of image.blobs) {
        const answer = await postBlob(url, REPO, bytes);
        if (answer.status !== 201) {
          failures.push({ blobs: [answer] });
          return again;
        }
        uploaded.add(sha256(bytes));
      }
    }
    await until(() => gcTakes(url, uploaded), `gc to take a blob of batch ${batch} of ${name}`);
    const answers = await Promise.all(images.map((image, i) => putManifest(url, REPO, tags[i], image.manifest).then(answerOf)));
    for (let i = 0; i < images.length; i++) {
      const blobs = images[i].blobs.map(() => ({ status: 201 }));
      record(tags[i], images[i], await pushAgain(url, tags[i], images[i], { blobs, manifest: answers[i] }));
    }
  }
  return again;
}

/** Every tag of REPO is the image last acknowledged under it, and pulls whole through every replica. */
async function expectAllPull(database: string, all: Served[], tagged: Map<string, Image>): Promise<void> {
  const tags = await cliJson<{ tag: string; digest: string }[]>(database, ['tags', REPO]);
  expect(tags.map((t) => [t.tag, t.digest])).toEqual([...tagged].map(([tag, image]) => [tag, image.digest]).sort(([x], [y]) => (x < y ? -1 : 1)));
  for (const replica of all) {
    for (const [tag, image] of tagged) expect(await pullProblem(replica.url, REPO, tag, image)).toBe('');
  }
}

describe.each(STORAGES)('gc while replicas push (blobs: %s)', (kind) => {
  const suite = replicaSuite({ storage: kind });
  const setUp = (n: number) => suite.cluster(n);

  it('repeated gc --grace 0 runs never take a blob of a tagged image, and no push gets a 500', { timeout: 300_000 }, async () => {
    const { database, data, storage, all } = await setUp(2);
    const sweeps: GcResult[] = [];
    let pushing = true;
    const gcLoop = (async () => {
      while (pushing) sweeps.push(swept(await gcRun(database, data, storage)));
    })();
    const tagged = new Map<string, Image>();
    const failures: Pushed[] = [];
    const enough = () => sweeps.length >= 5;
    const retried = await Promise.all(all.map((replica, i) => pushLoop(replica.url, `r${i}`, enough, tagged, failures)));
    pushing = false;
    await gcLoop;

    expect(failures).toEqual([]);
    for (const replica of all) expect(serverErrors(replica)).toEqual([]);
    // The sweeps did collect: moved tags left manifests and blobs behind.
    expect(sweeps.reduce((n, s) => n + s.manifestsDeleted.length, 0)).toBeGreaterThan(0);
    expect(sweeps.reduce((n, s) => n + s.blobsDeleted.length, 0)).toBeGreaterThan(0);
    await expectAllPull(database, all, tagged);
    const check = await cliJson<{ ok: boolean; problems?: unknown }>(database, ['check', '--data', data, ...storage]);
    expect(check).toMatchObject({ ok: true });
    // A last sweep with nothing in flight takes nothing that is tagged.
    swept(await gcRun(database, data, storage));
    await expectAllPull(database, all, tagged);
    console.info(`gc while pushing: ${sweeps.length} sweeps (${sweeps.map((s) => s.seconds.toFixed(1)).join(", ")} s), ${tagged.size} tags, ${retried.join('+')} pushes made again after MANIFEST_BLOB_UNKNOWN`);
  });

  it('a gc run while a manifest push is inside its transaction on another replica leaves the push whole', async () => {
    const { database, data, storage, all } = await setUp(2);
    const [a, b] = all;
    const sql = postgresClient(database, { max: 1, onnotice: () => {} });
    try {
      const gate = await gateTagWrites(sql);
      const image = makeImage('gated', [], 2);
      for (const bytes of image.blobs) expect(await postBlob(a.url, REPO, bytes)).toEqual({ status: 201 });
      await gate.close();
      // A has checked and locked the links of the image's blobs, and waits at the gate inside its transaction.
      const put = putManifest(a.url, REPO, 'gated', image.manifest).then(answerOf);
      await gate.waiting(1);
      // gc sees blobs no committed manifest references, older than no grace: it goes for them, and waits on A.
      const sweep = gcRun(database, data, storage);
      await gate.waiting(2);
      await gate.open();
      expect(await put).toEqual({ status: 201 });
      const result = swept(await sweep);
      expect(result.blobsDeleted).toEqual([]);
      expect(result.skipped).toBeGreaterThan(0);
      expect(await pullProblem(b.url, REPO, 'gated', image)).toBe('');
    } finally {
      await sql.end();
    }
  });

  it('two gc runs at once on one database both finish without errors, each deletion made once, nothing tagged damaged', async () => {
    const { database, data, storage, all } = await setUp(1);
    const [replica] = all;
    const tagged = new Map<string, Image>();
    for (let n = 0; n < 30; n++) {
      const image = makeImage(`twice ${n}`, [`shared layer ${n % 4}`]);
      const tag = n % 5 === 0 ? `kept-${n}` : 'moving';
      expect(acknowledged(await pushTo(replica.url, REPO, tag, image))).toBe(true);
      tagged.set(tag, image);
    }

    const [first, second] = (await Promise.all([gcRun(database, data, storage), gcRun(database, data, storage)])).map(swept);
    const manifests = [...first.manifestsDeleted, ...second.manifestsDeleted].map((m) => m.digest);
    const blobs = [...first.blobsDeleted, ...second.blobsDeleted].map((b) => b.digest);
    // 30 manifests, 6 kept by their own tags and one by 'moving'.
    expect(manifests).toHaveLength(23);
    expect(new Set(manifests).size).toBe(manifests.length);
    expect(new Set(blobs).size).toBe(blobs.length);
    // Each of the 23 had a config and a layer of its own; the shared layers are all still referenced.
    expect(blobs).toHaveLength(46);
    expect(first.filesRemoved + second.filesRemoved).toBe(46);
    await expectAllPull(database, all, tagged);
    expect(await cliJson<{ ok: boolean }>(database, ['check', '--data', data, ...storage])).toMatchObject({ ok: true });
    const third = swept(await gcRun(database, data, storage));
    expect([third.manifestsDeleted, third.blobsDeleted]).toEqual([[], []]);
    expect(serverErrors(replica)).toEqual([]);
  });
});
