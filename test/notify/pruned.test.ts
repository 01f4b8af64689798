// Webhooks and a pruned event log: a receiver that is down while the events
// it has not yet acknowledged are pruned is told nothing of them, but the
// registry says so (a warning naming the endpoint, how many and which seqs,
// and the status), and delivery goes on from the oldest event left.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { startRegistry, type StartedRegistry } from 'regmeta/server';
import { pushImage } from '../server/helpers.js';
import { tickPast } from '../store/fixtures.js';
import { startReceiver, type Receiver } from './receiver.js';

let dataDir: string;
let receiver: Receiver;
let registry: StartedRegistry | undefined;
beforeEach(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'regmeta-pruned-'));
  receiver = await startReceiver();
});
afterEach(async () => {
  await registry?.close();
  registry = undefined;
  await receiver.close();
  rmSync(dataDir, { recursive: true, force: true });
});

it('reports the events pruned while the receiver was down, then delivers from the oldest event left', async () => {
  const warnings: string[] = [];
  registry = await startRegistry({
    dataDir,
    port: 0,
    log: () => undefined,
    onWarning: (message) => warnings.push(message),
    metrics: { statsInterval: 0 },
    notify: { endpoints: [{ url: receiver.url }], retryMin: 20, retryMax: 200, onError: () => undefined },
  });
  const { store } = registry;
  await pushImage(registry.url, 'acme/app', 'v1', 'one');
  const status = async () => (await store.notifications.status())[0];
  await expect.poll(async () => (await status()).backlog, { timeout: 30_000 }).toBe(0);

  // Down: what is pushed now waits in the backlog, failing.
  const port = Number(new URL(receiver.url).port);
  await receiver.close();
  await pushImage(registry.url, 'acme/app', 'v2', 'two');
  await expect.poll(async () => (await status()).failures, { timeout: 30_000 }).toBeGreaterThan(0);
  const { backlog } = await status();
  expect(backlog).toBeGreaterThan(0);
  tickPast(Date.now());
  const cut = new Date();
  await pushImage(registry.url, 'acme/app', 'v3', 'three');
  const pruned = await store.pruneEvents({ before: cut });
  expect(pruned.pruned).toBeGreaterThanOrEqual(backlog);
  const pending = (await status()).missed;
  expect(pending).toEqual({ count: backlog, from: pruned.horizon - backlog + 1, to: pruned.horizon });

  // Up again on the same address: v3 arrives, v2 never does, and the gap is said.
  receiver = await startReceiver(port);
  await receiver.until(() => receiver.deliveries.some((d) => d.events.some((e) => e.target.tag === 'v3')));
  const tags = receiver.deliveries.flatMap((d) => d.events.map((e) => e.target.tag)).filter((t) => t !== undefined);
  expect(tags).toEqual(['v3']);
  const label = `http://127.0.0.1:${port}`;
  expect(warnings).toEqual([
    `notify ${label}: missed ${backlog} events (seq ${pending!.from}-${pending!.to}), pruned from the log before the endpoint acknowledged them; delivery goes on from the oldest event left`,
  ]);
  const after = await status();
  expect(after.missed).toEqual({ ...pending, at: expect.any(Date) });
  const metrics = await (await fetch(`${registry.url}/metrics`)).text();
  expect(metrics).toContain(`regmeta_notify_missed_events{endpoint="${label}"} ${backlog}`);
  await expect.poll(async () => (await status()).backlog, { timeout: 30_000 }).toBe(0);
});
