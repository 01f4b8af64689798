// How long retention takes over a large registry: a store of N tags
// (BENCH_TAGS, default 100000) in 10 repositories, each tag on its own image
// (every 50th on an index of two untagged children, every 20th image signed
// by an untagged referrer, every 100th tag a release-N), then the rule
// `bench/*: keep newest 100 and release-*, untaggedGrace 0` planned and
// applied through the store's contract, BENCH_RUNS times (default 3) on a
// fresh copy each: SQLite, then PostgreSQL (a server this process starts,
// each copy loaded with `regmeta migrate`) unless BENCH_POSTGRES=0. Prints
// the median seconds of the plan and of the apply.
//
//   npm run bench:retention

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { asyncStore, MediaType, openStore, type Store } from 'regmeta';
import { openPostgresStore } from 'regmeta/postgres';
import { applyPlan } from '../src/store/retention.js';
import { planRetention } from '../src/store/retention-plan.js';
import type { RetentionRule } from '../src/store/retention-rules.js';
import { formatNumber, markdownTable, median, progress, progressDone } from './lib.js';
import { startPostgres } from './postgres.js';

const TAGS = Number(process.env.BENCH_TAGS ?? 100_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const REPOS = 10;
const BIN = resolve(import.meta.dirname, '../bin/regmeta.js');
const RULES: RetentionRule[] = [{ repositories: 'bench/*', keep: { newest: 100, tags: ['release-*'], untaggedGrace: 0 } }];

const sha256 = (bytes: Uint8Array | string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

function image(seed: string, subject?: { digest: string; size: number }) {
  const json: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(`config ${seed}`), size: 20 },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256('layer'), size: 5 }],
  };
  if (subject !== undefined) json.subject = { mediaType: MediaType.OciManifest, ...subject };
  const payload = Buffer.from(JSON.stringify(json));
  return { mediaType: MediaType.OciManifest, payload, digest: sha256(payload), size: payload.length };
}

function index(children: { digest: string; size: number }[]) {
  const manifests = children.map((c, i) => ({ mediaType: MediaType.OciManifest, ...c, platform: { architecture: `arch${i}`, os: 'linux' } }));
  const payload = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }));
  return { mediaType: MediaType.OciIndex, payload, digest: sha256(payload), size: payload.length };
}

/** The master store of TAGS tags. */
function populate(file: string): void {
  const store = openStore(file, { durability: 'normal' });
  for (let i = 0; i < TAGS; i++) {
    const repo = `bench/app${i % REPOS}`;
    const tag = i % 100 === 0 ? `release-${i}` : `t${i}`;
    const img = image(`${i}`);
    if (i % 50 === 0) {
      const child = image(`${i} arm64`);
      store.putManifest(repo, child.digest, child);
      store.putManifest(repo, img.digest, img);
      const idx = index([img, child]);
      store.putManifest(repo, idx.digest, idx, undefined, { tag });
    } else store.putManifest(repo, img.digest, img, undefined, { tag });
    if (i % 20 === 0) {
      const sig = image(`${i} sig`, img);
      store.putManifest(repo, sig.digest, sig);
    }
    if (i % 5000 === 0) progress(`populating: ${i} tags`);
  }
  store.close();
  progressDone();
}

interface Row {
  plan: number[];
  apply: number[];
  tags: number;
  manifests: number;
}

/** One run: plan, then apply, on a fresh copy. */
async function measure(store: Store, row: Row): Promise<void> {
  try {
    const t0 = performance.now();
    const plan = await planRetention(store, RULES);
    const t1 = performance.now();
    const result = await applyPlan(store, plan);
    const t2 = performance.now();
    if (result.skipped !== 0) throw new Error(`${result.skipped} planned deletions skipped`);
    row.plan.push((t1 - t0) / 1000);
    row.apply.push((t2 - t1) / 1000);
    row.tags = result.tags.length;
    row.manifests = result.manifests.length;
  } finally {
    await store.close();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'regmeta-bench-retention-'));
  const master = join(dir, 'master', 'metadata.db');
  const rows: [string, Row][] = [];
  try {
    populate(master);
    const sqlite: Row = { plan: [], apply: [], tags: 0, manifests: 0 };
    for (let run = 0; run < RUNS; run++) {
      const file = join(dir, `run${run}.db`);
      copyFileSync(master, file);
      progress(`sqlite: run ${run + 1} of ${RUNS}`);
      await measure(asyncStore(openStore(file)), sqlite);
      rmSync(file, { force: true });
    }
    progressDone();
    rows.push(['SQLite', sqlite]);
    if (process.env.BENCH_POSTGRES !== '0') rows.push(['PostgreSQL', await onPostgres(join(dir, 'master'))]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\nretention over ${TAGS} tags in ${REPOS} repositories (keep newest 100 and release-* each; median of ${RUNS} runs, each on a fresh copy)\n`);
  console.log(
    markdownTable(
      ['backend', 'tags deleted', 'manifests deleted', 'plan (s)', 'apply (s)'],
      rows.map(([name, r]) => [name, String(r.tags), String(r.manifests), formatNumber(median(r.plan)), formatNumber(median(r.apply))]),
      ['l', 'r', 'r', 'r', 'r'],
    ),
  );
}

/** The same runs on PostgreSQL, each on a new database loaded from the master by `regmeta migrate`. */
async function onPostgres(data: string): Promise<Row> {
  const server = await startPostgres();
  const row: Row = { plan: [], apply: [], tags: 0, manifests: 0 };
  try {
    for (let run = 0; run < RUNS; run++) {
      const url = await server.createDatabase();
      progress(`postgres: loading run ${run + 1} of ${RUNS}`);
      const migrated = spawnSync(process.execPath, [BIN, 'migrate', '--data', data, '--to', url], { encoding: 'utf8' });
      if (migrated.status !== 0) throw new Error(`regmeta migrate failed: ${migrated.stderr}`);
      progress(`postgres: run ${run + 1} of ${RUNS}`);
      await measure(await openPostgresStore(url), row);
    }
    progressDone();
  } finally {
    await server.stop();
  }
  return row;
}

await main();
