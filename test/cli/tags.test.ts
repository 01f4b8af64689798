// regmeta tags --long and --json: each tag's details as a table and as JSON,
// sorted and filtered, every page read; usage errors for a bad option.

import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { openStore } from 'regmeta';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tickPast } from '../store/fixtures.js';
import { putImage } from './data.js';
import { isOneLineError, regmeta, tempDir } from './run.js';

let dir: string;
let data: string;
let image: ReturnType<typeof putImage>;
let other: ReturnType<typeof putImage>;

beforeAll(() => {
  dir = tempDir();
  data = join(dir, 'data');
  mkdirSync(data);
  const store = openStore(join(data, 'metadata.db'));
  try {
    image = putImage(store, data, 'acme/web');
    // More than one page of the command's (1000): it must read them all.
    for (let i = 0; i < 1200; i++) store.putTag('acme/web', `b${String(i).padStart(4, '0')}`, image);
    tickPast(Date.now());
    other = putImage(store, data, 'acme/web');
    store.putTag('acme/web', 'a-latest', other);
  } finally {
    store.close();
  }
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('regmeta tags --long', () => {
  it('prints a table of every tag: digest short, media type, size, platforms, pushed, pulled, pulls', async () => {
    const run = await regmeta(['tags', 'acme/web', '--long', '--data', data]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1 + 1201);
    expect(lines[0].split(/\s{2,}/)).toEqual(['TAG', 'DIGEST', 'MEDIA TYPE', 'SIZE', 'PLATFORMS', 'PUSHED', 'PULLED', 'PULLS']);
    const size = other.size + other.config.size + other.layer.size;
    expect(lines[1].split(/\s{2,}/)).toEqual([
      'a-latest',
      other.digest.slice(0, 'sha256:'.length + 12),
      'application/vnd.oci.image.manifest.v1+json',
      `${size} B`,
      '-',
      expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\dZ$/),
      '-',
      '0',
    ]);
    expect(lines[1201].startsWith('b1199 ')).toBe(true);
  });

  it('sorts and filters: --sort pushed --order desc --pattern, --prefix', async () => {
    const pushed = await regmeta(['tags', 'acme/web', '--sort', 'pushed', '--order', 'desc', '--pattern', '*-*', '--data', data]);
    expect(pushed.status).toBe(0);
    expect(pushed.stdout.trimEnd().split('\n').slice(1).map((l) => l.split(' ')[0])).toEqual(['a-latest']);
    const prefixed = await regmeta(['tags', 'acme/web', '--prefix', 'b000', '--order', 'desc', '--data', data]);
    expect(prefixed.stdout.trimEnd().split('\n').slice(1).map((l) => l.split(' ')[0])).toEqual(
      ['b0009', 'b0008', 'b0007', 'b0006', 'b0005', 'b0004', 'b0003', 'b0002', 'b0001', 'b0000'],
    );
  });

  it('--json prints the details of every page as one array', async () => {
    const run = await regmeta(['tags', 'acme/web', '--long', '--json', '--sort', 'pushed', '--data', data]);
    expect(run.status).toBe(0);
    const details = JSON.parse(run.stdout) as { tag: string; digest: string; size: number; pushedAt: string; pullCount: number }[];
    expect(details).toHaveLength(1201);
    expect(details[1200]).toMatchObject({ tag: 'a-latest', digest: other.digest, pullCount: 0 });
    expect(details[0]).toMatchObject({ tag: 'b0000', digest: image.digest, size: image.size + image.config.size + image.layer.size });
    const empty = await regmeta(['tags', 'acme/web', '--json', '--prefix', 'zzz', '--data', data]);
    expect(JSON.parse(empty.stdout)).toEqual([]);
  });

  it('refuses a bad --sort, --order or --pattern as a usage error, and an unknown repository as not found', async () => {
    for (const args of [['--sort', 'size'], ['--order', 'up'], ['--pattern', 'a/b'], ['--prefix', 'a b']]) {
      const run = await regmeta(['tags', 'acme/web', ...args, '--data', data]);
      expect([args, run.status]).toEqual([args, 2]);
      expect(isOneLineError(run.stderr)).toBe(true);
      expect(run.stdout).toBe('');
    }
    const unknown = await regmeta(['tags', 'acme/none', '--long', '--data', data]);
    expect(unknown.status).not.toBe(0);
    expect(unknown.stdout).toBe('');
  });
});
