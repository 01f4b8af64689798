// `regmeta serve`'s metrics options, on a real child process: the metrics
// listener without credentials beside a main listener that asks for them,
// prom-client's process metrics, and --no-metrics.

import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, describe, expect, it } from 'vitest';
import { parseExposition, value } from '../server/prometheus.js';
import { serve, tempDir, type Served } from './run.js';

const running: Served[] = [];
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(running.map((s) => s.stop()));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function dir(): string {
  const made = tempDir();
  dirs.push(made);
  return made;
}

async function started(args: string[]): Promise<Served> {
  const served = await serve(path.join(dir(), 'data'), args);
  running.push(served);
  return served;
}

describe('regmeta serve metrics', () => {
  it('answers --metrics-listen without credentials, with process metrics, while the main listener asks for them', async () => {
    const htpasswd = path.join(dir(), 'htpasswd');
    writeFileSync(htpasswd, `root:${bcrypt.hashSync('root-pw', 4)}\n`);
    const s = await started(['--htpasswd', htpasswd, '--admin', 'root', '--metrics-listen', '127.0.0.1:0']);
    const metricsUrl = s.listening.metrics as string;
    expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${s.url}/metrics`)).status).toBe(401);
    const root = { Authorization: `Basic ${Buffer.from('root:root-pw').toString('base64')}` };
    expect((await fetch(`${s.url}/metrics`, { headers: root })).status).toBe(200);
    const res = await fetch(`${metricsUrl}/metrics`);
    expect(res.status).toBe(200);
    const e = parseExposition(await res.text());
    expect(value(e, 'regmeta_http_requests_total', { method: 'GET', route: 'metrics', status: '401' })).toBe(1);
    expect(value(e, 'regmeta_http_requests_total', { method: 'GET', route: 'metrics', status: '200' })).toBe(1);
    expect(e.types.get('process_cpu_user_seconds_total')).toBe('counter');
    expect(e.types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
  });

  it('with --no-metrics, has no /metrics', async () => {
    const s = await started(['--no-metrics']);
    expect((await fetch(`${s.url}/metrics`)).status).toBe(404);
    expect(s.listening.metrics).toBeUndefined();
  });
});
