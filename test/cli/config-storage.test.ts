// Where the blobs are kept: --storage (REGMETA_STORAGE, storage.s3 in the
// config file, as an s3:// URL or a mapping) and --storage-redirect
// (storage.redirect), for serve and for every command that opens the
// registry; every problem of a bad value named, none echoing a credential.

import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseServeArgs } from '../../src/cli/commands/serve.js';
import { location } from '../../src/cli/config/location.js';
import { configFile, problems } from './config-files.js';
import { isOneLineError, regmeta } from './run.js';



const URL_TEXT = 's3://registry-blobs/team/a?endpoint=http://127.0.0.1:9000&region=us-east-1&forcePathStyle=true';
const OPTIONS = { bucket: 'registry-blobs', prefix: 'team/a', endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', forcePathStyle: true };

describe('--storage', () => {
  it('defaults to the data directory, with no redirect', () => {
    const { config, sources } = parseServeArgs([], {})!;
    expect(config.storage).toEqual({ redirect: false });
    expect(sources['storage.s3']).toBe('default');
  });

  it('reads an s3:// URL from the flag, the environment and the file, in that precedence', () => {
    expect(parseServeArgs(['--storage', URL_TEXT, '--storage-redirect'], {})!.config.storage).toEqual({ s3: OPTIONS, redirect: true });
    expect(parseServeArgs([], { REGMETA_STORAGE: 's3://b', REGMETA_STORAGE_REDIRECT: 'true' })!.config.storage).toEqual({ s3: { bucket: 'b', prefix: '' }, redirect: true });
    const file = configFile('regmeta.yaml', `storage:\n  s3: "${URL_TEXT}"\n  redirect: true\n`);
    const loaded = parseServeArgs(['--config', file], { REGMETA_STORAGE: 's3://from-env/x' })!;
    expect(loaded.config.storage).toEqual({ s3: { bucket: 'from-env', prefix: 'x' }, redirect: true });
    expect(loaded.sources).toMatchObject({ 'storage.s3': 'environment', 'storage.redirect': 'file' });
    expect(parseServeArgs(['--config', file, '--no-storage-redirect'], {})!.config.storage).toEqual({ s3: OPTIONS, redirect: false });
  });

  it('takes the mapping form in the file, and leading and trailing slashes off the prefix', () => {
    const file = configFile('regmeta.json', JSON.stringify({ storage: { s3: { ...OPTIONS, prefix: '/team/a/' } } }));
    expect(parseServeArgs(['--config', file], {})!.config.storage.s3).toEqual(OPTIONS);
    expect(parseServeArgs(['--storage', 's3://b/'], {})!.config.storage.s3).toEqual({ bucket: 'b', prefix: '' });
  });

  it('refuses a bad value with every problem named, and no credential echoed', () => {
    const lines = problems(() =>
      parseServeArgs(['--storage', 's3://AKIAKEY:SECRETKEY@/a//b?endpoint=ftp://alice:hunter2@h/x%3Fq&foo=1&X-Amz-Credential=AKIAKEY&forcePathStyle=yes'], {}),
    );
    expect(lines).toHaveLength(1);
    const [line] = lines;
    for (const part of [
      '--storage: the URL carries a user or password',
      'unknown parameter "foo" (known: endpoint, region, forcePathStyle)',
      'unknown parameter "X-Amz-Credential"',
      'the bucket is empty',
      'the prefix has an empty, "." or ".." part',
      'the endpoint is not an http or https URL',
      'the endpoint carries a user or password',
      'forcePathStyle is not true or false',
    ]) expect(line).toContain(part);
    for (const secret of ['AKIAKEY', 'SECRETKEY', 'hunter2', 'alice']) expect(line).not.toContain(secret);
  });

  it('lists the problems of every source, one line each', () => {
    const file = configFile('regmeta.yaml', 'storage:\n  s3: { bucket: b, secretAccessKey: s3cr3t, endpoint: "not a url" }\n  redirect: maybe\n');
    const lines = problems(() => parseServeArgs(['--config', file, '--storage', 'https://bucket.s3.amazonaws.com'], { REGMETA_STORAGE: 's3://b:9000' }));
    expect(lines).toEqual([
      '--storage: expected an s3://BUCKET/PREFIX URL (parameters: endpoint, region, forcePathStyle), got "https://bucket.s3.amazonaws.com"',
      'REGMETA_STORAGE: a port after the bucket: name the service by ?endpoint=URL',
      expect.stringMatching(/^config \S+regmeta\.yaml: storage\.s3: unknown key "secretAccessKey" \(known: bucket, prefix, endpoint, region, forcePathStyle\); credentials come from the AWS chain .*; the endpoint is not a URL/),
      expect.stringMatching(/^config \S+regmeta\.yaml: storage\.redirect: expected true or false, got "maybe"$/),
    ]);
    expect(lines.join('\n')).not.toContain('s3cr3t');
  });

  it('is printed by --print-config as a URL that reads back the same', async () => {
    const printed = await regmeta(['serve', '--storage', URL_TEXT, '--storage-redirect', '--print-config']);
    expect([printed.status, printed.stderr]).toEqual([0, '']);
    expect(printed.stdout).toContain(`storage:\n  s3: ${URL_TEXT} # from --storage\n  redirect: true # from --storage-redirect\n`);
    const again = configFile('printed.yaml', printed.stdout);
    expect(parseServeArgs(['--config', again], {})!.config.storage).toEqual({ s3: OPTIONS, redirect: true });
  });

  it('is a usage error of the real command, in one line per problem', async () => {
    const run = await regmeta(['serve', '--storage', 's3://', '--print-config']);
    expect([run.status, isOneLineError(run.stderr)]).toEqual([2, true]);
    expect(run.stderr).toContain('--storage: the bucket is empty');
  });
});

describe('a command that opens the registry', () => {
  it('finds the bucket as serve does: flag, environment, file', () => {
    const file = configFile('regmeta.yaml', 'data: registry\nstorage: { s3: { bucket: from-file, prefix: p } }\n');
    expect(location({ config: file }, 'gc', {}, {})).toEqual({ data: path.join(path.dirname(file), 'registry'), storage: { bucket: 'from-file', prefix: 'p' } });
    expect(location({ config: file }, 'gc', {}, { REGMETA_STORAGE: 's3://from-env' }).storage).toEqual({ bucket: 'from-env', prefix: '' });
    expect(location({ config: file, storage: 's3://from-flag/q' }, 'check', {}, {}).storage).toEqual({ bucket: 'from-flag', prefix: 'q' });
    expect(location({}, 'check', {}, {}).storage).toBeUndefined();
    expect(problems(() => location({ storage: 's3://' }, 'check', {}, {}))).toEqual(['--storage: the bucket is empty']);
  });
});
