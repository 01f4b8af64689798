// `regmeta serve` with access rules, as a real child process: from a config
// file (the rules file relative to it) and from --access; a bad rules file
// stops it before anything starts.

import { existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256 } from '../server/helpers.js';
import { regmeta, serve, tempDir } from './run.js';

const basic = (user: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${user}-pw`).toString('base64')}` });

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function setup(): { dir: string; rules: string } {
  const dir = tempDir('regmeta-serve-access-');
  dirs.push(dir);
  writeFileSync(path.join(dir, 'htpasswd'), ['bob', 'dave', 'root'].map((u) => `${u}:${bcrypt.hashSync(`${u}-pw`, 4)}`).join('\n'));
  const rules = path.join(dir, 'rules.yaml');
  writeFileSync(
    rules,
    `rules:
  - repositories: ['acme/*']
    users: [bob]
    actions: [pull, push]
  - repositories: ['public/**']
    users: [anonymous, '*']
    actions: [pull]
`,
  );
  return { dir, rules };
}

const post = (url: string, repo: string, body: string, headers: Record<string, string> = {}) =>
  fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${sha256(body)}`, { method: 'POST', headers, body });

describe('regmeta serve with access rules', () => {
  it('reads the rules file a config file names (relative to it), and --admin is one of the admins', async () => {
    const { dir } = setup();
    const config = path.join(dir, 'regmeta.yaml');
    writeFileSync(config, 'htpasswd: htpasswd\naccess: rules.yaml\nadmins: [root]\n');
    const served = await serve(path.join(dir, 'data'), ['--config', config]);
    try {
      expect((await post(served.url, 'acme/app', 'bob blob', basic('bob'))).status).toBe(201);
      expect((await post(served.url, 'acme/app', 'dave blob', basic('dave'))).status).toBe(403);
      expect((await post(served.url, 'secret/x', 'root blob', basic('root'))).status).toBe(201);
      expect((await post(served.url, 'public/base', 'root blob', basic('root'))).status).toBe(201);
      expect((await fetch(`${served.url}/v2/public/base/blobs/${sha256('root blob')}`)).status).toBe(200);
      const anonymous = await fetch(`${served.url}/v2/acme/app/blobs/${sha256('bob blob')}`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic/);
      const catalog = (await (await fetch(`${served.url}/v2/_catalog`, { headers: basic('bob') })).json()) as { repositories: string[] };
      expect(catalog.repositories).toEqual(['acme/app', 'public/base']);
    } finally {
      expect(await served.stop()).toBe(0);
    }
  });

  it('takes --access over the config file, and REGMETA_ACCESS', async () => {
    const { dir, rules } = setup();
    const open = path.join(dir, 'open.json');
    writeFileSync(open, JSON.stringify({ rules: [{ repositories: ['**'], users: ['anonymous'], actions: ['pull', 'push'] }] }));
    const config = path.join(dir, 'regmeta.yaml');
    writeFileSync(config, `access: ${rules}\n`);
    const served = await serve(path.join(dir, 'data'), ['--config', config, '--access', open]);
    try {
      expect((await post(served.url, 'any/where', 'anonymous blob')).status).toBe(201);
    } finally {
      expect(await served.stop()).toBe(0);
    }
    const printed = await regmeta(['serve', '--print-config'], { env: { REGMETA_ACCESS: rules } });
    expect(printed.status).toBe(0);
    expect(printed.stdout).toContain(`access: ${rules} # from REGMETA_ACCESS`);
  });

  it('stops with exit 2 on a bad rules file, one line per problem naming the key, nothing started', async () => {
    const { dir } = setup();
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, "rules:\n  - repositories: ['Acme/*']\n    users: [bob]\n    actions: [pull, pul]\n");
    const data = path.join(dir, 'data');
    const run = await regmeta(['serve', '--data', data, '--access', bad]);
    expect(run.status).toBe(2);
    expect(run.stderr.trim().split('\n')).toEqual([
      `regmeta serve: access ${bad}: rules[0].repositories[0]: "Acme" is not a pattern segment (lowercase letters, digits, . _ - and *)`,
      `regmeta serve: access ${bad}: rules[0].actions[1]: expected pull, push or delete, got "pul"`,
    ]);
    expect(existsSync(data)).toBe(false);
    const missing = await regmeta(['serve', '--data', data, '--access', path.join(dir, 'none.yaml')]);
    expect(missing.status).toBe(5);
    expect(missing.stderr).toMatch(/cannot read access .*none\.yaml: ENOENT/);
    expect(existsSync(data)).toBe(false);
  });
});
