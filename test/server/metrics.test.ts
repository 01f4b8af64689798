// GET /metrics: scraped from a real server and read as Prometheus text, with
// names, labels, types and values checked against what the test did.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { startRegistry as startServer } from 'regmeta/server';
import { LATENCY_BUCKETS } from '../../src/server/metrics.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBlob, pushImage, sha256, startRegistry, type TestRegistry } from './helpers.js';
import { find, parseExposition, value, type Exposition } from './prometheus.js';

async function scrape(url: string, headers: Record<string, string> = {}): Promise<Exposition> {
  const res = await fetch(`${url}/metrics`, { headers });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return parseExposition(await res.text());
}

const requests = (e: Exposition, method: string, route: string, status: string) =>
  value(e, 'regmeta_http_requests_total', { method, route, status });

describe('metrics', () => {
  let r: TestRegistry;
  beforeAll(async () => {
    r = await startRegistry({ metrics: { statsInterval: 100 } });
  });
  afterAll(() => r.close());

  it('counts a push and a pull by method, route kind and status, exactly', async () => {
    const before = await scrape(r.url);
    const image = await pushImage(r.url, 'counted/app', 'v1', 'counted');
    for (let i = 0; i < 3; i++) expect((await fetch(`${r.url}/v2/counted/app/manifests/v1`)).status).toBe(200);
    expect((await fetch(`${r.url}/v2/counted/app/manifests/v1`, { method: 'HEAD' })).status).toBe(200);
    expect((await fetch(`${r.url}/v2/counted/app/blobs/${sha256(image.layer)}`)).status).toBe(200);
    expect((await fetch(`${r.url}/v2/counted/app/manifests/nope`)).status).toBe(404);
    const after = await scrape(r.url);
    const delta = (method: string, route: string, status: string) => requests(after, method, route, status) - requests(before, method, route, status);
    expect(delta('POST', 'uploadStart', '201')).toBe(2);
    expect(delta('PUT', 'manifest', '201')).toBe(1);
    expect(delta('GET', 'manifest', '200')).toBe(3);
    expect(delta('HEAD', 'manifest', '200')).toBe(1);
    expect(delta('GET', 'blob', '200')).toBe(1);
    expect(delta('GET', 'manifest', '404')).toBe(1);
    expect(after.types.get('regmeta_http_requests_total')).toBe('counter');
    // The layer went out in the blob GET's body; the manifest PUT's body came in.
    const bytes = (e: Exposition, name: string, route: string) => value(e, name, { route });
    expect(bytes(after, 'regmeta_http_sent_bytes_total', 'blob') - bytes(before, 'regmeta_http_sent_bytes_total', 'blob')).toBeGreaterThan(image.layer.length);
    expect(bytes(after, 'regmeta_http_received_bytes_total', 'manifest') - bytes(before, 'regmeta_http_received_bytes_total', 'manifest')).toBeGreaterThan(
      image.manifest.length,
    );
    // Each manifest GET asked the store once.
    const lookups = (e: Exposition) => value(e, 'regmeta_store_operation_duration_seconds_count', { operation: 'getManifestByReference' });
    expect(lookups(after) - lookups(before)).toBe(5);
  });

  it('has latency histograms with cumulative buckets from 0.1 ms to 60 s, a sum and a count', async () => {
    await pushImage(r.url, 'timed/app', 'v1', 'timed');
    const e = await scrape(r.url);
    expect(e.types.get('regmeta_http_request_duration_seconds')).toBe('histogram');
    expect(e.types.get('regmeta_store_operation_duration_seconds')).toBe('histogram');
    const labels = { method: 'PUT', route: 'manifest' };
    const buckets = find(e, 'regmeta_http_request_duration_seconds_bucket', labels);
    expect(buckets.map((b) => b.labels.le)).toEqual([...LATENCY_BUCKETS.map(String), '+Inf']);
    expect(LATENCY_BUCKETS[0]).toBe(0.0001);
    expect(LATENCY_BUCKETS.at(-1)).toBe(60);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i].value).toBeGreaterThanOrEqual(buckets[i - 1].value);
    const count = value(e, 'regmeta_http_request_duration_seconds_count', labels);
    expect(count).toBeGreaterThanOrEqual(1);
    expect(buckets.at(-1)!.value).toBe(count);
    expect(value(e, 'regmeta_http_request_duration_seconds_sum', labels)).toBeGreaterThan(0);
    expect(value(e, 'regmeta_store_operation_duration_seconds_count', { operation: 'putManifest' })).toBeGreaterThanOrEqual(1);
  });

  it('counts requests in flight, event streams included, back down when they end', async () => {
    // The scrape is itself in flight while it is answered.
    expect(value(await scrape(r.url), 'regmeta_http_requests_in_flight')).toBe(1);
    const controller = new AbortController();
    const stream = await fetch(`${r.url}/api/v0/events/stream`, { signal: controller.signal });
    const reader = stream.body!.getReader();
    await reader.read();
    expect(value(await scrape(r.url), 'regmeta_http_requests_in_flight')).toBe(2);
    controller.abort();
    await expect.poll(async () => value(await scrape(r.url), 'regmeta_http_requests_in_flight')).toBe(1);
  });

  it('shows an upload session open while a chunked upload goes on, and gone after', async () => {
    expect(value(await scrape(r.url), 'regmeta_upload_sessions')).toBe(0);
    const start = await fetch(`${r.url}/v2/chunked/app/blobs/uploads/`, { method: 'POST' });
    expect(start.status).toBe(202);
    const location = new URL(start.headers.get('location')!, r.url);
    const chunk = 'a chunk of a blob';
    const patched = await fetch(location, { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream' }, body: chunk });
    expect(patched.status).toBe(202);
    expect(value(await scrape(r.url), 'regmeta_upload_sessions')).toBe(1);
    const done = new URL(patched.headers.get('location')!, r.url);
    done.searchParams.set('digest', sha256(chunk));
    expect((await fetch(done, { method: 'PUT' })).status).toBe(201);
    expect(value(await scrape(r.url), 'regmeta_upload_sessions')).toBe(0);
  });

  it('reads the store\'s counts at most once per interval and serves the last read in between', async () => {
    const cached = await startRegistry({ metrics: { statsInterval: 60_000 } });
    try {
      expect(value(await scrape(cached.url), 'regmeta_repositories')).toBe(0);
      await pushImage(cached.url, 'cached/app', 'v1', 'cached');
      // Within the interval: the counts read before the push.
      expect(value(await scrape(cached.url), 'regmeta_repositories')).toBe(0);
    } finally {
      await cached.close();
    }
  });

  it('counts what the store holds, and the database\'s size, once the interval has passed', async () => {
    const own = await startRegistry({ metrics: { statsInterval: 50 } });
    try {
      const first = await scrape(own.url);
      expect(value(first, 'regmeta_repositories')).toBe(0);
      expect(value(first, 'regmeta_database_bytes')).toBeGreaterThan(0);
      await pushImage(own.url, 'one/app', 'v1', 'one');
      await pushImage(own.url, 'one/app', 'v2', 'one more');
      await pushImage(own.url, 'two/app', 'latest', 'two');
      await new Promise((resolve) => setTimeout(resolve, 60));
      const later = await scrape(own.url);
      expect(value(later, 'regmeta_repositories')).toBe(2);
      expect(value(later, 'regmeta_manifests')).toBe(3);
      expect(value(later, 'regmeta_tags')).toBe(3);
      expect(value(later, 'regmeta_blobs')).toBe(6);
      expect(value(later, 'regmeta_blob_bytes')).toBe(own.store.stats().counts.blobBytes);
      for (const name of ['regmeta_repositories', 'regmeta_manifests', 'regmeta_tags', 'regmeta_blobs', 'regmeta_database_bytes']) {
        expect(later.types.get(name)).toBe('gauge');
      }
    } finally {
      await own.close();
    }
  });

  it('shows each webhook endpoint\'s backlog, failures and last success, its URL shown as scheme, host and port only', async () => {
    const own = await startRegistry({ metrics: { statsInterval: 0 } });
    try {
      const endpoint = 'http://user:secret@hooks.example:8080/registry?token=t0ps3cret';
      own.store.notifications.open(endpoint);
      await pushImage(own.url, 'hooked/app', 'v1', 'hooked');
      own.store.notifications.recordFailure(endpoint, 'connection refused');
      const label = { endpoint: 'http://hooks.example:8080' };
      let e = await scrape(own.url);
      expect(value(e, 'regmeta_notify_backlog_events', label)).toBe(own.store.notifications.status()[0].backlog);
      expect(value(e, 'regmeta_notify_backlog_events', label)).toBeGreaterThan(0);
      expect(value(e, 'regmeta_notify_failures', label)).toBe(1);
      expect(find(e, 'regmeta_notify_last_success_timestamp_seconds')).toEqual([]);
      own.store.notifications.advance(endpoint, own.store.notifications.eventsAfter(endpoint, 1000));
      e = await scrape(own.url);
      expect(value(e, 'regmeta_notify_backlog_events', label)).toBe(0);
      expect(value(e, 'regmeta_notify_failures', label)).toBe(0);
      expect(Math.abs(value(e, 'regmeta_notify_last_success_timestamp_seconds', label) - Date.now() / 1000)).toBeLessThan(60);
      expect(JSON.stringify(e.samples)).not.toContain('secret');
      expect(JSON.stringify(e.samples)).not.toContain('t0ps3cret');
      expect(JSON.stringify(e.samples)).not.toContain('/registry');
    } finally {
      await own.close();
    }
  });

  it('never puts a repository name in a label: 1000 repositories make no more series', async () => {
    const own = await startRegistry({ metrics: true });
    try {
      const seriesCount = async () => (await scrape(own.url)).samples.length;
      await pushBlob(own.url, 'warmup/repo', 'the same blob');
      expect((await fetch(`${own.url}/v2/warmup/repo/blobs/${sha256('nothing')}`)).status).toBe(404);
      // The first scrape is counted (under route "metrics") once it is over.
      await seriesCount();
      const before = await seriesCount();
      for (let i = 0; i < 1000; i += 10) {
        await Promise.all(Array.from({ length: 10 }, (_, k) => pushBlob(own.url, `many/repo-${i + k}`, 'the same blob')));
      }
      for (let i = 0; i < 100; i++) expect((await fetch(`${own.url}/v2/many/missing-${i}/blobs/${sha256('nothing')}`)).status).toBe(404);
      const e = await scrape(own.url);
      expect(e.samples.length).toBe(before);
      expect(value(e, 'regmeta_http_requests_total', { method: 'POST', route: 'uploadStart', status: '201' })).toBe(1001);
      const labelValues = e.samples.flatMap((s) => Object.values(s.labels));
      expect(labelValues.filter((v) => v.includes('repo') || v.includes('many') || v.includes('missing'))).toEqual([]);
    } finally {
      await own.close();
    }
  });

  it('counts a request no route takes under route "none"', async () => {
    const before = await scrape(r.url);
    expect((await fetch(`${r.url}/v2/Bad..Name/manifests/v1`)).status).toBe(400);
    expect((await fetch(`${r.url}/no/such/endpoint`)).status).toBe(404);
    const after = await scrape(r.url);
    expect(requests(after, 'GET', 'none', '400') - requests(before, 'GET', 'none', '400')).toBe(1);
    expect(requests(after, 'GET', 'none', '404') - requests(before, 'GET', 'none', '404')).toBe(1);
  });

  it('keeps each handler\'s metrics to itself', async () => {
    const other = await startRegistry({ metrics: true });
    try {
      await pushBlob(other.url, 'elsewhere/app', 'only on the other registry');
      const e = await scrape(r.url);
      const o = await scrape(other.url);
      expect(value(o, 'regmeta_http_requests_total', { method: 'POST', route: 'uploadStart', status: '201' })).toBe(1);
      expect(value(e, 'regmeta_http_requests_total', { method: 'POST', route: 'uploadStart', status: '201' })).not.toBe(1);
    } finally {
      await other.close();
    }
  });
});

describe('metrics off', () => {
  it('answers /metrics 404 and the handler has no registry, by default', async () => {
    const r = await startRegistry();
    try {
      const res = await fetch(`${r.url}/metrics`);
      expect(res.status).toBe(404);
      expect(r.server.listeners('request')[0]).toHaveProperty('metrics', undefined);
    } finally {
      await r.close();
    }
  });
});

describe('metrics with logins', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'regmeta-metrics-'));
  const htpasswd = path.join(dir, 'htpasswd');
  writeFileSync(htpasswd, [`alice:${bcrypt.hashSync('alice-pw', 4)}`, `root:${bcrypt.hashSync('root-pw', 4)}`, ''].join('\n'));
  const basic = (user: string, password: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('lets only admins scrape the main listener: 401 with a challenge for anonymous, 403 for a user', async () => {
    const r = await startRegistry({ htpasswd, admins: ['root'], metrics: true });
    try {
      const anonymous = await fetch(`${r.url}/metrics`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic /);
      expect((await fetch(`${r.url}/metrics`, { headers: basic('alice', 'alice-pw') })).status).toBe(403);
      const e = await scrape(r.url, basic('root', 'root-pw'));
      // The anonymous request was refused before routing, and still counted under its route.
      expect(requests(e, 'GET', 'metrics', '401')).toBe(1);
      expect(requests(e, 'GET', 'metrics', '403')).toBe(1);
    } finally {
      await r.close();
    }
  });

  it('serves the metrics listener without credentials while the main listener asks for them', async () => {
    const data = mkdtempSync(path.join(dir, 'data-'));
    const started = await startServer({ dataDir: data, port: 0, htpasswd, admins: ['root'], metrics: true, metricsListen: { port: 0 }, log: () => {} });
    try {
      expect(started.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await fetch(`${started.url}/metrics`)).status).toBe(401);
      expect((await fetch(`${started.url}/v2/`)).status).toBe(401);
      const e = await scrape(started.metricsUrl!);
      expect(requests(e, 'GET', 'metrics', '401')).toBe(1);
      expect(requests(e, 'GET', 'base', '401')).toBe(1);
      expect((await fetch(`${started.metricsUrl}/v2/`)).status).toBe(404);
      expect((await fetch(`${started.metricsUrl}/metrics`, { method: 'POST' })).status).toBe(405);
    } finally {
      await started.close();
    }
  });

  it('with only a metrics listener, the main listener does not answer /metrics', async () => {
    const data = mkdtempSync(path.join(dir, 'data-'));
    const started = await startServer({ dataDir: data, port: 0, metricsListen: { port: 0 }, log: () => {} });
    try {
      expect((await fetch(`${started.url}/metrics`)).status).toBe(404);
      expect(requests(await scrape(started.metricsUrl!), 'GET', 'metrics', '404')).toBe(1);
    } finally {
      await started.close();
    }
  });
});
