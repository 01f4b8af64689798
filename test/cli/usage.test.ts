// `regmeta usage` through the real command: the total, each namespace with
// its repositories and quota (from REGMETA_QUOTAS or the config file), one
// namespace's repositories, as text and as JSON.

import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openStore } from 'regmeta';
import { blobDesc } from '../store/fixtures.js';
import { configFile } from './config-files.js';
import { isOneLineError, regmeta, tempDir } from './run.js';

let data: string;
beforeAll(() => {
  data = join(tempDir(), 'data');
  const store = openStore(join(data, 'metadata.db'));
  const [a, b, c] = [blobDesc('a', undefined, 1024), blobDesc('b', undefined, 3 * 1024), blobDesc('c', undefined, 1024 ** 2)];
  store.linkBlob('acme/app', a);
  store.linkBlob('acme/app', b);
  store.linkBlob('acme/web', a);
  store.linkBlob('beta', c);
  store.close();
});

describe('regmeta usage', () => {
  it('prints the total and each namespace, with its quota from the environment', async () => {
    const run = await regmeta(['usage', '--data', data], { env: { REGMETA_QUOTAS: 'acme=8KiB,gamma=1GiB' } });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(
      [
        'total  1.0 MiB in 3 blobs',
        '',
        'namespace  repositories  size     quota',
        'acme       2             4.0 KiB  8.0 KiB (50%)',
        'beta       1             1.0 MiB  -',
        'gamma      0             0 B      1.0 GiB (0%)',
        '',
      ].join('\n'),
    );
  });

  it("prints one namespace's repositories, and the same as JSON, quotas from the config file", async () => {
    const config = configFile('regmeta.yaml', `data: ${data}\nquotas:\n  - { namespace: acme, maxSize: 1MiB }\n`);
    const [text, json] = await Promise.all([
      regmeta(['usage', '--namespace', 'acme', '--config', config]),
      regmeta(['usage', '--namespace', 'acme', '--config', config, '--json']),
    ]);
    expect(text.stdout).toContain('acme/app    4.0 KiB\nacme/web    1.0 KiB\n');
    expect(JSON.parse(json.stdout)).toEqual({
      total: { blobs: 3, bytes: 1024 + 3 * 1024 + 1024 ** 2 },
      namespaces: [{ namespace: 'acme', bytes: 4 * 1024, repositories: 2, quota: 1024 ** 2 }],
      repositories: [
        { repository: 'acme/app', bytes: 4 * 1024 },
        { repository: 'acme/web', bytes: 1024 },
      ],
    });
  });

  it('refuses a namespace that is not one, and a bad quota, in one line', async () => {
    const [name, quota] = await Promise.all([
      regmeta(['usage', '--namespace', 'acme/app', '--data', data]),
      regmeta(['usage', '--data', data], { env: { REGMETA_QUOTAS: 'acme=lots' } }),
    ]);
    expect(name.status).not.toBe(0);
    expect(isOneLineError(name.stderr)).toBe(true);
    expect(quota.status).toBe(2);
    expect(isOneLineError(quota.stderr)).toBe(true);
    expect(quota.stderr).toContain('REGMETA_QUOTAS');
  });
});
