// How fast `regmeta migrate` copies a SQLite store into PostgreSQL: a store of
// N tags (BENCH_TAGS, comma-separated; default 10000,100000) built through the
// store's API (a manifest with its own config blob per tag, every tenth tag
// moved once for history), then the built bin migrates it into a new database
// of the PostgreSQL server at BENCH_DATABASE (a superuser's URL: it creates
// the databases), and the table of rows per second per table is printed.
//
//   BENCH_DATABASE=postgres://postgres@127.0.0.1:5432/postgres npm run bench:migrate

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import postgres from 'postgres';
import { MediaType, openStore } from 'regmeta';
import { formatNumber, markdownTable } from './lib.js';

const SCALES = (process.env.BENCH_TAGS ?? '10000,100000').split(',').map(Number);
const SERVER = process.env.BENCH_DATABASE;
const BIN = resolve(import.meta.dirname, '../bin/regmeta.js');
const REPOS = 10;

const sha256 = (bytes: Uint8Array | string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** A store of `tags` tags in REPOS repositories, each on its own manifest and config blob. */
function populate(dir: string, tags: number): void {
  const store = openStore(join(dir, 'metadata.db'), { durability: 'normal' });
  const layer = { digest: sha256('layer'), size: 5 };
  for (let i = 0; i < tags; i++) {
    const repo = `bench/app${i % REPOS}`;
    if (i < REPOS) store.linkBlob(repo, layer);
    const config = { digest: sha256(`config ${i}`), size: 20 };
    store.linkBlob(repo, config);
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
      annotations: { 'org.example.n': String(i) },
    };
    const payload = Buffer.from(JSON.stringify(manifest));
    store.putManifest(repo, undefined, { mediaType: MediaType.OciManifest, payload }, undefined, { tag: `t${i}` });
    // Every tenth tag moves once more: a second history row and an UPDATE event.
    if (i % 10 === 9 && i >= 10) store.putTag(repo, `t${i - 10}`, { digest: sha256(payload) });
  }
  store.close();
}

async function createDatabase(name: string): Promise<string> {
  const sql = postgres(SERVER!, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(`DROP DATABASE IF EXISTS ${name}`);
    await sql.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await sql.end();
  }
  const url = new URL(SERVER!);
  url.pathname = `/${name}`;
  return url.toString();
}

interface Summary {
  tables: { table: string; rows: number; copied: number; seconds: number; verified: boolean }[];
  seconds: number;
}

async function main(): Promise<void> {
  if (!SERVER) throw new Error('set BENCH_DATABASE to a PostgreSQL superuser URL (the bench creates databases)');
  const rows: string[][] = [];
  for (const tags of SCALES) {
    const dir = mkdtempSync(join(tmpdir(), 'regmeta-bench-migrate-'));
    try {
      const built = Date.now();
      populate(dir, tags);
      process.stderr.write(`built a store of ${tags} tags in ${((Date.now() - built) / 1000).toFixed(1)}s\n`);
      const url = await createDatabase(`regmeta_bench_migrate_${tags}`);
      const run = spawnSync(process.execPath, [BIN, 'migrate', '--data', dir, '--to', url, '--json'], { encoding: 'utf8' });
      if (run.status !== 0) throw new Error(`migrate failed (${run.status}): ${run.stderr}`);
      const summary = JSON.parse(run.stdout) as Summary;
      const copiedRows = summary.tables.reduce((sum, t) => sum + t.copied, 0);
      const copySeconds = summary.tables.reduce((sum, t) => sum + t.seconds, 0);
      for (const t of summary.tables) {
        if (t.rows === 0) continue;
        rows.push([String(tags), t.table, formatNumber(t.rows), t.seconds.toFixed(2), formatNumber(Math.round(t.copied / t.seconds))]);
      }
      rows.push([String(tags), '**copy, all tables**', formatNumber(copiedRows), copySeconds.toFixed(2), formatNumber(Math.round(copiedRows / copySeconds))]);
      rows.push([String(tags), '**whole run (copy + verify)**', formatNumber(copiedRows), summary.seconds.toFixed(2), formatNumber(Math.round(copiedRows / summary.seconds))]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  process.stdout.write(`${markdownTable(['tags', 'table', 'rows', 'seconds', 'rows/s'], rows)}\n`);
}

await main();
