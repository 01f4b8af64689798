// Serve's maintenance schedule, in process: rounds of jobs under the store's
// lease, a failing job reported and run again next round, a running round
// aborted by close() with the lease let go, and the event pruning job.

import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { asyncStore, openStore, type Store } from 'regmeta';
import { pruneEventsJob, startRegistry, type JobReport, type MaintenanceJob, type StartedRegistry } from 'regmeta/server';
import { gcEvent, tempDir, tickPast } from '../store/fixtures.js';

let registry: StartedRegistry | undefined;
let cleanup: (() => void) | undefined;
afterEach(async () => {
  await registry?.close();
  registry = undefined;
  cleanup?.();
  cleanup = undefined;
});

/** A registry on a fresh data directory with a maintenance schedule of `jobs` every `interval` ms. */
async function start(jobs: MaintenanceJob[], reports: JobReport[], interval = 10) {
  const { dir, remove } = tempDir();
  cleanup = remove;
  registry = await startRegistry({ dataDir: dir, port: 0, log: () => undefined, maintenance: { interval, jobs, onJob: (r) => reports.push(r), holder: 'here' } });
  return { dir, store: registry.store };
}

describe('the maintenance schedule', () => {
  it('runs every job each round under the lease, and runs a failed job again next round', async () => {
    const reports: JobReport[] = [];
    let calls = 0;
    const flaky: MaintenanceJob = {
      name: 'flaky',
      async run() {
        calls++;
        if (calls === 1) throw new Error('not this time');
        return { calls };
      },
    };
    const steady: MaintenanceJob = { name: 'steady', run: async () => ({ ok: true }) };
    const { store } = await start([flaky, steady], reports);
    await expect.poll(() => reports.filter((r) => r.job === 'flaky').length, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
    const [failed, retried] = reports.filter((r) => r.job === 'flaky');
    expect((failed.error as Error).message).toBe('not this time');
    expect(retried.summary).toEqual({ calls: 2 });
    // The failure stopped nothing: the next job of the round ran.
    expect(reports[1]).toMatchObject({ job: 'steady', summary: { ok: true } });
    expect(await store.leaseJob('maintenance', 'elsewhere', 60_000)).toBe(false);
  });

  it('aborts a running round when the server closes, and lets go of the lease', async () => {
    const reports: JobReport[] = [];
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const slow: MaintenanceJob = {
      name: 'slow',
      run: (_store, signal) =>
        new Promise((_resolve, reject) => {
          started();
          signal.addEventListener('abort', () => reject(signal.reason));
        }),
    };
    const { dir } = await start([slow], reports);
    await running;
    await registry!.close();
    registry = undefined;
    expect(reports).toEqual([expect.objectContaining({ job: 'slow', aborted: true, error: expect.any(Error) })]);
    const store: Store = asyncStore(openStore(join(dir, 'metadata.db')));
    try {
      expect(await store.leaseJob('maintenance', 'next', 60_000)).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('prunes the events older than events.keep', async () => {
    const reports: JobReport[] = [];
    const { dir, remove } = tempDir();
    cleanup = remove;
    const seed = asyncStore(openStore(join(dir, 'metadata.db')));
    const old = await seed.createEvent(gcEvent('old'));
    await seed.close();
    tickPast(old.publishedAt.getTime() + 1);
    registry = await startRegistry({ dataDir: dir, port: 0, log: () => undefined, maintenance: { interval: 60_000, jobs: [pruneEventsJob(1)], onJob: (r) => reports.push(r) } });
    await expect.poll(() => reports.length, { timeout: 10_000 }).toBe(1);
    expect(reports[0]).toMatchObject({ job: 'events.prune', summary: { pruned: 1, horizon: 1 } });
    expect((await registry.store.getEvents({})).events).toEqual([]);
  });
});
