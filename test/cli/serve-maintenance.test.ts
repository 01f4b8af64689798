// Serve's maintenance schedule across real processes: two `regmeta serve` on
// one store (a SQLite data directory; a PostgreSQL database), each trying
// every round; only the lease's holder runs rounds, the other says so (at
// debug), and once the holder stops, the other takes over.

import { describe, expect, it } from 'vitest';
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
