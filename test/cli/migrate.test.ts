// `regmeta migrate --to postgres://…`: a SQLite store built by real
// pushes (skopeo, and HTTP for a tag delete) to a real `regmeta serve`, copied
// into a real PostgreSQL database, then served from it by `regmeta serve
// --database` and compared tag by tag, byte by byte; a migration killed
// and the refusals, each one line and nothing changed (migrate-interrupted.test.ts:
// a migration killed mid-way and run again).

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { openStore } from 'regmeta';
import { openPostgresStore } from 'regmeta/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Exit } from '../../src/cli/exit.js';
import { haveProgram } from '../../bench/peers.js';
import { OCI, OciLayout, listBlobs, readBlob, resolveTag } from '../server/oci-layout.js';
import { pushImage } from '../server/helpers.js';
import { startPostgres, type PostgresServer } from '../store/postgres/server.js';
import { bulkStore, migrate, targetState, type Summary } from './migrate-fixture.js';
import { isOneLineError, regmeta, serve, tempDir } from './run.js';

let pg: PostgresServer;
const work = mkdtempSync(join(tmpdir(), 'regmeta-migrate-'));
/** The data directory of the SQLite registry the pushes built. */
const data = join(work, 'data');
let layouts = 0;
/** The event the webhook cursor stands at. */
let cursorEventId = '';
/** A webhook endpoint no server delivers to. */
const DOWN = 'http://127.0.0.1:9/down';

function skopeo(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('skopeo', args, { env: { ...process.env, REGISTRY_AUTH_FILE: join(work, 'auth.json') }, maxBuffer: 64 << 20, timeout: 60_000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`skopeo ${args.join(' ')}: ${stderr}`)) : resolve(stdout),
    );
  });
}
const copy = ['copy', '--insecure-policy', '--src-tls-verify=false', '--dest-tls-verify=false'];

/** A new one-image OCI layout tagged `tag`, pushed to `host/repo:tag`. */
async function pushLayout(host: string, repo: string, tag: string, index = false) {
  const layout = new OciLayout(join(work, `layout-${++layouts}`));
  const built = index ? layout.addIndex([{ architecture: 'amd64', os: 'linux' }, { architecture: 'arm64', os: 'linux', variant: 'v8' }]) : layout.addImage({ layers: 2 });
  layout.tag(built.descriptor, tag);
  await skopeo(...copy, ...(index ? ['--all'] : []), '--preserve-digests', `oci:${layout.dir}:${tag}`, `docker://${host}/${repo}:${tag}`);
  return layout;
}

interface Served {
  url: string;
  host: string;
  stop(): Promise<unknown>;
}

async function serveRegistry(args: string[] = []): Promise<Served> {
  const s = await serve(data, args);
  return { url: s.url, host: s.url.replace('http://', ''), stop: () => s.stop() };
}

/** What a registry answers, tag by tag: the tag lists and every tagged manifest's bytes and digest. */
async function contents(url: string) {
  const catalog = (await (await fetch(`${url}/v2/_catalog`)).json()) as { repositories: string[] };
  const result: Record<string, { tag: string; digest: string | null; type: string | null; bytes: string }[]> = {};
  for (const repo of catalog.repositories) {
    const { tags } = (await (await fetch(`${url}/v2/${repo}/tags/list`)).json()) as { tags: string[] };
    result[repo] = [];
    for (const tag of tags) {
      const res = await fetch(`${url}/v2/${repo}/manifests/${tag}`, { headers: { Accept: `${OCI.manifest}, ${OCI.index}` } });
      expect(res.status).toBe(200);
      const bytes = Buffer.from(await res.arrayBuffer()).toString('base64');
      result[repo].push({ tag, digest: res.headers.get('docker-content-digest'), type: res.headers.get('content-type'), bytes });
    }
  }
  return result;
}

/** What the CLI prints about the history of some tags, and the whole event log. */
async function cliView(where: string[]) {
  const history: Record<string, unknown> = {};
  for (const [repo, tag] of [['mig/app', 'latest'], ['mig/app', 'v1'], ['mig/multi', 'multi']]) {
    const run = await regmeta(['history', repo, tag, '--json', ...where]);
    expect(run.stderr).toBe('');
    history[`${repo}:${tag}`] = JSON.parse(run.stdout);
  }
  const events = await regmeta(['events', '--json', '--limit', '1000', ...where]);
  expect(events.stderr).toBe('');
  const notify = await regmeta(['notify', 'status', '--json', ...where]);
  // The sizes the target's triggers count as the copy's rows arrive: the source's.
  const usage = await regmeta(['usage', '--namespace', 'mig', '--json', ...where]);
  expect(usage.stderr).toBe('');
  return {
    history,
    events: JSON.parse(events.stdout) as { id: string; publishedAt: string }[],
    notify: JSON.parse(notify.stdout) as unknown[],
    usage: JSON.parse(usage.stdout) as unknown,
  };
}

beforeAll(async () => {
  if (!haveProgram('skopeo')) throw new Error('skopeo is not installed: this test drives the real client (.ci/run installs it)');
  pg = await startPostgres();
  // A webhook endpoint that never got anything: its cursor stays at the start of the log.
  const created = openStore(join(data, 'metadata.db'));
  created.notifications.open(DOWN);
  created.close();
  const registry = await serveRegistry();
  try {
    await pushLayout(registry.host, 'mig/app', 'v1');
    await pushLayout(registry.host, 'mig/app', 'v2');
    await pushLayout(registry.host, 'mig/multi', 'multi', true);
    // A tag moved twice: three entries in its history.
    for (let i = 0; i < 3; i++) await pushLayout(registry.host, 'mig/app', 'latest');
    // A tag deleted: its DELETE event and its history stay.
    await pushLayout(registry.host, 'mig/gone', 'old');
    expect((await fetch(`${registry.url}/v2/mig/gone/manifests/old`, { method: 'DELETE' })).status).toBe(202);
    await pushImage(registry.url, 'mig/http', 'x', 'pushed over HTTP');
  } finally {
    await registry.stop();
  }
  // A webhook cursor, where serve --notify would have left it: one event behind.
  const store = openStore(join(data, 'metadata.db'));
  store.notifications.open('http://hooks.example/registry');
  cursorEventId = store.getEvents({ perPage: 1 }).events[0].id;
  store.putTag('mig/http', 'y', store.getTag('mig/http', 'x'));
  // The oldest event pruned: the endpoint that is down missed it, which the copy must still say.
  expect(store.pruneEvents({ before: new Date(Date.now() + 60_000), limit: 1 })).toEqual({ pruned: 1, horizon: 1, horizonAt: expect.any(Date) });
  store.close();
}, 180_000);

afterAll(async () => {
  await pg?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('regmeta migrate --to postgres://…', () => {
  let url: string;
  let copiedHead = 0;

  it('copies a pushed store that regmeta serve --database then serves tag by tag, byte by byte, with the same history and events', async () => {
    const before = await serveRegistry();
    const expected = await contents(before.url);
    await before.stop();
    const view = await cliView(['--data', data]);

    url = await pg.createDatabase();
    const run = await migrate(['--data', data, '--to', url, '--json']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(Exit.OK);
    const summary = JSON.parse(run.stdout) as Summary;
    expect(summary.mismatches).toEqual([]);
    expect(summary.tables.every((t) => t.verified && t.copied === t.rows)).toBe(true);
    expect(summary.tables.find((t) => t.table === 'tag_history')!.rows).toBeGreaterThanOrEqual(7);
    expect(summary.tables.find((t) => t.table === 'notification_cursor')!.rows).toBe(2);

    const after = await serveRegistry(['--database', url]);
    try {
      expect(await contents(after.url)).toEqual(expected);
      expect(Object.keys(expected).sort()).toEqual(['mig/app', 'mig/gone', 'mig/http', 'mig/multi']);
      expect(await cliView(['--database', url, '--data', data])).toEqual(view);
      expect(view.history['mig/app:latest']).toHaveLength(3);
      expect(view.events.some((e) => (e as { type?: string }).type === 'DELETE')).toBe(true);

      // The blobs: the layout skopeo pulls from the PostgreSQL-served registry holds every byte it pushed.
      const pulled = join(work, 'pulled');
      await skopeo(...copy, `docker://${after.host}/mig/app:v1`, `oci:${pulled}:v1`);
      const manifest = resolveTag(pulled, 'v1');
      expect(manifest.digest).toBe(expected['mig/app'].find((t) => t.tag === 'v1')!.digest);
      for (const digest of listBlobs(pulled)) expect(readBlob(pulled, digest).length).toBeGreaterThan(0);
      expect(listBlobs(pulled)).toHaveLength(4);
      // notify status shows an endpoint as scheme://host:port.
      expect(view.notify).toMatchObject([
        { endpoint: 'http://127.0.0.1:9', missed: { count: 1, from: 1, to: 1 } },
        { endpoint: 'http://hooks.example', eventId: cursorEventId, backlog: 1 },
      ]);
    } finally {
      await after.stop();
    }
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      copiedHead = Number((await sql`SELECT max(seq) AS seq FROM event`)[0].seq);
      // The foreign keys, dropped for the copy, are all back: as many as a new schema has.
      expect(await foreignKeys(url)).toEqual(await foreignKeys(await pg.createDatabase(), true));
    } finally {
      await sql.end();
    }
  }, 120_000);

  it('lets a push to the migrated registry take fresh ids: its events come after every copied one', async () => {
    const served = await serveRegistry(['--database', url]);
    let pushed;
    try {
      pushed = await pushImage(served.url, 'mig/app', 'after', 'pushed after the migration');
    } finally {
      await served.stop();
    }
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const events = await sql`SELECT seq, object_type FROM event WHERE digest = ${pushed.digest} ORDER BY seq`;
      expect(events.length).toBeGreaterThan(0);
      expect(Number(events[0].seq)).toBe(copiedHead + 1);
      const [{ max }] = await sql`SELECT max(id) AS max FROM manifest`;
      const [{ id }] = await sql`SELECT id FROM manifest WHERE digest = ${pushed.digest}`;
      expect(id).toBe(max);
    } finally {
      await sql.end();
    }
  }, 60_000);

  it('reports with --verify-only, exit 1, the tables that differ from the source once the registry has moved on', async () => {
    const run = await migrate(['--data', data, '--to', url, '--verify-only', '--json']);
    expect(run.status).toBe(Exit.PROBLEMS);
    const summary = JSON.parse(run.stdout) as Summary;
    // The registry served pulls too: the repositories' last pulls differ from the source's.
    expect(summary.mismatches).toEqual(['repository', 'manifest', 'manifest_payload', 'tag', 'tag_history', 'blob', 'blob_link', 'manifest_blob', 'event']);
    expect(summary.tables.every((t) => t.copied === 0)).toBe(true);
  });

  it('refuses to continue a migration from another store', async () => {
    const other = tempDir('regmeta-migrate-other-');
    try {
      bulkStore(other, 3);
      const run = await migrate(['--data', other, '--to', url]);
      expect(run.status).toBe(Exit.DATABASE);
      expect(isOneLineError(run.stderr)).toBe(true);
      expect(run.stderr).toContain('holds a migration from another store');
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});

/** The foreign keys of the database at `url` (after setting its schema up, when `create`). */
async function foreignKeys(url: string, create = false): Promise<string[]> {
  if (create) await (await openPostgresStore(url)).close();
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const keys = await sql<{ key: string }[]>`
      SELECT conrelid::regclass::text || ' ' || pg_get_constraintdef(oid) AS key FROM pg_constraint WHERE contype = 'f' ORDER BY 1`;
    return keys.map((k) => k.key);
  } finally {
    await sql.end();
  }
}

describe('regmeta migrate refuses, one line and nothing changed,', () => {
  it('a database that a store is connected to (a server started on it first), until it closes', async () => {
    const target = await pg.createDatabase();
    const store = await openPostgresStore(target);
    let closed = false;
    try {
      const run = await migrate(['--data', data, '--to', target]);
      expect(run.status).toBe(Exit.DATABASE);
      expect(isOneLineError(run.stderr)).toBe(true);
      expect(run.stderr).toMatch(/is in use: \d+ connections of a regmeta store .*hint: stop the servers/);
      expect(await targetState(target)).toMatchObject({ exists: false });
      await store.close();
      closed = true;
      expect((await migrate(['--data', data, '--to', target])).status).toBe(Exit.OK);
    } finally {
      if (!closed) await store.close();
    }
  });

  it('a database that holds a registry it did not copy', async () => {
    const target = await pg.createDatabase();
    const store = await openPostgresStore(target);
    await store.linkBlob('someone/else', { digest: `sha256:${'a'.repeat(64)}`, size: 1 });
    await store.close();
    const run = await migrate(['--data', data, '--to', target]);
    expect(run.status).toBe(Exit.DATABASE);
    expect(isOneLineError(run.stderr)).toBe(true);
    expect(run.stderr).toMatch(/is not empty \(it holds rows in repository, blob, blob_link\b/);
    expect(await targetState(target)).toMatchObject({ exists: false });
  });

  it("a database with another program's tables", async () => {
    const target = await pg.createDatabase();
    const sql = postgres(target, { max: 1, onnotice: () => {} });
    try {
      await sql`CREATE TABLE theirs (id int)`;
      const run = await migrate(['--data', data, '--to', target]);
      expect(run.status).toBe(Exit.DATABASE);
      expect(isOneLineError(run.stderr)).toBe(true);
      expect(run.stderr).toContain('is not a regmeta store');
      const tables = await sql`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`;
      expect(tables.map((t) => t.tablename)).toEqual(['theirs']);
    } finally {
      await sql.end();
    }
  });

  it('a missing source store', async () => {
    const empty = tempDir('regmeta-migrate-none-');
    const target = await pg.createDatabase();
    const run = await migrate(['--data', empty, '--to', target]);
    rmSync(empty, { recursive: true, force: true });
    expect(run.status).toBe(Exit.DATABASE);
    expect(isOneLineError(run.stderr)).toBe(true);
    expect(run.stderr).toContain('no database at');
    expect(await targetState(target)).toMatchObject({ exists: false });
  });

  it('--verify-only on an empty database, which it does not set up', async () => {
    const target = await pg.createDatabase();
    const run = await migrate(['--data', data, '--to', target, '--verify-only']);
    expect(run.status).toBe(Exit.DATABASE);
    expect(isOneLineError(run.stderr)).toBe(true);
    expect(run.stderr).toContain('has no regmeta schema');
    const sql = postgres(target, { max: 1, onnotice: () => {} });
    try {
      expect(await sql`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`).toHaveLength(0);
    } finally {
      await sql.end();
    }
  });

  it('a --to that is not a PostgreSQL URL, or none, with exit 2', async () => {
    for (const args of [['--to', 'mysql://root@localhost/registry'], ['--to', 'not a url'], []]) {
      const run = await migrate(['--data', data, ...args]);
      expect(run.status).toBe(Exit.USAGE);
      expect(isOneLineError(run.stderr)).toBe(true);
    }
  });

  it('a server that cannot be reached, with exit 3 and the password masked', async () => {
    const run = await migrate(['--data', data, '--to', 'postgres://regmeta:hunter2@127.0.0.1:1/registry']);
    expect(run.status).toBe(Exit.DATABASE);
    expect(isOneLineError(run.stderr)).toBe(true);
    expect(run.stderr).toContain('is unavailable');
    expect(run.stderr).not.toContain('hunter2');
  });
});
