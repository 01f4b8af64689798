// regmeta gc --retention, the real command on SQLite and on PostgreSQL: the
// dry run prints each tag and manifest that would go with its rule and why,
// changing nothing (read-only, on PostgreSQL too), an immutable tag kept; the apply deletes exactly
// those, each a DELETE event by 'retention' with its reason; bad or missing
// rules are one USAGE line naming the key.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asyncStore, openStore, type Store } from 'regmeta';
import { openPostgresStore } from 'regmeta/postgres';
import { ociIndex, ociManifest, tempDir, tickPast, type Built } from '../store/fixtures.js';
import { startPostgres, type PostgresServer } from '../store/postgres/server.js';
import { regmeta } from './run.js';

let postgres: PostgresServer | undefined;
const cleanups: (() => void)[] = [];
beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(async () => {
  for (const cleanup of cleanups) cleanup();
  await postgres?.stop();
});

interface Registry {
  /** --data and, on PostgreSQL, --database. */
  args: string[];
  dir: string;
  open(): Promise<Store>;
}

const backends: { name: string; open(): Promise<Registry> }[] = [
  {
    name: 'sqlite',
    async open() {
      const { dir, remove } = tempDir();
      cleanups.push(remove);
      return { args: ['--data', dir], dir, open: async () => asyncStore(openStore(join(dir, 'metadata.db'))) };
    },
  },
  {
    name: 'postgres',
    async open() {
      const { dir, remove } = tempDir();
      cleanups.push(remove);
      const url = await postgres!.createDatabase();
      return { args: ['--data', dir, '--database', url], dir, open: () => openPostgresStore(url) };
    },
  },
];

const put = (store: Store, repo: string, m: Built, tag?: string) => store.putManifest(repo, m.digest, m, { actor: 'ci' }, tag === undefined ? {} : { tag });

/** acme/web: five tagged images, one pushed after another; acme/api: an index of two children, tagged old, and one image tagged new; tools/ci: one. */
async function seed(store: Store): Promise<{ index: Built; children: Built[] }> {
  for (const tag of ['dev-1', 'dev-2', 'v1.0', 'dev-3', 'latest']) {
    await put(store, 'acme/web', ociManifest({ seed: `web/${tag}` }), tag);
    tickPast(Date.now());
  }
  const children = [ociManifest({ seed: 'api/amd64' }), ociManifest({ seed: 'api/arm64' })];
  for (const child of children) await put(store, 'acme/api', child);
  const index = ociIndex(children.map((c) => c.descriptor));
  await put(store, 'acme/api', index, 'old');
  await put(store, 'acme/api', ociManifest({ seed: 'api/new' }), 'new');
  await put(store, 'tools/ci', ociManifest({ seed: 'ci' }), 'stale');
  return { index, children };
}

const RULES = `immutable:
  - repositories: "acme/web"
    tags: ["dev-1"]
retention:
  - repositories: "acme/web"
    keep: { newest: 1, tags: ["v*"], untaggedGrace: 0 }
  - repositories: "acme/*"
    keep: { tags: ["new"], untaggedGrace: 0 }
`;

describe.each(backends)('regmeta gc --retention on $name', (backend) => {
  it('lists on --dry-run what would go and why, changing nothing, then deletes exactly that as retention', async () => {
    const registry = await backend.open();
    const seeding = await registry.open();
    const { index, children } = await seed(seeding);
    await seeding.close();
    const config = join(registry.dir, 'regmeta.yaml');
    writeFileSync(config, RULES);

    const dry = await regmeta(['gc', '--retention', '--dry-run', '--config', config, ...registry.args]);
    expect(dry.stderr).toMatch(/^would delete 3 tags and 5 manifests from 2 repositories the rules match, in [\d.]+s\n$/);
    expect(dry.status).toBe(0);
    const lines = dry.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^REPOSITORY\s+WHAT\s+DIGEST\s+RULE\s+WHY$/);
    expect(lines.filter((l) => l.includes(' tag ')).map((l) => l.split(/\s{2,}/).slice(0, 2).join(' ')).sort()).toEqual(
      ['acme/api tag old', 'acme/web tag dev-2', 'acme/web tag dev-3'],
    );
    expect(lines.find((l) => l.includes('tag dev-2'))).toMatch(/acme\/web\s+#4 newest, 1 kept; matches none of v\*$/);
    expect(lines.filter((l) => l.includes('its index')).length).toBe(2);
    const json = await regmeta(['gc', '--retention', '--dry-run', '--json', '--config', config, ...registry.args]);
    const planned = JSON.parse(json.stdout) as { tags: unknown[]; manifests: { digest: string }[] };
    expect(planned.manifests.map((m) => m.digest)).toEqual(expect.arrayContaining([index.digest, ...children.map((c) => c.digest)]));

    const unchanged = await registry.open();
    try {
      expect(await unchanged.allTags('acme/web')).toHaveLength(5);
    } finally {
      await unchanged.close();
    }

    const run = await regmeta(['gc', '--retention', '--json', '--config', config, ...registry.args]);
    expect(run.status).toBe(0);
    const done = JSON.parse(run.stdout) as typeof planned & { dryRun: boolean; skipped: number };
    expect(done.dryRun).toBe(false);
    expect(done.skipped).toBe(0);
    expect(done.tags).toEqual(planned.tags);
    expect(done.manifests).toEqual(planned.manifests);

    const after = await registry.open();
    try {
      expect(await after.allTags('acme/web')).toEqual(['dev-1', 'latest', 'v1.0']);
      expect(await after.allTags('acme/api')).toEqual(['new']);
      expect(await after.allTags('tools/ci')).toEqual(['stale']);
      const events = (await after.getEvents({ actor: 'retention', perPage: 100 })).events;
      expect(events).toHaveLength(8);
      expect(events.every((e) => e.type === 'DELETE' && typeof e.reason === 'string' && e.reason !== '')).toBe(true);
    } finally {
      await after.close();
    }
  });
});

describe('regmeta gc --retention refuses', () => {
  it('without rules, and with a bad rule, one USAGE line naming the key', async () => {
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    asyncStore(openStore(join(dir, 'metadata.db'))).close();
    const none = await regmeta(['gc', '--retention', '--data', dir]);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/^regmeta gc: no retention rules/);
    const config = join(dir, 'bad.yaml');
    writeFileSync(config, 'retention:\n  - repositories: "Acme/*"\n    keep: { newest: -1, pulledWithin: soon }\n');
    const bad = await regmeta(['gc', '--retention', '--config', config, '--data', dir]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('retention');
    expect(bad.stderr).toContain('keep.newest');
    expect(bad.stderr).toContain('keep.pulledWithin');
  });
});
