// Immutable tags through a real `regmeta serve` (the `immutable` option of
// its config file) and real clients: skopeo's push that would move v1 is
// refused with 403 DENIED and the message, so is curl's delete; an admin's
// move is done, logged as a warning and evented with the reason.

import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciLayout } from '../server/oci-layout.js';
import { regmeta, serve, tempDir, type Served } from './run.js';

let dir: string;
let served: Served;
let layout: OciLayout;
let a: string;
let b: string;

function skopeo(user: string, ref: string, target: string) {
  return spawnSync(
    'skopeo',
    ['copy', '--insecure-policy', '--dest-tls-verify=false', '--quiet', '--dest-creds', `${user}:${user}-pw`, `oci:${layout.dir}:${ref}`, `docker://${new URL(served.url).host}/${target}`],
    { encoding: 'utf8', timeout: 120_000 },
  );
}

function curl(user: string, method: string, urlPath: string) {
  const run = spawnSync('curl', ['-s', '-u', `${user}:${user}-pw`, '-X', method, '-w', '\n%{http_code}', `${served.url}${urlPath}`], { encoding: 'utf8', timeout: 60_000 });
  const lines = run.stdout.split('\n');
  return { status: Number(lines.pop()), body: lines.join('\n') };
}

const digestOf = (tag: string) => curl('bob', 'GET', `/api/v0/repositories/rel/app/tags?prefix=${tag}`).body;

beforeAll(async () => {
  dir = tempDir('regmeta-serve-immutable-');
  writeFileSync(path.join(dir, 'htpasswd'), ['bob', 'root'].map((u) => `${u}:${bcrypt.hashSync(`${u}-pw`, 4)}`).join('\n'));
  writeFileSync(path.join(dir, 'rules.yaml'), "rules:\n  - repositories: ['rel/*']\n    users: [bob]\n    actions: [pull, push, delete]\n");
  writeFileSync(
    path.join(dir, 'regmeta.yaml'),
    "htpasswd: htpasswd\naccess: rules.yaml\nadmins: [root]\nimmutable:\n  - repositories: 'rel/*'\n    tags: ['v*']\n",
  );
  layout = new OciLayout(path.join(dir, 'layout'));
  const first = layout.addImage({ layerSize: 1024 }).descriptor;
  const second = layout.addImage({ layerSize: 1024 }).descriptor;
  layout.tag(first, 'a');
  layout.tag(second, 'b');
  [a, b] = [first.digest, second.digest];
  served = await serve(path.join(dir, 'data'), ['--config', path.join(dir, 'regmeta.yaml')]);
});

afterAll(async () => {
  await served?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('regmeta serve with immutable tags', () => {
  it("refuses a push that would move v1, and a delete of it, with 403 DENIED naming the tag and the rule", async () => {
    const first = skopeo('bob', 'a', 'rel/app:v1');
    expect(first.status, first.stderr).toBe(0);
    // The same digest again is no move.
    expect(skopeo('bob', 'a', 'rel/app:v1').status).toBe(0);
    const moved = skopeo('bob', 'b', 'rel/app:v1');
    expect(moved.status).not.toBe(0);
    expect(moved.stderr).toMatch(/denied/i);
    expect(moved.stderr).toContain('tag rel/app:v1 is immutable (rule rel/* v*)');
    // A tag no rule protects moves freely.
    expect(skopeo('bob', 'a', 'rel/app:latest').status).toBe(0);
    expect(skopeo('bob', 'b', 'rel/app:latest').status).toBe(0);
    for (const reference of ['v1', a]) {
      const refused = curl('bob', 'DELETE', `/v2/rel/app/manifests/${reference}`);
      expect(refused.status).toBe(403);
      expect(JSON.parse(refused.body)).toEqual({
        errors: [{ code: 'DENIED', message: 'tag rel/app:v1 is immutable (rule rel/* v*)', detail: { repository: 'rel/app', tag: 'v1', rule: 'rel/* v*' } }],
      });
    }
    expect(digestOf('v1')).toContain(a);
  });

  it("lets an admin move it: done, logged as a warning naming the user, the repository and the tag, evented with the reason", async () => {
    const moved = skopeo('root', 'b', 'rel/app:v1');
    expect(moved.status, moved.stderr).toBe(0);
    expect(digestOf('v1')).toContain(b);
    const warning = `admin root overrode immutable tag rel/app:v1 (rule rel/* v*): moved from ${a} to ${b}`;
    // Warnings go to stderr; the line is there once the log writes it.
    const warned = () => served.stderr().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: string; msg: string }).find((l) => l.msg === warning);
    for (let i = 0; warned() === undefined; i++) {
      if (i > 2000) throw new Error(`no warning in the log: ${served.stderr()}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(warned()).toMatchObject({ level: 'warn' });
    const events = JSON.parse(curl('root', 'GET', '/api/v0/events?repository=rel/app&objectType=TAG').body) as { events: { tag: string; type: string; reason?: string; actor: string }[] };
    expect(events.events[0]).toMatchObject({ type: 'UPDATE', tag: 'v1', actor: 'root', reason: 'immutable tag override by an admin' });
  });

  it('refuses a bad immutable entry before it starts: one usage line naming the key', async () => {
    const config = path.join(dir, 'bad.yaml');
    writeFileSync(config, "immutable:\n  - repositories: 'rel/*'\n    tags: ['v/1']\n");
    const run = await regmeta(['serve', '--config', config, '--data', path.join(dir, 'bad-data'), '--listen', '127.0.0.1:0']);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(`config ${config}: immutable: tags[0]: "v/1" is not a tag pattern`);
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
  });
});
