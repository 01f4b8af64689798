// Pull statistics through a real `regmeta serve` on SQLite: 10,000 manifest
// pulls cost the store 10,000 reads and a few batch writes, counted by the
// server's own store-call metrics; the counts survive a SIGTERM (written at
// close) and a SIGKILL loses only what was not written yet, never a
// manifest or a tag; and PULL events reach a webhook receiver as one event
// per pulled manifest or tag per batch, with its count.

import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { startReceiver, type Receiver } from '../notify/receiver.js';
import { OCI_MANIFEST, pushImage } from '../server/helpers.js';
import { callsBetween, pullMany, storeCalls } from './pulls.js';
import { regmeta, serve, tempDir, type Served } from './run.js';

const running: Served[] = [];
const receivers: Receiver[] = [];
afterAll(async () => {
  await Promise.all(running.map((s) => s.stop()));
  for (const r of receivers) await r.close();
});

async function started(data: string, args: string[]): Promise<Served> {
  const served = await serve(data, args);
  running.push(served);
  return served;
}

/** The pull statistics in a stopped server's database: each manifest's and tag's count, by digest and by repo:tag. */
function statsIn(data: string) {
  const db = new Database(path.join(data, 'metadata.db'), { readonly: true });
  try {
    const manifests = db.prepare('SELECT digest, pull_count AS count, pulled_at AS at FROM manifest').all() as { digest: string; count: number; at: number | null }[];
    const tags = db.prepare('SELECT r.name || \':\' || t.name AS tag, t.pull_count AS count, t.pulled_at AS at FROM tag t JOIN repository r ON r.id = t.repository_id').all() as {
      tag: string;
      count: number;
      at: number | null;
    }[];
    return { manifests: new Map(manifests.map((m) => [m.digest, m])), tags: new Map(tags.map((t) => [t.tag, t])) };
  } finally {
    db.close();
  }
}

describe('regmeta serve: pull statistics', () => {
  it('10,000 pulls cost 10,000 reads and a few batch writes, no statement of their own, and their counts are written at SIGTERM', { timeout: 180_000 }, async () => {
    const data = tempDir();
    // A short interval: batches are written while the pulls run, and their number is bounded by the time they took.
    const s = await started(data, ['--pulls-flush-interval', '200ms']);
    const { digest } = await pushImage(s.url, 'acme/app', 'v1', 'pulled');
    const before = await storeCalls(s.url);
    const began = performance.now();
    await pullMany(s.url, 'acme/app', 'v1', 6_000);
    await pullMany(s.url, 'acme/app', digest, 3_000);
    await pullMany(s.url, 'acme/app', 'v1', 1_000, 'HEAD');
    const seconds = (performance.now() - began) / 1000;
    const calls = callsBetween(before, await storeCalls(s.url));
    const { recordPulls: flushes = 0, ...reads } = calls;
    // One read per pull, and nothing else but the batches.
    expect(reads).toEqual({ getManifestByReference: 10_000 });
    expect(flushes).toBeLessThanOrEqual(Math.ceil(seconds / 0.2) + 2);
    console.info(`10,000 pulls in ${seconds.toFixed(1)} s: ${JSON.stringify(calls)}`);
    expect(await s.stop()).toBe(0);
    const { manifests, tags } = statsIn(data);
    // GETs count the manifest (by tag, the tag too); HEADs by tag the tag alone.
    expect(manifests.get(digest)).toMatchObject({ count: 9_000 });
    expect(tags.get('acme/app:v1')).toMatchObject({ count: 7_000 });
  });

  it('keeps what was written before a SIGKILL and loses only what was not, never a manifest or a tag', { timeout: 120_000 }, async () => {
    const data = tempDir();
    // Never written by the timer: the kill loses all of these.
    const first = await started(data, ['--pulls-flush-interval', '1h']);
    const { digest } = await pushImage(first.url, 'acme/app', 'v1', 'killed');
    await pullMany(first.url, 'acme/app', 'v1', 30);
    first.child.kill('SIGKILL');
    await first.stop();
    expect(statsIn(data).manifests.get(digest)).toMatchObject({ count: 0, at: null });
    // Written within the interval, then killed: what was written stays.
    const second = await started(data, ['--pulls-flush-interval', '50ms']);
    await pullMany(second.url, 'acme/app', 'v1', 20);
    const deadline = Date.now() + 60_000;
    while (statsIn(data).manifests.get(digest)!.count < 20) {
      if (Date.now() > deadline) throw new Error('the pulls were never written');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    second.child.kill('SIGKILL');
    await second.stop();
    const { manifests, tags } = statsIn(data);
    expect(manifests.get(digest)).toMatchObject({ count: 20 });
    expect(tags.get('acme/app:v1')).toMatchObject({ count: 20 });
    const check = await regmeta(['check', '--data', data]);
    expect(check.status, check.stdout + check.stderr).toBe(0);
  });

  it('sends a webhook one PULL event per pulled manifest or tag per batch, with its count', { timeout: 120_000 }, async () => {
    const data = tempDir();
    const receiver = await startReceiver();
    receivers.push(receiver);
    const args = ['--notify', receiver.url, '--pulls-events', '--pulls-flush-interval', '1h'];
    const first = await started(data, args);
    const { digest } = await pushImage(first.url, 'acme/app', 'v1', 'evented');
    await receiver.until((d) => d.flatMap((x) => x.events).some((e) => e.action === 'push' && e.target.tag === 'v1'));
    await pullMany(first.url, 'acme/app', 'v1', 40);
    await pullMany(first.url, 'acme/app', digest, 7);
    await pullMany(first.url, 'acme/app', 'v1', 5, 'HEAD');
    // The batch is written at SIGTERM; the next start delivers it from the webhook's cursor.
    expect(await first.stop()).toBe(0);
    const second = await started(data, args);
    const pulls = () => receiver.deliveries.flatMap((d) => d.events).filter((e) => e.action === 'pull') as unknown as PullEvent[];
    await receiver.until(() => pulls().length >= 3);
    // Nothing more comes: a later push is delivered after no other pull event.
    await pushImage(second.url, 'acme/app', 'v2', 'after');
    await receiver.until((d) => d.flatMap((x) => x.events).some((e) => e.action === 'push' && e.target.tag === 'v2'));
    const seen = pulls().map(({ count, target }) => ({ count, tag: target.tag, digest: target.digest, repository: target.repository }));
    expect(seen.sort((a, b) => a.count - b.count)).toEqual([
      // The HEADs by tag: pulls of the tag alone, named with the manifest it points at.
      { count: 5, tag: 'v1', digest, repository: 'acme/app' },
      { count: 7, tag: undefined, digest, repository: 'acme/app' },
      { count: 40, tag: 'v1', digest, repository: 'acme/app' },
    ]);
    expect(pulls()[0].target.mediaType).toBe(OCI_MANIFEST);
  });
});

interface PullEvent {
  action: 'pull';
  count: number;
  target: { repository: string; digest: string; tag?: string; mediaType?: string };
}
