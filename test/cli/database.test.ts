// `--database postgres://…`: a real `regmeta serve` process and the real CLI
// on a real PostgreSQL server (the harness starts it), with --data holding
// only the blobs; and the one line and exit code for a URL that is not one
// or a server that is not there.

import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Exit } from '../../src/cli/exit.js';
import { pushImage } from '../server/helpers.js';
import { startPostgres, type PostgresServer } from '../store/postgres/server.js';
import { isOneLineError, regmeta, serve, tempDir, type Served } from './run.js';

let server: PostgresServer;
const dirs: string[] = [];
const served: Served[] = [];

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await Promise.all(served.map((s) => s.stop()));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  await server?.stop();
});

function blobDir(): string {
  const dir = tempDir('regmeta-db-');
  dirs.push(dir);
  return dir;
}

async function serveOn(url: string, data: string): Promise<Served> {
  const s = await serve(data, ['--database', url]);
  served.push(s);
  return s;
}

/** A loopback port nothing listens on: one the kernel handed out and took back. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

describe('regmeta serve --database', () => {
  it('keeps the metadata in PostgreSQL and only the blobs under --data: a pushed image pulls back byte-identical', async () => {
    const url = await server.createDatabase();
    const data = blobDir();
    const registry = await serveOn(url, data);
    const image = await pushImage(registry.url, 'pg/app', 'v1', 'served from postgres');

    const manifest = await fetch(`${registry.url}/v2/pg/app/manifests/v1`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
    expect(manifest.status).toBe(200);
    expect(Buffer.from(await manifest.arrayBuffer()).equals(Buffer.from(image.manifest))).toBe(true);
    expect(manifest.headers.get('docker-content-digest')).toBe(image.digest);
    const layer = await fetch(`${registry.url}/v2/pg/app/blobs/${JSON.parse(image.manifest).layers[0].digest}`);
    expect(await layer.text()).toBe(image.layer);

    // Readiness asks the PostgreSQL store whether it takes writes; the metrics count what it holds.
    expect((await fetch(`${registry.url}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${registry.url}/metrics`)).text()).toMatch(/^regmeta_tags 1$/m);
    expect(existsSync(join(data, 'metadata.db'))).toBe(false);
    expect(existsSync(join(data, 'blobs'))).toBe(true);
    expect(String(registry.listening.database)).toMatch(/^postgres(ql)?:\/\//);
  });

  it('masks the password of --database in --print-config', async () => {
    const run = await regmeta(['serve', '--database', 'postgres://regmeta:hunter2@db.example:5432/registry', '--print-config']);
    expect(run.status).toBe(0);
    expect(run.stdout).not.toContain('hunter2');
    expect(run.stdout).toMatch(/^database: postgres:\/\/regmeta:\*+@db\.example:5432\/registry # from --database$/m);
  });

  it('reads the URL from REGMETA_DATABASE and refuses one that is not a postgres:// URL with exit 2, before starting', async () => {
    const run = await regmeta(['serve', '--data', blobDir()], { env: { REGMETA_DATABASE: 'mysql://root@localhost/registry' } });
    expect(run.status).toBe(Exit.USAGE);
    expect(run.stderr).toContain('REGMETA_DATABASE: expected a postgres:// or postgresql:// URL');
    expect(run.stderr).not.toContain('    at ');
  });

  it('says in one line, exit 3, that the server cannot be reached, password masked', async () => {
    const url = `postgres://regmeta:hunter2@127.0.0.1:${await closedPort()}/registry`;
    const run = await regmeta(['serve', '--listen', '127.0.0.1:0', '--data', blobDir(), '--database', url]);
    expect(run.status).toBe(Exit.DATABASE);
    const faults = run.stderr.split('\n').filter((l) => l !== '');
    expect(faults).toHaveLength(1);
    expect(faults[0]).toMatch(/^regmeta serve: cannot open the metadata: postgres:\/\/regmeta:\*\*\*@127\.0\.0\.1:\d+\/registry is unavailable/);
    expect(run.stderr).not.toContain('hunter2');
  });
});

describe('the CLI with --database', () => {
  it('tags, stats and gc read and sweep the metadata that a served registry wrote to PostgreSQL', async () => {
    const url = await server.createDatabase();
    const data = blobDir();
    const registry = await serveOn(url, data);
    const first = await pushImage(registry.url, 'pg/gc', 'latest', 'first');
    const second = await pushImage(registry.url, 'pg/gc', 'latest', 'second');

    const tags = await regmeta(['tags', '--database', url, '--json', 'pg/gc']);
    expect(tags.stderr).toBe('');
    expect(JSON.parse(tags.stdout)).toMatchObject([{ tag: 'latest', digest: second.digest }]);

    const stats = await regmeta(['stats', '--json'], { env: { REGMETA_DATABASE: url } });
    expect(stats.status).toBe(0);
    expect(JSON.parse(stats.stdout)).toMatchObject({ repositories: 1, manifests: 2, tags: 1, blobs: 4 });
    // The text form names the database, not a SQLite file's WAL and pages.
    const text = await regmeta(['stats', '--database', url]);
    expect(text.stdout).toMatch(/^database +\S+ \S+ \(PostgreSQL, postgres:\/\//m);
    expect(text.stdout).not.toContain('WAL');

    const check = await regmeta(['check', '--database', url, '--data', data, '--json']);
    expect(check.stderr).not.toContain('problem');
    expect(JSON.parse(check.stdout)).toMatchObject({ ok: true, checked: { manifests: 2, tags: 1, blobFiles: 4 } });
    const events = await regmeta(['events', '--database', url, '--json', '--object', 'TAG']);
    expect(events.status).toBe(0);
    expect(JSON.stringify(JSON.parse(events.stdout))).toContain(second.digest);

    // The first image lost its tag: gc takes its manifest, then its two blobs and their files.
    const gc = await regmeta(['gc', '--database', url, '--data', data, '--grace', '0', '--json']);
    expect(gc.status).toBe(0);
    const swept = JSON.parse(gc.stdout) as { manifestsDeleted: { digest: string }[]; blobsDeleted: unknown[]; filesRemoved: number };
    expect(swept.manifestsDeleted).toEqual([{ repository: 'pg/gc', digest: first.digest }]);
    expect(swept.blobsDeleted).toHaveLength(2);
    expect(swept.filesRemoved).toBe(2);
    expect((await fetch(`${registry.url}/v2/pg/gc/manifests/${first.digest}`)).status).toBe(404);
    expect((await fetch(`${registry.url}/v2/pg/gc/manifests/latest`)).status).toBe(200);
    expect(readdirSync(join(data, 'blobs', 'sha256'), { recursive: true }).filter((f) => String(f).length > 3)).toHaveLength(2);
  });

  it('inspects without setting anything up: stats, check and notify status on an empty database exit 3 and leave it empty', async () => {
    const url = await server.createDatabase();
    for (const args of [['stats'], ['check', '--data', blobDir()], ['notify', 'status']]) {
      const run = await regmeta([...args, '--database', url]);
      expect(run.status).toBe(Exit.DATABASE);
      expect(isOneLineError(run.stderr)).toBe(true);
      expect(run.stderr).toContain('has no regmeta schema, and a read-only open does not set one up');
    }
    // Nothing was created: a writer's open still finds an empty database and sets the schema up.
    expect((await regmeta(['repos', '--database', url, '--json'])).stdout.trim()).toBe('[]');
  });

  it('refuses what needs a copy of the database, which the PostgreSQL store does not make: gc --dry-run, import --dry-run and backup, exit 2 in one line', async () => {
    const url = await server.createDatabase();
    // A registry's database: a writer's open sets its schema up.
    expect((await regmeta(['repos', '--database', url])).status).toBe(0);
    // An empty distribution storage to import from.
    const source = blobDir();
    for (const part of ['repositories', 'blobs']) mkdirSync(join(source, part));
    for (const args of [['gc', '--dry-run'], ['import', source, '--dry-run'], ['backup', join(blobDir(), 'copy.db')]]) {
      const run = await regmeta([...args, '--database', url]);
      expect(run.status).toBe(Exit.USAGE);
      expect(isOneLineError(run.stderr)).toBe(true);
      expect(run.stderr).toContain('works on the SQLite store only, not with --database');
    }
  });

  it('refuses a --database that is no PostgreSQL URL with exit 2, as serve does, naming where and not the password', async () => {
    for (const url of ['sqlite:///srv/registry/metadata.db', 'postgres://user:hunter2@[bad']) {
      const run = await regmeta(['repos', '--database', url]);
      expect(run.status).toBe(Exit.USAGE);
      expect(isOneLineError(run.stderr)).toBe(true);
      expect(run.stderr).toContain('--database: expected a postgres:// or postgresql:// URL');
      expect(run.stderr).not.toContain('hunter2');
    }
    const run = await regmeta(['stats'], { env: { REGMETA_DATABASE: 'mysql://root@localhost/registry' } });
    expect(run.status).toBe(Exit.USAGE);
    expect(run.stderr).toContain('REGMETA_DATABASE: expected a postgres:// or postgresql:// URL');
  });

  it('says in one line, exit 3, that the server cannot be reached', async () => {
    const run = await regmeta(['tags', '--database', `postgres://regmeta@127.0.0.1:${await closedPort()}/registry`, 'pg/app']);
    expect(run.status).toBe(Exit.DATABASE);
    expect(isOneLineError(run.stderr)).toBe(true);
    expect(run.stderr).toContain('is unavailable');
  });
});
