// Serve's maintenance schedule across real processes: two `regmeta serve` on
// one store (a SQLite data directory; a PostgreSQL database), each trying
// every round; only the lease's holder runs rounds, the other says so (at
// debug), and once the holder stops, the other takes over.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openStore } from 'regmeta';
import { describe, expect, it } from 'vitest';
import { ociManifest, tickPast } from '../store/fixtures.js';
import { replicaSuite, until } from './replicas.js';
import { serve, tempDir, type Served } from './run.js';

const suite = replicaSuite();
const ARGS = ['--maintenance-interval', '0.2', '--events-keep', '1s', '--log-level', 'debug'];

/** The JSON lines of a server's stdout whose message is `msg`. */
function lines(server: Served, msg: string): Record<string, unknown>[] {
  return server
    .stdout()
    .split('\n')
    .flatMap((line) => {
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        return parsed.msg === msg ? [parsed] : [];
      } catch {
        return [];
      }
    });
}

const rounds = (server: Served) => lines(server, 'maintenance: events.prune');
const skipped = (server: Served) => lines(server, 'maintenance: another replica holds the lease this round');

/** Two servers: only one runs rounds while both run; when it stops, the other takes over. */
async function oneAtATime(servers: Served[]): Promise<void> {
  await until(() => servers.some((s) => rounds(s).length >= 3) && servers.some((s) => skipped(s).length >= 3), 'rounds run on one and skipped on the other');
  const holder = servers.find((s) => rounds(s).length > 0)!;
  const other = servers.find((s) => s !== holder)!;
  expect(rounds(other)).toEqual([]);
  expect(skipped(holder)).toEqual([]);
  expect(rounds(holder)[0]).toMatchObject({ job: 'events.prune', pruned: expect.any(Number), horizon: expect.any(Number) });
  expect(holder.listening.maintenance).toMatchObject({ interval: 200, holder: expect.any(String) });
  const last = rounds(holder).at(-1)!;
  expect(await holder.stop()).toBe(0);
  await until(() => rounds(other).length > 0, 'the other server taking over');
  // The holder let go as it stopped: the other's first round began after the holder's last ended.
  const first = rounds(other)[0];
  expect(Date.parse(first.startedAt as string)).toBeGreaterThanOrEqual(Date.parse(last.startedAt as string) + (last.ms as number));
  expect(holder.stderr()).toBe('');
}

describe('the maintenance schedule of two regmeta serve processes on one store', () => {
  it('sqlite: one data directory', async () => {
    const data = tempDir();
    const first = await serve(data, ARGS);
    try {
      await until(() => rounds(first).length > 0, 'the first server running a round');
      const second = await serve(data, ARGS);
      try {
        await oneAtATime([first, second]);
      } finally {
        await second.stop();
      }
    } finally {
      await first.stop();
    }
  });

  it('postgres: one database', async () => {
    const cluster = await suite.cluster(2, ARGS);
    await oneAtATime(cluster.all);
  });
});

describe('retention on the maintenance schedule of regmeta serve', () => {
  it('applies the config file\'s rules at start, as the actor retention, keeping the newest and the immutable', async () => {
    const data = tempDir();
    const store = openStore(join(data, 'metadata.db'));
    try {
      for (const tag of ['v1', 'dev-1', 'dev-2', 'dev-3']) {
        const m = ociManifest({ seed: `app/${tag}` });
        store.putManifest('acme/app', m.digest, m, { actor: 'ci' }, { tag });
        tickPast(Date.now());
      }
    } finally {
      store.close();
    }
    const config = join(data, 'regmeta.yaml');
    writeFileSync(config, [
      'retention:',
      '  - repositories: "acme/*"',
      '    keep: { newest: 1 }',
      'immutable:',
      '  - repositories: "acme/*"',
      '    tags: ["v*"]',
    ].join('\n'));
    const server = await serve(data, ['--config', config, '--maintenance-interval', '1h']);
    try {
      await until(() => lines(server, 'maintenance: retention').length > 0, 'the retention round at start');
      expect(lines(server, 'maintenance: retention')[0]).toMatchObject({ job: 'retention', tags: 2, skipped: 0 });
    } finally {
      expect(await server.stop()).toBe(0);
    }
    const after = openStore(join(data, 'metadata.db'), { readOnly: true });
    try {
      // dev-3 is the newest; v1 is immutable; dev-1 and dev-2 went, each an event by retention with its reason.
      expect(after.allTags('acme/app')).toEqual(['dev-3', 'v1']);
      const deletes = after.getEvents({ actor: 'retention', objectType: 'TAG' }).events;
      expect(deletes.map((e) => e.tag).sort()).toEqual(['dev-1', 'dev-2']);
      expect(deletes.every((e) => e.type === 'DELETE' && typeof e.reason === 'string' && e.reason.length > 0)).toBe(true);
    } finally {
      after.close();
    }
  });
});
