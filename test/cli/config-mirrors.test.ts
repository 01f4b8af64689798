// The mirrors: --mirror PREFIX=URL (REGMETA_MIRROR, `mirrors` in the config
// file as PREFIX=URL strings or mappings with credentials, TTLs and limits)
// and --mirror-default; checked by the server's own rules, every problem one
// line, no password ever echoed or printed; readable by other commands.

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseServeArgs } from '../../src/cli/commands/serve.js';
import { location } from '../../src/cli/config/location.js';
import { mirrorOptions } from '../../src/cli/config/mirrors.js';
import { CliError } from '../../src/cli/exit.js';
import { isOneLineError, regmeta, tempDir } from './run.js';

const HUB = 'https://registry-1.docker.io';
const SECRET = 'hunter2-upstream';

function configFile(name: string, text: string, dir = tempDir('regmeta-mirrors-')): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** The lines of a CliError: its message and the further problems. */
function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof CliError) return [error.message, ...error.more];
    throw error;
  }
  throw new Error('no error');
}

describe('--mirror', () => {
  it('defaults to none', () => {
    const { config, sources } = parseServeArgs([], {})!;
    expect(config.mirrors).toEqual([]);
    expect(config.mirrorDefault).toBeUndefined();
    expect(sources.mirrors).toBe('default');
  });

  it('reads PREFIX=URL from repeated flags, a comma-separated variable, and the file, in that precedence', () => {
    expect(parseServeArgs(['--mirror', `docker.io=${HUB}`, '--mirror', 'ghcr.io=https://ghcr.io', '--mirror-default', 'docker.io'], {})!.config).toMatchObject({
      mirrors: [
        { prefix: 'docker.io', url: HUB },
        { prefix: 'ghcr.io', url: 'https://ghcr.io' },
      ],
      mirrorDefault: 'docker.io',
    });
    const env = { REGMETA_MIRROR: `docker.io=${HUB}, up=http://127.0.0.1:5001`, REGMETA_MIRROR_DEFAULT: 'up' };
    expect(parseServeArgs([], env)!.config).toMatchObject({ mirrors: [{ prefix: 'docker.io', url: HUB }, { prefix: 'up', url: 'http://127.0.0.1:5001' }], mirrorDefault: 'up' });
    const file = configFile('regmeta.yaml', `mirrors:\n  - from-file=http://127.0.0.1:1\nmirrorDefault: from-file\n`);
    expect(parseServeArgs(['--config', file], {})!.config).toMatchObject({ mirrors: [{ prefix: 'from-file', url: 'http://127.0.0.1:1' }], mirrorDefault: 'from-file' });
    const loaded = parseServeArgs(['--config', file], { REGMETA_MIRROR: 'from-env=http://127.0.0.1:2,from-file=http://127.0.0.1:3' })!;
    expect(loaded.config.mirrors).toEqual([{ prefix: 'from-env', url: 'http://127.0.0.1:2' }, { prefix: 'from-file', url: 'http://127.0.0.1:3' }]);
    expect(loaded.sources).toMatchObject({ mirrors: 'environment', mirrorDefault: 'file' });
    expect(parseServeArgs(['--config', file, '--mirror', 'flag=http://127.0.0.1:4', '--mirror-default', 'flag'], {})!.config).toMatchObject({ mirrors: [{ prefix: 'flag' }], mirrorDefault: 'flag' });
    // The default names one of the mirrors in effect: from-file is not one any more.
    expect(problems(() => parseServeArgs(['--config', file], { REGMETA_MIRROR: 'from-env=http://127.0.0.1:2' }))).toEqual([
      'mirrorDefault: from-file is not the prefix of a mirror (they are from-env)',
    ]);
  });

  it('takes mappings in the file, durations and sizes as the other options do, passwordFile relative to the file', () => {
    const dir = tempDir('regmeta-mirrors-');
    const file = configFile(
      'regmeta.yaml',
      [
        'mirrors:',
        '  - prefix: docker.io',
        `    url: ${HUB}`,
        '    username: ci',
        '    passwordFile: hub.token',
        '    ttl: 10m',
        '    maxSize: 20GiB',
        '    maxIdle: 30d',
        '    concurrency: 8',
        '    timeout: 45s',
        '  - { prefix: ghcr.io, url: "https://ghcr.io", username: me, password: s3cret, ttl: 0 }',
        'mirrorDefault: docker.io',
        '',
      ].join('\n'),
      dir,
    );
    expect(parseServeArgs(['--config', file], {})!.config).toMatchObject({
      mirrors: [
        { prefix: 'docker.io', url: HUB, username: 'ci', passwordFile: path.join(dir, 'hub.token'), ttl: 600_000, maxSize: 20 * 1024 ** 3, maxIdle: 30 * 86_400_000, concurrency: 8, timeout: 45_000 },
        { prefix: 'ghcr.io', url: 'https://ghcr.io', username: 'me', password: 's3cret', ttl: 0 },
      ],
      mirrorDefault: 'docker.io',
    });
  });

  it('refuses bad entries with the server\'s rules, every problem named, no password echoed', () => {
    const file = configFile(
      'regmeta.yaml',
      [
        'mirrors:',
        `  - { prefix: a, url: "ftp://h", password: ${SECRET} }`,
        `  - { prefix: b, url: "http://h", username: u, password: ${SECRET}, passwordFile: f, pasword: ${SECRET} }`,
        `  - { prefix: c, url: "http://h", ttl: soon, maxSize: 20GB, concurrency: 0 }`,
        '  - "no-equals-sign"',
        '',
      ].join('\n'),
    );
    const lines = problems(() => parseServeArgs(['--config', file], {}));
    expect(lines).toHaveLength(1);
    for (const part of [
      'mirrors: entry 2: unknown key "pasword"',
      'entry 2: password and passwordFile: give one or the other',
      'entry 3: ttl: expected a duration',
      'entry 3: maxSize: expected a size',
      'entry 3: concurrency: expected a whole number ≥ 1',
      'entry 4: expected PREFIX=URL',
    ]) expect(lines[0]).toContain(part);
    expect(lines[0]).not.toContain(SECRET);
    // Of the right form, checked by the server's rules: every entry named.
    const checked = configFile('checked.yaml', `mirrors:\n  - { prefix: a, url: "ftp://h", password: ${SECRET} }\n  - { prefix: "B!", url: "http://h" }\n  - "c=https://u:${SECRET}@h"\n`);
    const [line, ...more] = problems(() => parseServeArgs(['--config', checked], {}));
    expect(more).toEqual([]);
    for (const part of ["entry 1's url: expected an http or https URL", "entry 2's prefix: expected a repository name", "entry 3's url: credentials go in username and password"]) expect(line).toContain(part);
    expect(line).not.toContain(SECRET);
  });

  it('refuses overlapping prefixes, a default that names no mirror, and credentials on the command line', () => {
    expect(problems(() => parseServeArgs(['--mirror', 'cache=http://a', '--mirror', 'cache/hub=http://b'], {}))).toEqual([
      '--mirror: prefix cache/hub lies inside prefix cache: a repository name would have two upstreams',
    ]);
    expect(problems(() => parseServeArgs(['--mirror', 'up=http://a', '--mirror-default', 'down'], {}))).toEqual(['mirrorDefault: down is not the prefix of a mirror (they are up)']);
    expect(problems(() => parseServeArgs(['--mirror-default', 'down'], {}))[0]).toMatch(/^mirrorDefault: down is not the prefix of a mirror \(none is configured/);
    const [line] = problems(() => parseServeArgs(['--mirror', `up=http://me:${SECRET}@h`], { REGMETA_MIRROR: `x=http://me:${SECRET}@h` }));
    expect(line).toBe('--mirror: url: credentials go in username and password, not in the URL');
  });

  it('reads a passwordFile as serve starts: a missing one is one line naming the mirror', () => {
    const dir = tempDir('regmeta-mirrors-');
    writeFileSync(path.join(dir, 'token'), `${SECRET}\n`);
    expect(mirrorOptions([{ prefix: 'up', url: 'http://h', username: 'u', passwordFile: path.join(dir, 'token') }])).toEqual([{ prefix: 'up', url: 'http://h', username: 'u', password: SECRET }]);
    const [line, ...more] = problems(() => mirrorOptions([{ prefix: 'up', url: 'http://h', username: 'u', passwordFile: path.join(dir, 'missing') }]));
    expect(more).toEqual([]);
    expect(line).toBe(`mirrors: up: cannot read passwordFile ${path.join(dir, 'missing')}: ENOENT`);
  });

  it('--print-config masks every password, and a mask read back is refused', async () => {
    const dir = tempDir('regmeta-mirrors-');
    writeFileSync(path.join(dir, 'token'), SECRET);
    const file = configFile(
      'regmeta.yaml',
      `mirrors:\n  - { prefix: a, url: "http://h", username: u, password: ${SECRET}, ttl: 90s, maxSize: 1GiB }\n  - { prefix: b, url: "http://h", username: u, passwordFile: token }\n  - c=http://h\nmirrorDefault: c\n`,
      dir,
    );
    const printed = await regmeta(['serve', '--config', file, '--print-config']);
    expect([printed.status, printed.stderr]).toEqual([0, '']);
    expect(printed.stdout).not.toContain(SECRET);
    expect(printed.stdout).toContain('{ prefix: a, url: http://h, username: u, password: "********", ttl: 1m30s, maxSize: 1GiB }');
    expect(printed.stdout).toContain(`{ prefix: b, url: http://h, username: u, passwordFile: ${path.join(dir, 'token')} }`);
    expect(printed.stdout).toContain('mirrorDefault: c # from');
    const again = configFile('printed.yaml', printed.stdout, dir);
    const [line] = problems(() => parseServeArgs(['--config', again], {}));
    expect(line).toMatch(/^config \S+printed\.yaml: mirrors: entry 1's password: "\*{8}" is the mask --print-config prints/);
    // Without the masked entry, what was printed reads back as it was.
    const rest = configFile('rest.yaml', `mirrors:\n  - { prefix: b, url: "http://h", username: u, passwordFile: token }\n  - c=http://h\n`, dir);
    expect(parseServeArgs(['--config', rest], {})!.config.mirrors).toEqual([{ prefix: 'b', url: 'http://h', username: 'u', passwordFile: path.join(dir, 'token') }, { prefix: 'c', url: 'http://h' }]);
  });

  it('is a usage error of the real command in one line; an unreadable passwordFile too, before anything starts', async () => {
    const run = await regmeta(['serve', '--mirror', 'docker.io', '--print-config']);
    expect([run.status, isOneLineError(run.stderr)]).toEqual([2, true]);
    expect(run.stderr).toContain('--mirror: expected PREFIX=URL');
    const dir = tempDir('regmeta-mirrors-');
    const file = configFile('regmeta.yaml', 'mirrors:\n  - { prefix: up, url: "http://127.0.0.1:1", username: u, passwordFile: missing.token }\n', dir);
    const started = await regmeta(['serve', '--config', file, '--listen', '127.0.0.1:0', '--data', path.join(dir, 'data')]);
    expect([started.status, isOneLineError(started.stderr)]).toEqual([2, true]);
    expect(started.stderr).toContain(`mirrors: up: cannot read passwordFile ${path.join(dir, 'missing.token')}: ENOENT`);
  });
});

describe('a command that opens the registry', () => {
  it('reads the mirrors as serve does, with their defaults and without their passwords, when it asks', () => {
    const dir = tempDir('regmeta-mirrors-');
    const file = configFile('regmeta.yaml', `data: registry\nmirrors:\n  - { prefix: docker.io, url: "${HUB}", username: u, password: ${SECRET}, maxSize: 20GiB, maxIdle: 7d }\n`, dir);
    expect(location({ config: file }, 'gc', {}, {})).toEqual({ data: path.join(dir, 'registry') });
    const found = location({ config: file }, 'gc', { mirrors: true }, {});
    expect(found.mirrors).toEqual([{ prefix: 'docker.io', url: HUB, username: 'u', password: undefined, ttl: 300_000, concurrency: 32, timeout: 30_000, maxSize: 20 * 1024 ** 3, maxIdle: 7 * 86_400_000 }]);
    expect(location({}, 'gc', { mirrors: true }, { REGMETA_MIRROR: 'up=http://h' }).mirrors).toMatchObject([{ prefix: 'up', url: 'http://h' }]);
    expect(location({}, 'gc', { mirrors: true }, {}).mirrors).toEqual([]);
    expect(problems(() => location({ mirror: ['x'] }, 'gc', { mirrors: true }, {}))).toEqual(["--mirror: expected PREFIX=URL, like docker.io=https://registry-1.docker.io"]);
  });
});
