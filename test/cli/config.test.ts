// The configuration of `regmeta serve`: the config file (YAML, JSON) and its
// validation, one precedence over flag, environment, file and default,
// --print-config, and the README's options table, which the table writes.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseServeArgs } from '../../src/cli/commands/serve.js';
import { suggestion } from '../../src/cli/config/file.js';
import { OPTIONS } from '../../src/cli/config/options.js';
import { optionsMarkdown, printableConfig } from '../../src/cli/config/render.js';
import { sha256 } from '../server/helpers.js';
import { configFile, problems } from './config-files.js';
import { isOneLineError, regmeta, serve, tempDir } from './run.js';

const root = path.resolve(import.meta.dirname, '../..');



const YAML_CONFIG = `# a team's registry
listen: 0.0.0.0:5443
data: ./registry-data
htpasswd: users.htpasswd
admins: [alice, bob]
readOnly: false
deletes: false
tls:
  cert: tls/registry.crt
  key: tls/registry.key
limits:
  idleTimeout: 5m
  maxConnectionsPerAddress: 64
  maxBlobSize: 10GiB
  uploadTtl: 3600
  failedLoginWindow: 2m
`;

describe('the config file', () => {
  it('is read as YAML, with paths relative to its own directory', () => {
    const file = configFile('regmeta.yaml', YAML_CONFIG);
    const dir = path.dirname(file);
    const loaded = parseServeArgs(['--config', file], {})!;
    expect(loaded.config).toMatchObject({
      listen: '0.0.0.0:5443',
      data: path.join(dir, 'registry-data'),
      htpasswd: path.join(dir, 'users.htpasswd'),
      admins: ['alice', 'bob'],
      readOnly: false,
      deletes: false,
      tls: { cert: path.join(dir, 'tls/registry.crt'), key: path.join(dir, 'tls/registry.key') },
      limits: { idleTimeout: 300_000, maxConnectionsPerAddress: 64, maxBlobSize: 10 * 1024 ** 3, uploadTtl: 3_600_000, failedLoginWindow: 120_000, maxUploadsPerAddress: 256 },
    });
    expect(loaded.sources).toMatchObject({ listen: 'file', 'limits.idleTimeout': 'file', 'limits.maxUploadsPerAddress': 'default' });
    expect(loaded.file).toBe(file);
  });

  it('is read as JSON when its name ends in .json, and named by REGMETA_CONFIG as well', () => {
    const file = configFile('regmeta.json', JSON.stringify({ listen: ':6000', limits: { idleTimeout: 30, maxFailedLoginsPerAddress: 0 } }));
    expect(parseServeArgs([], { REGMETA_CONFIG: file })!.config).toMatchObject({ listen: ':6000', limits: { idleTimeout: 30_000, maxFailedLoginsPerAddress: 0 } });
  });

  it('gives way to the environment, which gives way to flags', () => {
    const file = configFile('regmeta.yaml', 'limits:\n  idleTimeout: 5m\nreadOnly: true\n');
    const env = { REGMETA_IDLE_TIMEOUT: '30s' };
    expect(parseServeArgs(['--config', file], {})!.config.limits.idleTimeout).toBe(300_000);
    expect(parseServeArgs(['--config', file], env)!.config.limits.idleTimeout).toBe(30_000);
    const loaded = parseServeArgs(['--config', file, '--idle-timeout', '10', '--no-read-only'], env)!;
    expect(loaded.config).toMatchObject({ readOnly: false, limits: { idleTimeout: 10_000 } });
    expect(loaded.sources).toMatchObject({ readOnly: 'flag', 'limits.idleTimeout': 'flag' });
  });

  it('is checked as a whole: every unknown key, wrong type and bad value is one line naming the key', () => {
    const file = configFile(
      'bad.yaml',
      ['listen: 5000', 'readOnly: "yes"', 'admins: alice', 'colour: blue', 'idleTimeout: 60', 'limits:', '  idleTimeout: abc', '  maxBlobSize: 10GB', '  maxUploadsPerAdress: 3', 'tls: on', ''].join('\n'),
    );
    const where = `config ${file}`;
    expect(problems(() => parseServeArgs(['--config', file], {}))).toEqual([
      `${where}: listen: expected host:port (like 127.0.0.1:5000, 0.0.0.0:5000 or [::1]:5000), got 5000`,
      `${where}: readOnly: expected true or false, got "yes"`,
      `${where}: admins: expected a list of names, got "alice"`,
      `${where}: colour: unknown key`,
      `${where}: idleTimeout: unknown key (did you mean limits.idleTimeout?)`,
      `${where}: limits.idleTimeout: expected a duration (seconds, or like 60s, 5m, 1h30m), got "abc"`,
      `${where}: limits.maxBlobSize: expected a size (bytes, or like 512MiB, 64GiB) of at least 1 B, got "10GB"`,
      `${where}: limits.maxUploadsPerAdress: unknown key (did you mean limits.maxUploadsPerAddress?)`,
      `${where}: tls: expected a mapping of cert, key, got "on"`,
    ]);
  });

  it('fails the real command with exit 2, one line per problem and nothing started', async () => {
    const dir = tempDir('regmeta-config-');
    const file = path.join(dir, 'regmeta.yaml');
    writeFileSync(file, 'data: ./data\nlimits:\n  idleTimeout: abc\n');
    const run = await regmeta(['serve', '--config', file]);
    expect(run.status).toBe(2);
    expect(run.stderr).toBe(`regmeta serve: config ${file}: limits.idleTimeout: expected a duration (seconds, or like 60s, 5m, 1h30m), got "abc"\n`);
    expect(run.stdout).toBe('');
    expect(existsSync(path.join(dir, 'data'))).toBe(false);

    writeFileSync(file, 'data: ./data\nlistens: :5000\nlimits:\n  idleTimeout: abc\n');
    const two = await regmeta(['serve', '--config', file]);
    expect(two.status).toBe(2);
    expect(two.stderr.trim().split('\n')).toEqual([
      `regmeta serve: config ${file}: listens: unknown key (did you mean listen?)`,
      `regmeta serve: config ${file}: limits.idleTimeout: expected a duration (seconds, or like 60s, 5m, 1h30m), got "abc"`,
    ]);
    expect(existsSync(path.join(dir, 'data'))).toBe(false);
  });

  it('that does not parse is one line with where, exit 2; one that cannot be read exits 5', async () => {
    const yaml = configFile('broken.yaml', 'listen: 127.0.0.1:5000\nlimits: {idleTimeout: 5m\n');
    const run = await regmeta(['serve', '--config', yaml]);
    expect(run.status).toBe(2);
    expect(isOneLineError(run.stderr)).toBe(true);
    expect(run.stderr).toMatch(new RegExp(`^regmeta serve: config ${yaml}: not valid YAML: .*line \\d+, column \\d+`));
    const twice = configFile('twice.yaml', 'listen: :1\nlisten: :2\n');
    expect((await regmeta(['serve', '--config', twice])).stderr).toMatch(/not valid YAML: Map keys must be unique/);
    const json = configFile('broken.json', '{"listen": ');
    expect(await regmeta(['serve', '--config', json])).toMatchObject({ status: 2, stderr: expect.stringMatching(/not valid JSON/) });
    const missing = await regmeta(['serve', '--config', '/nonexistent/regmeta.yaml']);
    expect(missing.status).toBe(5);
    expect(missing.stderr).toMatch(/^regmeta serve: cannot read config file \/nonexistent\/regmeta.yaml: ENOENT/);
  });

  it('may be empty or hold only comments: the defaults apply', () => {
    const file = configFile('empty.yaml', '# nothing yet\n');
    expect(parseServeArgs(['--config', file], {})!.config.listen).toBe('127.0.0.1:5000');
  });
});

describe('a running server', () => {
  it('applies what the config file says, limits included', async () => {
    const dir = tempDir('regmeta-config-');
    const file = path.join(dir, 'regmeta.yaml');
    writeFileSync(file, 'deletes: false\nlimits:\n  maxUploadsPerAddress: 1\n  maxBlobSize: 1KiB\n');
    const served = await serve(path.join(dir, 'data'), ['--config', file]);
    try {
      const post = () => fetch(`${served.url}/v2/limits/app/blobs/uploads/`, { method: 'POST' });
      const first = await post();
      expect(first.status).toBe(202);
      expect((await post()).status).toBe(429);
      const big = Buffer.alloc(2048, 1);
      const target = new URL(first.headers.get('location')!, served.url);
      target.searchParams.set('digest', sha256(big));
      const put = await fetch(target, { method: 'PUT', body: big });
      expect(put.status).toBe(413);
      expect((await fetch(`${served.url}/v2/limits/app/manifests/sha256:${'0'.repeat(64)}`, { method: 'DELETE' })).status).toBe(405);
    } finally {
      expect(await served.stop()).toBe(0);
    }
  });
});

describe('--print-config', () => {
  it('prints the effective configuration with where each value came from, and it reads back the same', async () => {
    const file = configFile('regmeta.yaml', YAML_CONFIG);
    const run = await regmeta(['serve', '--config', file, '--listen', '127.0.0.1:7000', '--print-config'], { env: { REGMETA_MAX_UPLOADS_PER_ADDRESS: '9' } });
    expect(run.status).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('listen: 127.0.0.1:7000 # from --listen\n');
    expect(run.stdout).toContain('deletes: false # from ' + file);
    expect(run.stdout).toContain('  maxUploadsPerAddress: 9 # from REGMETA_MAX_UPLOADS_PER_ADDRESS\n');
    expect(run.stdout).toContain('  idleTimeout: 5m # from ' + file);
    expect(run.stdout).toContain('  maxBlobSize: 10GiB #');
    expect(run.stdout).toContain('  passwordCheckQueue: 64 # default\n');
    expect(run.stdout).toContain('admins: [ alice, bob ] #');

    const again = configFile('printed.yaml', run.stdout);
    expect(parseServeArgs(['--config', again], {})!.config).toEqual(
      parseServeArgs(['--config', file, '--listen', '127.0.0.1:7000'], { REGMETA_MAX_UPLOADS_PER_ADDRESS: '9' })!.config,
    );
  });

  it('masks secrets', () => {
    const loaded = parseServeArgs(['--htpasswd', '/etc/secret-file'], {})!;
    const table = OPTIONS.map((o) => (o.key === 'htpasswd' ? { ...o, secret: true } : o));
    const printed = printableConfig(loaded, table);
    expect(printed).toContain('htpasswd: "********" # from --htpasswd');
    expect(printed).not.toContain('secret-file');
  });

  it('refuses its masks read back as secrets: one line naming each key, exit 2', async () => {
    const file = configFile(
      'secrets.yaml',
      [
        'database: postgres://regmeta:s3cret@db.internal:5432/regmeta',
        'notify:',
        '  - https://alice:pa55@hooks.internal/in',
        '  - { url: "https://ci.internal/hook", secret: signing-key, headers: { Authorization: "Bearer t0ken" } }',
      ].join('\n'),
    );
    const printed = await regmeta(['serve', '--config', file, '--print-config']);
    expect(printed.status).toBe(0);
    for (const secret of ['s3cret', 'pa55', 'signing-key', 't0ken']) expect(printed.stdout).not.toContain(secret);
    const again = configFile('printed.yaml', printed.stdout);
    const run = await regmeta(['serve', '--config', again, '--print-config']);
    expect(run.status).toBe(2);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(/^regmeta serve: config \S+printed\.yaml: database: the password: "\*{8}" is the mask --print-config prints, not a secret/),
      expect.stringMatching(/^regmeta serve: config \S+printed\.yaml: notify: endpoint 1's URL password, endpoint 2's secret, endpoint 2's headers\.Authorization: "\*{8}" is the mask/),
    ]);
    // Given as a flag or a variable, the same refusal.
    const flag = await regmeta(['serve', '--database', 'postgres://u:********@db/regmeta', '--print-config']);
    expect([flag.status, isOneLineError(flag.stderr)]).toEqual([2, true]);
    expect(flag.stderr).toContain('--database: the password: "********" is the mask');
  });

  it('warns of REGMETA_ variables that name no option', async () => {
    const run = await regmeta(['serve', '--print-config'], { env: { REGMETA_IDLE_TIMOUT: '5' } });
    expect(run.status).toBe(0);
    expect(run.stderr).toBe('regmeta serve: warning: environment: REGMETA_IDLE_TIMOUT is no option of regmeta serve; ignored (did you mean REGMETA_IDLE_TIMEOUT?)\n');
  });
});

describe('the options table', () => {
  it('names each flag, variable and key once', () => {
    for (const field of ['key', 'flagName', 'env'] as const) expect(new Set(OPTIONS.map((o) => o[field])).size).toBe(OPTIONS.length);
    expect(OPTIONS.map((o) => o.env)).toEqual(
      expect.arrayContaining([
        'REGMETA_LISTEN',
        'REGMETA_DATA',
        'REGMETA_HTPASSWD',
        'REGMETA_IDLE_TIMEOUT',
        'REGMETA_MAX_CONNECTIONS_PER_ADDRESS',
        'REGMETA_MAX_UPLOADS_PER_ADDRESS',
        'REGMETA_MAX_FAILED_LOGINS_PER_ADDRESS',
        'REGMETA_TLS_CERT',
        'REGMETA_TLS_KEY',
      ]),
    );
  });

  it('is the table of docs/registry.md, word for word', () => {
    const doc = readFileSync(path.join(root, 'docs/registry.md'), 'utf8');
    expect(doc).toContain(optionsMarkdown());
  });

  it('suggests a close name for a misspelt one', () => {
    expect(suggestion('limits.idleTimeot', OPTIONS.map((o) => o.key))).toBe(' (did you mean limits.idleTimeout?)');
    expect(suggestion('read-only', OPTIONS.map((o) => o.key))).toBe(' (did you mean readOnly?)');
    expect(suggestion('colour', OPTIONS.map((o) => o.key))).toBe('');
  });
});

