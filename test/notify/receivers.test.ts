// Webhooks to receivers that misbehave or whose URLs hold secrets: a real
// registry (startRegistry with notify) and real receivers on port 0. An
// answer's body is read only a few KiB deep; a URL's credentials become an
// Authorization header; neither credentials nor paths reach /metrics or the
// errors reported; a receiver that comes back is caught up within seconds.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startRegistry, type NotifyEndpoint, type StartedRegistry } from 'regmeta/server';
import { pushImage } from '../server/helpers.js';
import { startReceiver, type Receiver } from './receiver.js';

let dataDir: string;
let receiver: Receiver;
let registry: StartedRegistry | undefined;
beforeEach(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'regmeta-receivers-'));
  receiver = await startReceiver();
});
afterEach(async () => {
  await registry?.close();
  registry = undefined;
  await receiver.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const MiB = 1024 * 1024;
const origin = () => new URL(receiver.url).origin;

function start(endpoints: NotifyEndpoint[], reported: { error: unknown; endpoint: string }[] = [], retry: { retryMin?: number; retryMax?: number } = { retryMin: 20, retryMax: 200 }) {
  return startRegistry({
    dataDir,
    port: 0,
    log: () => undefined,
    metrics: { statsInterval: 0 },
    notify: { endpoints, ...retry, onError: (error, endpoint) => reported.push({ error, endpoint }) },
  });
}

/** Resolves once every cursor's backlog is 0: each event acknowledged and the cursor moved past it. */
async function caughtUp(registry: StartedRegistry, timeout = 30_000): Promise<void> {
  for (const end = Date.now() + timeout; ; await new Promise((r) => setTimeout(r, 20))) {
    const states = await registry.store.notifications.status();
    if (states.length > 0 && states.every((s) => s.backlog === 0)) return;
    if (Date.now() > end) throw new Error(`not caught up in ${timeout} ms: ${JSON.stringify(states)}`);
  }
}

/** Everything a report could print: the endpoint label, the message, its cause. */
const reportText = (r: { error: unknown; endpoint: string }) =>
  `${r.endpoint} ${String(r.error)} ${String((r.error as { cause?: unknown })?.cause ?? '')}`;

describe('a receiver that answers with a huge body', () => {
  it('has only a few KiB of it read: the delivery completes and the receiver could not push more than a few MiB', async () => {
    receiver.answerBytes = 256 * MiB;
    registry = await start([{ url: receiver.url }]);
    await pushImage(registry.url, 'acme/app', 'v1', 'one');
    await caughtUp(registry);
    await receiver.until((d) => d.length >= 1);
    // What the kernel's socket buffers took, at most; the body itself is 256 MiB.
    await new Promise((r) => setTimeout(r, 200));
    expect(receiver.written).toBeLessThan(16 * MiB);
    expect(receiver.acknowledged().length).toBeGreaterThan(0);
  });
});

describe('a webhook URL with a secret', () => {
  it('labels /metrics and the reported errors by scheme, host and port, or by the name given; never by the path', async () => {
    receiver.answer = 503;
    const reported: { error: unknown; endpoint: string }[] = [];
    registry = await start(
      [{ url: `${origin()}/services/T0000/B0000/XXXXSECRET` }, { url: `${origin()}/hooks/OTHERSECRET?token=QUERYSECRET`, name: 'audit' }],
      reported,
    );
    await pushImage(registry.url, 'acme/app', 'v1', 'one');
    await receiver.until((d) => d.length >= 4);
    const metrics = await (await fetch(`${registry.url}/metrics`)).text();
    expect(metrics).toContain(`regmeta_notify_failures{endpoint="${origin()}"}`);
    expect(metrics).toContain('regmeta_notify_failures{endpoint="audit"}');
    expect(metrics).not.toMatch(/SECRET|services|hooks/);
    expect(reported.length).toBeGreaterThan(0);
    expect(new Set(reported.map((r) => r.endpoint))).toEqual(new Set([origin(), 'audit']));
    for (const r of reported) expect(reportText(r)).not.toMatch(/SECRET/);
    receiver.answer = 200;
    await caughtUp(registry);
    expect(new Set(receiver.deliveries.map((d) => d.path))).toEqual(new Set(['/services/T0000/B0000/XXXXSECRET', '/hooks/OTHERSECRET?token=QUERYSECRET']));
  });

  it('delivers with credentials in the URL as Basic authorization, and never shows them', async () => {
    receiver.answer = 503;
    const reported: { error: unknown; endpoint: string }[] = [];
    const url = new URL(receiver.url);
    url.username = 'al%40ice';
    url.password = 'pa55%3Aw0rd';
    registry = await start([{ url: url.href }], reported);
    await pushImage(registry.url, 'acme/app', 'v1', 'one');
    await receiver.until((d) => d.length >= 2);
    receiver.answer = 200;
    await caughtUp(registry);
    const delivered = receiver.deliveries.filter((d) => d.status === 200);
    expect(delivered.length).toBeGreaterThan(0);
    for (const d of delivered) {
      expect(d.headers.authorization).toBe(`Basic ${Buffer.from('al@ice:pa55:w0rd').toString('base64')}`);
      expect(d.path).toBe('/hook');
    }
    const metrics = await (await fetch(`${registry.url}/metrics`)).text();
    const status = JSON.stringify(await registry.store.notifications.status());
    for (const text of [metrics, status, ...reported.map(reportText)]) expect(text).not.toMatch(/pa55|w0rd/);
  });

  it('refuses an endpoint whose URL has credentials beside an Authorization header, and two endpoints on one cursor', async () => {
    const url = new URL(receiver.url);
    url.username = 'alice';
    url.password = 'pa55w0rd';
    const both = await start([{ url: url.href, headers: { authorization: 'Bearer x' } }]).catch((e: unknown) => e);
    expect(both).toBeInstanceOf(TypeError);
    expect(String(both)).toMatch(/credentials in its URL and an Authorization header/);
    expect(String(both)).not.toContain('pa55w0rd');
    const twice = await start([{ url: receiver.url, name: 'a' }, { url: `${origin()}/other`, name: 'a' }]).catch((e: unknown) => e);
    expect(String(twice)).toMatch(/TypeError: notify: a: named twice/);
  });
});

describe('a receiver that comes back after failing for a while', () => {
  it('gets the backlog within seconds with the default backoff, however long it was down', async () => {
    receiver.answer = 503;
    // The default backoff: with the first retry after 1 s, six failures in a row.
    registry = await start([{ url: receiver.url }], [], {});
    await pushImage(registry.url, 'acme/app', 'v1', 'one');
    await receiver.until((d) => d.length >= 6, 120_000);
    receiver.answer = 200;
    const back = Date.now();
    await receiver.until((d) => d.some((x) => x.status === 200), 60_000);
    // A backoff that kept doubling would wait 16 to 32 s here.
    expect(Date.now() - back).toBeLessThan(15_000);
  }, 180_000);
});
