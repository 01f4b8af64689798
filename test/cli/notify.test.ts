// `regmeta serve --notify` as a real process: SIGKILLed while a batch is in
// flight and started again, every event reaches a real receiver at least
// once and in commit order; then `regmeta notify status`, and the option's
// checks and masking.

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { openStore } from 'regmeta';
import { afterAll, describe, expect, it } from 'vitest';
import { startReceiver, type Receiver } from '../notify/receiver.js';
import { pushImage } from '../server/helpers.js';
import { regmeta, serve, tempDir } from './run.js';

const receivers: Receiver[] = [];
afterAll(async () => {
  for (const r of receivers) await r.close();
});

/** The ids a receiver should get, in commit order (all but CREATE REPOSITORY), read from the store file. */
function expectedIds(data: string): string[] {
  const store = openStore(path.join(data, 'metadata.db'), { readOnly: true });
  try {
    const events = store.getEvents({ perPage: 1000 }).events.reverse();
    return events.filter((e) => !(e.object.type === 'REPOSITORY' && e.type === 'CREATE')).map((e) => e.id);
  } finally {
    store.close();
  }
}

const firstSeen = (ids: string[]) => [...new Set(ids)];

describe('regmeta serve --notify', () => {
  it('delivers every event at least once and in order across a SIGKILL mid-delivery, resuming from its cursor', async () => {
    const data = tempDir();
    const receiver = await startReceiver();
    receivers.push(receiver);
    receiver.delay = 300;
    const first = await serve(data, ['--notify', receiver.url]);
    for (const n of [1, 2, 3, 4]) await pushImage(first.url, 'acme/app', `v${n}`, `seed ${n}`);
    // Killed once one batch was acknowledged and the next is in flight.
    await receiver.until((d) => d.length >= 1 && receiver.started > d.length);
    first.child.kill('SIGKILL');
    await first.stop();
    const beforeKill = receiver.acknowledged().length;

    const second = await serve(data, ['--notify', receiver.url]);
    try {
      await pushImage(second.url, 'acme/app', 'v5', 'seed 5');
      const ids = expectedIds(data);
      await receiver.until(() => firstSeen(receiver.acknowledged()).length >= ids.length, 60_000);
      expect(firstSeen(receiver.acknowledged())).toEqual(ids);
      // The cursor resumed: at most the batch in flight (20 events) came again.
      expect(receiver.acknowledged().length - ids.length).toBeLessThanOrEqual(20);
      expect(beforeKill).toBeGreaterThan(0);
    } finally {
      expect(await second.stop()).toBe(0);
    }

    const json = await regmeta(['notify', 'status', '--data', data, '--json']);
    expect(json.status).toBe(0);
    const [status] = JSON.parse(json.stdout) as { endpoint: string; eventId: string; backlog: number; failures: number; lastSuccessAt: string }[];
    expect(status).toMatchObject({ endpoint: new URL(receiver.url).origin, eventId: expectedIds(data).at(-1), backlog: 0, failures: 0 });
    expect(new Date(status.lastSuccessAt).getTime()).not.toBeNaN();
    const text = await regmeta(['notify', 'status', '--data', data]);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/endpoint\s+last event delivered\s+its time\s+backlog\s+failures\s+last success/);
    // Shown as scheme://host:port: a webhook URL's path may be its secret.
    expect(text.stdout).toContain(new URL(receiver.url).origin);
    expect(text.stdout).not.toContain(receiver.url);
  });

  it('shows a failing endpoint\'s backlog and last error', async () => {
    const data = tempDir();
    const receiver = await startReceiver();
    receivers.push(receiver);
    receiver.answer = 503;
    const served = await serve(data, ['--notify', receiver.url]);
    try {
      await pushImage(served.url, 'acme/app', 'v1', 'down');
      await receiver.until((d) => d.length >= 2);
    } finally {
      await served.stop();
    }
    expect(served.stderr()).toContain(`notify ${new URL(receiver.url).origin}: HTTP 503 Service Unavailable`);
    const run = await regmeta(['notify', 'status', '--data', data]);
    expect(run.stdout).toContain(`${new URL(receiver.url).origin}: last error at`);
    expect(run.stdout).toContain('HTTP 503 Service Unavailable');
    const [status] = JSON.parse((await regmeta(['notify', 'status', '--data', data, '--json'])).stdout) as { backlog: number; failures: number }[];
    expect(status.backlog).toBeGreaterThan(0);
    expect(status.failures).toBeGreaterThanOrEqual(2);
  });

  it('refuses a URL that is not http(s) in one line, exit 2, and masks secrets in --print-config', async () => {
    const data = tempDir();
    const bad = await regmeta(['serve', '--data', data, '--notify', 'ftp://example.com/hook']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^regmeta serve: --notify: expected http or https URLs .*got "ftp:\/\/example.com\/…"/);
    const two = await regmeta(['serve', '--data', data, '--notify', 'ftp://a/hook', '--notify', 'http://ok/hook', '--notify', 'b']);
    expect(two.status).toBe(2);
    expect(two.stderr).toContain('got "ftp://a/…"');
    expect(two.stderr).toContain('got "b"');
    const config = path.join(data, 'regmeta.yaml');
    writeFileSync(config, 'notify:\n  - http://a.example/hook\n  - { url: "https://b.example/hook", secret: s3cret, headers: { Authorization: "Bearer t0ken" }, timeout: 5s }\n');
    const printed = await regmeta(['serve', '--config', config, '--print-config']);
    expect(printed.status).toBe(0);
    expect(printed.stdout).toContain('https://b.example/hook');
    expect(printed.stdout).not.toMatch(/s3cret|t0ken/);
    const wrong = path.join(data, 'wrong.yaml');
    writeFileSync(wrong, 'notify:\n  - { url: "https://b.example/hook", secrett: x }\n');
    const refused = await regmeta(['serve', '--config', wrong]);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('notify: expected http or https URLs');
  });
  it('delivers to a URL with credentials as Basic authorization, and prints neither them nor the path: logs, status, metrics, errors, --print-config', async () => {
    const data = tempDir();
    const receiver = await startReceiver();
    receivers.push(receiver);
    receiver.answer = 503;
    const hook = new URL(receiver.url);
    hook.username = 'alice';
    hook.password = 'pa55w0rd';
    hook.pathname = '/services/T0000/XXXXSECRET';
    const config = path.join(data, 'regmeta.yaml');
    writeFileSync(config, `notify:\n  - ${hook.href}\n  - { url: "${receiver.url}/named", name: ci }\n`);
    const served = await serve(data, ['--config', config]);
    let metrics: string;
    try {
      await pushImage(served.url, 'acme/app', 'v1', 'one');
      await receiver.until((d) => d.length >= 4);
      receiver.answer = 200;
      await receiver.until((d) => d.filter((x) => x.status === 200).length >= 2);
      metrics = await (await fetch(`${served.url}/metrics`)).text();
    } finally {
      expect(await served.stop()).toBe(0);
    }
    const basic = `Basic ${Buffer.from('alice:pa55w0rd').toString('base64')}`;
    const secretPath = receiver.deliveries.filter((d) => d.path === '/services/T0000/XXXXSECRET');
    expect(secretPath.length).toBeGreaterThan(0);
    expect(secretPath.filter((d) => d.status === 200).every((d) => d.headers.authorization === basic)).toBe(true);
    expect(served.stderr()).toContain(`notify ${new URL(receiver.url).origin}: HTTP 503 Service Unavailable`);
    expect(served.stderr()).toContain('notify ci: HTTP 503 Service Unavailable');
    const status = await regmeta(['notify', 'status', '--data', data]);
    expect(status.stdout).toMatch(/^ci\s/m);
    const json = await regmeta(['notify', 'status', '--data', data, '--json']);
    expect((JSON.parse(json.stdout) as { endpoint: string }[]).map((s) => s.endpoint).sort()).toEqual(['ci', new URL(receiver.url).origin]);
    const printed = await regmeta(['serve', '--config', config, '--print-config']);
    expect(printed.stdout).toContain('alice:********@');
    const wrong = await regmeta(['serve', '--data', data, '--notify', `${hook.href},ftp://elsewhere`]);
    expect(wrong.status).toBe(2);
    for (const text of [served.stderr(), served.stdout(), status.stdout, json.stdout, metrics, wrong.stderr]) expect(text).not.toMatch(/pa55w0rd|XXXXSECRET/);
    expect(printed.stdout).not.toContain('pa55w0rd');
  });

  it('names targets by --public-url, not the listen address, as Location headers do', async () => {
    const data = tempDir();
    const receiver = await startReceiver();
    receivers.push(receiver);
    const publicUrl = 'https://registry.example.com:8443';
    const served = await serve(data, ['--notify', receiver.url, '--public-url', `${publicUrl}/`]);
    try {
      const { digest } = await pushImage(served.url, 'acme/app', 'v1', 'public');
      const session = await fetch(`${served.url}/v2/acme/app/blobs/uploads/`, { method: 'POST' });
      expect(session.status).toBe(202);
      expect(session.headers.get('location')).toMatch(new RegExp(`^${publicUrl}/v2/acme/app/blobs/uploads/[\\w-]+$`));
      await receiver.until((d) => d.some((x) => x.events.some((e) => e.target.tag === 'v1')));
      const pushed = receiver.deliveries.flatMap((d) => d.events).find((e) => e.target.tag === 'v1')!;
      expect(pushed.target.url).toBe(`${publicUrl}/v2/acme/app/manifests/${digest}`);
      expect(pushed.source.addr).toBe('registry.example.com:8443');
      expect(JSON.stringify(receiver.deliveries)).not.toContain(new URL(served.url).host);
    } finally {
      await served.stop();
    }
    const bad = await regmeta(['serve', '--data', data, '--public-url', 'https://registry.example.com/prefix']);
    expect([bad.status, bad.stderr]).toEqual([2, expect.stringMatching(/^regmeta serve: --public-url: expected .*got "https:\/\/registry\.example\.com\/…"/)]);
  });
});
