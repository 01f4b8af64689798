// `regmeta import` on the storage tree that a real Debian docker-registry
// wrote after real skopeo pushes: afterwards the store serves what that
// registry serves. Then idempotence, resumption after a kill, and problems.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openStore } from 'regmeta';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCEPT } from '../server/mirror/manifest-pull.js';
import { OciLayout } from '../server/oci-layout.js';
import { startDistribution, type Peer } from '../../bench/peers.js';
import { BIN, dumpState, isOneLineError, regmeta, serve, tempDir } from './run.js';
import { Storage } from './storage.js';

/** skopeo copy of the layout's `ref` to `<host>/<repo>:<tag>`; `all` for an index; `format` v2s2 converts to Docker's media types. */
function push(layout: OciLayout, ref: string, host: string, repo: string, tag: string, all = false, format?: 'v2s2'): void {
  const args = ['copy', '--insecure-policy', '--dest-tls-verify=false', '--quiet'];
  if (all) args.push('--all');
  if (format) args.push('--format', format);
  args.push(`oci:${layout.dir}:${ref}`, `docker://${host}/${repo}:${tag}`);
  const result = spawnSync('skopeo', args, { encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) throw new Error(`skopeo ${args.join(' ')} failed: ${result.stderr ?? result.error?.message}`);
}

describe('import from a real docker-registry', () => {
  let dir: string;
  let registry: Peer;
  let data: string;
  /** The summary of the first import into `data`, with default options. */
  let imported: { blobs: { filesPlaced: number } };
  const pushed: { a: string; b: string; index: string; amd: string; arm: string; deleted: string } = {} as never;

  beforeAll(async () => {
    dir = tempDir();
    registry = await startDistribution();
    const layout = new OciLayout(join(dir, 'layout'));
    const a = layout.addImage({ layerSize: 1024 }).descriptor;
    const b = layout.addImage({ layerSize: 1024 }).descriptor;
    const c = layout.addImage({ layerSize: 1024 }).descriptor;
    const multi = layout.addIndex([{ architecture: 'amd64', os: 'linux' }, { architecture: 'arm64', os: 'linux' }], { layerSize: 1024 });
    const [amd, arm] = multi.images.map((image) => image.descriptor);
    const index = multi.descriptor;
    layout.tag(a, 'a');
    layout.tag(b, 'b');
    layout.tag(c, 'c');
    layout.tag(index, 'multi');
    push(layout, 'a', registry.host, 'acme/app', 'v1');
    push(layout, 'b', registry.host, 'acme/app', 'v1'); // a re-tag: v1's index now holds a and b
    push(layout, 'b', registry.host, 'acme/app', 'stable');
    push(layout, 'a', registry.host, 'acme/app', 'old');
    push(layout, 'multi', registry.host, 'library/multi', 'latest', true);
    push(layout, 'a', registry.host, 'other', '1.0');
    push(layout, 'b', registry.host, 'other', 'docker', false, 'v2s2'); // Docker schema 2 media types
    push(layout, 'c', registry.host, 'other', 'gone');
    // A deleted manifest leaves its revision directory without a link.
    const deleted = await fetch(`${registry.url}/v2/other/manifests/${c.digest}`, { method: 'DELETE' });
    expect(deleted.status).toBe(202);
    Object.assign(pushed, { a: a.digest, b: b.digest, index: index.digest, amd: amd.digest, arm: arm.digest, deleted: c.digest });
    data = join(dir, 'data');
    mkdirSync(data);
  });

  afterAll(async () => {
    await registry?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function get(path: string): Promise<{ status: number; body: Buffer; digest: string | null }> {
    const response = await fetch(`${registry.url}${path}`, { headers: { Accept: ACCEPT } });
    return { status: response.status, body: Buffer.from(await response.arrayBuffer()), digest: response.headers.get('docker-content-digest') };
  }

  /** Starts `regmeta serve` on `data` and expects it to serve acme/app:v1's config and layers as the registry does. */
  async function servesWhatTheRegistryServes(data: string): Promise<void> {
    const server = await serve(data);
    try {
      const manifest = JSON.parse((await get(`/v2/acme/app/manifests/v1`)).body.toString());
      for (const blob of [manifest.config, ...manifest.layers]) {
        const ours = await fetch(`${server.url}/v2/acme/app/blobs/${blob.digest}`);
        const theirs = await fetch(`${registry.url}/v2/acme/app/blobs/${blob.digest}`);
        expect(ours.status).toBe(200);
        expect(Buffer.compare(Buffer.from(await ours.arrayBuffer()), Buffer.from(await theirs.arrayBuffer()))).toBe(0);
      }
    } finally {
      await server.stop();
    }
  }

  it('--dry-run reports the work and creates no database', async () => {
    const run = await regmeta(['import', registry.dataDir, '--data', data, '--dry-run', '--json']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const summary = JSON.parse(run.stdout);
    expect(summary.dryRun).toBe(true);
    expect(summary.repositories).toBe(3);
    expect(summary.manifests.imported).toBe(7);
    expect(existsSync(join(data, 'metadata.db'))).toBe(false);
  });

  it('imports every repository, tag and manifest body the registry serves', async () => {
    const run = await regmeta(['import', registry.dataDir, '--data', data, '--json']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const summary = JSON.parse(run.stdout);
    expect(summary.problems).toEqual([]);
    expect(summary).toMatchObject({ repositories: 3, manifests: { imported: 7, present: 0 }, tags: { set: 6, unchanged: 0 } });
    imported = summary;

    const store = openStore(join(data, 'metadata.db'));
    try {
      const catalog = JSON.parse((await get('/v2/_catalog')).body.toString()).repositories as string[];
      expect(catalog).toEqual(['acme/app', 'library/multi', 'other']);
      expect(store.catalog()).toEqual(catalog);
      for (const repo of catalog) {
        const tags = (JSON.parse((await get(`/v2/${repo}/tags/list`)).body.toString()).tags as string[]).sort();
        expect(store.allTags(repo)).toEqual(tags);
        for (const tag of tags) {
          const served = await get(`/v2/${repo}/manifests/${tag}`);
          expect(served.status).toBe(200);
          const descriptor = store.getTag(repo, tag);
          expect(descriptor.digest).toBe(served.digest);
          expect(Buffer.compare(store.getManifest(repo, descriptor.digest).payload, served.body)).toBe(0);
        }
      }
      for (const child of [pushed.amd, pushed.arm]) {
        const served = await get(`/v2/library/multi/manifests/${child}`);
        expect(served.status).toBe(200);
        expect(Buffer.compare(store.getManifest('library/multi', child).payload, served.body)).toBe(0);
      }
      expect(store.getTag('library/multi', 'latest').mediaType).toBe('application/vnd.oci.image.index.v1+json');
      expect(store.getTag('other', 'docker').mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
      // The tag's index, replayed: v1 was a, then b.
      expect(store.tagHistory('acme/app', 'v1').map((h) => h.digest)).toEqual([pushed.b, pushed.a]);
      // The deleted manifest is neither served nor imported.
      expect((await get(`/v2/other/manifests/${pushed.deleted}`)).status).toBe(404);
      expect(() => store.statManifest('other', pushed.deleted)).toThrow(expect.objectContaining({ code: 'MANIFEST_UNKNOWN' }));
      // Layers and configs are linked with their sizes.
      const config = JSON.parse(store.getManifest('acme/app', pushed.a).payload.toString()).config;
      expect(store.statBlob('acme/app', config.digest).size).toBe(config.size);
    } finally {
      store.close();
    }
  });

  it('a second import changes nothing', async () => {
    const file = join(data, 'metadata.db');
    const before = dumpState(file);
    const run = await regmeta(['import', registry.dataDir, '--data', data, '--json']);
    expect(run.status).toBe(0);
    const summary = JSON.parse(run.stdout);
    expect(summary).toMatchObject({ manifests: { imported: 0, present: 7 }, tags: { set: 0, unchanged: 6 }, blobs: { linked: 0 } });
    expect(dumpState(file)).toEqual(before);
  });

  it('then passes check', async () => {
    const run = await regmeta(['check', '--data', data, '--json']);
    expect(JSON.parse(run.stdout).problems).toEqual([]);
    expect(run.status).toBe(0);
  });

  it('by default places the blob files, so that a registry on the data directory serves the imported blobs', async () => {
    expect(imported.blobs.filesPlaced).toBeGreaterThan(0);
    const check = await regmeta(['check', '--data', data, '--json']);
    expect(JSON.parse(check.stdout).checked.blobFiles).toBe(imported.blobs.filesPlaced);
    await servesWhatTheRegistryServes(data);
  });

  it('with --blobs link, places the blob files so that regmeta serve serves what the registry serves', async () => {
    const withBlobs = join(dir, 'with-blobs');
    const run = await regmeta(['import', registry.dataDir, '--blobs', 'link', '--data', withBlobs, '--json']);
    expect(run.status).toBe(0);
    const summary = JSON.parse(run.stdout);
    expect(summary.blobs.filesPlaced).toBeGreaterThan(0);
    const check = await regmeta(['check', '--data', withBlobs, '--json']);
    expect(check.status).toBe(0);
    expect(JSON.parse(check.stdout).checked.blobFiles).toBe(summary.blobs.filesPlaced);
    await servesWhatTheRegistryServes(withBlobs);
  });

  it('with --blobs copy, copies the files, verified, and regmeta serve serves them', async () => {
    const copied = join(dir, 'copied');
    const run = await regmeta(['import', registry.dataDir, '--blobs', 'copy', '--data', copied, '--json']);
    expect(run.status).toBe(0);
    const summary = JSON.parse(run.stdout);
    expect(summary.problems).toEqual([]);
    expect(summary.blobs.filesPlaced).toBeGreaterThan(0);
    const check = await regmeta(['check', '--data', copied, '--json']);
    expect(check.status).toBe(0);
    expect(JSON.parse(check.stdout).checked.blobFiles).toBe(summary.blobs.filesPlaced);
    await servesWhatTheRegistryServes(copied);
  });

  it('with --blobs none, places no file', async () => {
    const bare = join(dir, 'bare');
    const run = await regmeta(['import', registry.dataDir, '--blobs', 'none', '--data', bare, '--json']);
    expect(run.status).toBe(0);
    const summary = JSON.parse(run.stdout);
    expect(summary.blobs.linked).toBeGreaterThan(0);
    expect(summary.blobs.filesPlaced).toBe(0);
    expect(existsSync(join(bare, 'blobs'))).toBe(false);
  });
});

describe('import of a tree written by hand', () => {
  it('resumes after a kill and ends in the state of one clean run', async () => {
    const dir = tempDir();
    try {
      const storage = new Storage(join(dir, 'storage'));
      // Enough manifests that the import is still running when it is killed.
      const repos = 8;
      const perRepo = 40;
      for (let r = 0; r < repos; r++) {
        const repo = `bulk/repo${r}`;
        const images = Array.from({ length: perRepo }, () => storage.image(repo));
        const index = storage.index(repo, images.slice(0, 2));
        images.forEach((digest, i) => storage.tag(repo, `t${i}`, digest, 1_000_000 + i));
        storage.tag(repo, 'moved', images[0], 1_000);
        storage.tag(repo, 'moved', images[1], 2_000);
        storage.tag(repo, 'moved', index, 3_000);
      }
      const total = repos * (perRepo + 1);
      const killed = join(dir, 'killed');
      const clean = join(dir, 'clean');
      mkdirSync(killed);
      mkdirSync(clean);

      // Kill the import once it has put some manifests but not all.
      const child = spawn(process.execPath, [BIN, 'import', storage.root, '--data', killed], { stdio: 'ignore' });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      let seen = 0;
      for (let attempt = 0; attempt < 3_000 && child.exitCode === null; attempt++) {
        await new Promise((r) => setTimeout(r, 20));
        if (!existsSync(join(killed, 'metadata.db'))) continue;
        try {
          const db = new Database(join(killed, 'metadata.db'), { readonly: true });
          seen = db.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'manifest'").pluck().get()
            ? (db.prepare('SELECT count(*) FROM manifest').pluck().get() as number)
            : 0;
          db.close();
        } catch {
          continue; // the file is being created
        }
        if (seen > 0) break;
      }
      child.kill('SIGKILL');
      await exited;
      const db = new Database(join(killed, 'metadata.db'), { readonly: true });
      const afterKill = db.prepare('SELECT count(*) FROM manifest').pluck().get() as number;
      db.close();
      expect(afterKill).toBeGreaterThan(0);
      expect(afterKill).toBeLessThan(total);

      const [resumed, once] = await Promise.all([
        regmeta(['import', storage.root, '--data', killed, '--json']),
        regmeta(['import', storage.root, '--data', clean, '--json']),
      ]);
      expect(resumed.stderr).toBe('');
      expect(resumed.status).toBe(0);
      expect(once.status).toBe(0);
      expect(JSON.parse(resumed.stdout).manifests.present).toBe(afterKill);
      expect(dumpState(join(killed, 'metadata.db'))).toEqual(dumpState(join(clean, 'metadata.db')));
      const store = openStore(join(clean, 'metadata.db'));
      try {
        expect(store.catalog()).toHaveLength(repos);
        expect(store.tagHistory('bulk/repo3', 'moved')).toHaveLength(3);
      } finally {
        store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports and skips what it cannot verify, and imports the rest', async () => {
    const dir = tempDir();
    try {
      const storage = new Storage(join(dir, 'storage'));
      const good = storage.image('shop/web', 2, true); // no mediaType: detected from the structure
      const index = storage.index('shop/web', [good], true);
      storage.tag('shop/web', 'latest', index);
      const corrupt = storage.image('shop/web');
      writeFileSync(storage.blobData(corrupt), '{"schemaVersion":2,"tampered":true}');
      storage.tag('shop/web', 'bad', corrupt);
      const v1 = storage.manifest('shop/web', JSON.stringify({ schemaVersion: 1, name: 'shop/web', tag: 'x', fsLayers: [] }));
      storage.link('shop/web', 'sha256:' + 'e'.repeat(64)); // linked, but no blob data
      const data = join(dir, 'data');
      mkdirSync(data);
      const run = await regmeta(['import', storage.root, '--data', data, '--json']);
      expect(run.status).toBe(1);
      const problems = JSON.parse(run.stdout).problems as { subject: string; problem: string }[];
      const about = (subject: string) => problems.filter((p) => p.subject === subject).map((p) => p.problem).join(' ');
      expect(about(corrupt)).toMatch(/do not match the digest/);
      expect(about(v1)).toMatch(/schema 1/);
      expect(about('sha256:' + 'e'.repeat(64))).toMatch(/blob data is missing/);
      expect(about('tag bad')).toMatch(/not imported/);
      expect(problems).toHaveLength(4);
      const store = openStore(join(data, 'metadata.db'));
      try {
        expect(store.getTag('shop/web', 'latest')).toMatchObject({ digest: index, mediaType: 'application/vnd.oci.image.index.v1+json' });
        expect(store.statManifest('shop/web', good).mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
        expect(store.allTags('shop/web')).toEqual(['latest']);
      } finally {
        store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a directory that is not a storage tree, creating nothing', async () => {
    const dir = tempDir();
    try {
      const data = join(dir, 'data');
      mkdirSync(data);
      const run = await regmeta(['import', dir, '--data', data]);
      expect(run.status).toBe(2);
      expect(isOneLineError(run.stderr)).toBe(true);
      expect(run.stderr).toMatch(/no distribution storage/);
      expect(existsSync(join(data, 'metadata.db'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
