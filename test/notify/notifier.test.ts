// Webhooks end to end: a real registry (startRegistry with notify) pushed to
// over HTTP, and a real HTTP receiver started here that records what arrives.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ENVELOPE_MEDIA_TYPE, SIGNATURE_HEADER, signatureOf, startRegistry, type StartedRegistry } from 'regmeta/server';
import type { Store } from 'regmeta';
import { pushImage } from '../server/helpers.js';
import { startReceiver, type Receiver } from './receiver.js';

let dataDir: string;
let receiver: Receiver;
let registry: StartedRegistry | undefined;
beforeEach(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'regmeta-notify-'));
  receiver = await startReceiver();
});
afterEach(async () => {
  await registry?.close();
  registry = undefined;
  await receiver.close();
  rmSync(dataDir, { recursive: true, force: true });
});

function start(endpoint: { secret?: string; timeout?: number } = {}, errors: unknown[] = []) {
  return startRegistry({
    dataDir,
    port: 0,
    log: () => undefined,
    notify: { endpoints: [{ url: receiver.url, ...endpoint }], retryMin: 20, retryMax: 200, batchSize: 3, onError: (e) => errors.push(e) },
  });
}

/** The ids of the events a receiver should get, in commit order: all but CREATE REPOSITORY. */
async function expectedIds(store: Store): Promise<string[]> {
  const events = (await store.getEvents({ perPage: 1000 })).events.reverse();
  return events.filter((e) => !(e.object.type === 'REPOSITORY' && e.type === 'CREATE')).map((e) => e.id);
}

/** Resolves once `fn` holds, looking every 10 ms: the cursor moves just after the receiver answers. */
async function eventually(fn: () => Promise<boolean>, timeout = 10_000): Promise<void> {
  for (const end = Date.now() + timeout; !(await fn()); await new Promise((r) => setTimeout(r, 10))) {
    if (Date.now() > end) throw new Error('not reached in time');
  }
}

/** The first delivery of each id, in arrival order: what a de-duplicating receiver keeps. */
const firstSeen = (ids: string[]) => [...new Set(ids)];

describe('webhooks from the event log', () => {
  it('POST distribution envelopes with the right actions and targets, in commit order, signed', async () => {
    registry = await start({ secret: 's3cret' });
    const image = await pushImage(registry.url, 'acme/app', 'v1', 'one');
    expect((await fetch(`${registry.url}/v2/acme/app/manifests/v1`, { method: 'DELETE' })).status).toBe(202);
    const ids = (await expectedIds(registry.store));
    await receiver.until(() => receiver.acknowledged().length >= ids.length);
    expect(receiver.acknowledged()).toEqual(ids);
    for (const delivery of receiver.deliveries) {
      expect(delivery.headers['content-type']).toBe(ENVELOPE_MEDIA_TYPE);
      expect(delivery.headers[SIGNATURE_HEADER.toLowerCase()]).toBe(signatureOf(delivery.body, 's3cret'));
      expect(delivery.events.length).toBeLessThanOrEqual(3);
    }
    const events = receiver.deliveries.flatMap((d) => d.events);
    const host = new URL(registry.url).host;
    expect(events.map((e) => `${e.action} ${e.target.tag ?? ''}`)).toEqual(['push ', 'push v1', 'delete v1']);
    expect(events[0].target).toEqual({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: image.digest,
      size: Buffer.byteLength(image.manifest),
      length: Buffer.byteLength(image.manifest),
      repository: 'acme/app',
      url: `${registry.url}/v2/acme/app/manifests/${image.digest}`,
    });
    expect(events[1].target).toMatchObject({ tag: 'v1', digest: image.digest, repository: 'acme/app' });
    expect(events[2].target).toMatchObject({ tag: 'v1', digest: image.digest, repository: 'acme/app' });
    expect(events[0].source.addr).toBe(host);
    expect(events[0].source.instanceID).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Date(events[0].timestamp).getTime()).not.toBeNaN();
    const store = registry.store;
    await eventually(async () => (await store.notifications.status())[0].backlog === 0);
    const [status] = await store.notifications.status();
    expect(status).toMatchObject({ endpoint: receiver.url, eventId: ids.at(-1), backlog: 0, failures: 0 });
  });

  it('retries a receiver that fails for a while: every event arrives, in order, none lost', async () => {
    receiver.answer = 500;
    const errors: unknown[] = [];
    registry = await start({}, errors);
    for (const n of [1, 2, 3]) await pushImage(registry.url, 'acme/app', `v${n}`, `seed ${n}`);
    await receiver.until((d) => d.length >= 4);
    const store = registry.store;
    await eventually(async () => (await store.notifications.status())[0].failures >= 4);
    const failing = (await registry.store.notifications.status())[0];
    expect(failing.failures).toBeGreaterThanOrEqual(4);
    expect(failing.lastError).toBe('HTTP 500 Internal Server Error');
    expect(failing.backlog).toBeGreaterThan(0);
    receiver.answer = 200;
    const ids = (await expectedIds(registry.store));
    await receiver.until(() => firstSeen(receiver.acknowledged()).length >= ids.length);
    expect(receiver.acknowledged()).toEqual(ids);
    await eventually(async () => (await store.notifications.status())[0].backlog === 0);
    expect((await store.notifications.status())[0]).toMatchObject({ backlog: 0, failures: 0, lastError: 'HTTP 500 Internal Server Error' });
    expect(errors.length).toBeGreaterThanOrEqual(4);
  });

  it('never slows a push: pushes complete while the endpoint never answers', async () => {
    receiver.answer = 'hang';
    registry = await start({ timeout: 600_000 });
    for (const n of [1, 2, 3]) await pushImage(registry.url, 'acme/app', `v${n}`, `seed ${n}`);
    expect((await fetch(`${registry.url}/v2/acme/app/tags/list`)).status).toBe(200);
    expect(receiver.deliveries).toEqual([]);
    const [status] = await registry.store.notifications.status();
    // Everything but what only the skipped CREATE REPOSITORY made up.
    expect(status.backlog).toBeGreaterThanOrEqual((await expectedIds(registry.store)).length);
    // Closing aborts the POST in flight rather than waiting for it.
    await registry.close();
    registry = undefined;
  });

  it('starts a new endpoint at the newest event, and resumes an existing one where it was', async () => {
    registry = await start();
    await pushImage(registry.url, 'acme/app', 'v1', 'before');
    await receiver.until(() => receiver.acknowledged().length >= 2);
    await registry.close();
    registry = undefined;
    const other = await startReceiver();
    try {
      registry = await startRegistry({ dataDir, port: 0, log: () => undefined, notify: { endpoints: [{ url: receiver.url }, { url: other.url }] } });
      await pushImage(registry.url, 'acme/app', 'v2', 'after');
      const tags = (r: Receiver) => {
        const events = new Map(r.deliveries.flatMap((d) => d.events.map((e) => [e.id, e.target.tag ?? '-'] as const)));
        return firstSeen(r.acknowledged()).map((id) => events.get(id));
      };
      await other.until(() => other.acknowledged().length >= 2);
      await receiver.until(() => tags(receiver).length >= 4);
      expect(tags(other)).toEqual(['-', 'v2']);
      // v1's events may come twice (the first registry closed before it heard the answer), never v0's history again.
      expect(tags(receiver)).toEqual(['-', 'v1', '-', 'v2']);
    } finally {
      await registry?.close();
      registry = undefined;
      await other.close();
    }
  });
});
