// The image as an operator gets it: the Containerfile built by podman on a
// base made from Debian's packages (./debian-base.ts), run with its defaults,
// pushed to and pulled from by skopeo, health-checked with its own
// HEALTHCHECK, and stopped by `podman stop` (SIGTERM) within its timeout.
// Skipped only where podman is missing; CI installs it (.ci/run). Each step
// prints what it took, for whoever reads the run.

import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, haveProgram } from '../../bench/peers.js';
import { OciLayout, readBlob, resolveTag, listBlobs } from '../server/oci-layout.js';
import { baseImages, must, run } from './debian-base.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
// crun and podman's default limits are refused on these machines; runc, cgroupfs and explicit limits are not.
const GLOBAL = ['--runtime', 'runc', '--cgroup-manager', 'cgroupfs'];
const LIMITS = ['--ulimit', 'nofile=4096:4096', '--ulimit', 'nproc=4096:4096'];
/** podman stop's grace period, after which it sends SIGKILL (exit code 137). */
const STOP_TIMEOUT = 10;

const podman = (args: string[], timeout?: number) => must('podman', [...GLOBAL, ...args], { timeout });
const seconds = (since: number) => ((Date.now() - since) / 1000).toFixed(1);
const report = (line: string) => console.log(`container: ${line}`);

const image = `localhost/regmeta-test/regmeta:run-${process.pid}`;
const container = `regmeta-test-${process.pid}`;
const work = mkdtempSync(path.join(tmpdir(), 'regmeta-container-'));
let host: string;

/** One GET: the status and body, or undefined when nothing answers. */
function get(url: string, agent: http.Agent | false = false): Promise<{ status: number; body: string } | undefined> {
  return new Promise((done) => {
    const request = http.get(url, { agent, timeout: 5000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => done({ status: response.statusCode ?? 0, body }));
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => done(undefined));
  });
}

/** Whether `url` answers 200 within `within` ms (asked every quarter second). */
async function answers(url: string, within: number): Promise<boolean> {
  const deadline = Date.now() + within;
  while (Date.now() < deadline) {
    if ((await get(url))?.status === 200) return true;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return false;
}

async function logs(): Promise<string> {
  const result = await run('podman', [...GLOBAL, 'logs', container]);
  return `${result.stdout}${result.stderr}`;
}

/**
 * Resolves at serve's "listening" line, read from `podman logs --follow`.
 * @throws with the log when the container ends first or a minute passes.
 */
function listening(): Promise<void> {
  return new Promise((resolve, reject) => {
    const follow = spawn('podman', [...GLOBAL, 'logs', '--follow', container]);
    let log = '';
    const timer = setTimeout(() => follow.kill(), 60_000);
    const read = (chunk: Buffer) => {
      log += chunk.toString();
      if (!log.includes('"msg":"listening"')) return;
      clearTimeout(timer);
      follow.kill();
      resolve();
    };
    follow.stdout.on('data', read);
    follow.stderr.on('data', read);
    follow.on('close', () => {
      clearTimeout(timer);
      reject(new Error(`serve did not start listening in the container:\n${log}`));
    });
  });
}

/**
 * Runs the image with its defaults and port 5000 published on loopback; where
 * this machine cannot publish ports, on the host's network with --listen
 * appended (which the entrypoint lets replace its own).
 * @throws when serve does not start or does not answer.
 */
async function start(): Promise<string> {
  const started = Date.now();
  const port = await freePort();
  await podman(['run', '-d', '--name', container, ...LIMITS, '-p', `127.0.0.1:${port}:5000`, image]);
  await listening();
  if (await answers(`http://127.0.0.1:${port}/healthz`, 10_000)) {
    report(`running with 127.0.0.1:${port} published to port 5000; /healthz answered ${seconds(started)} s after podman run`);
    return `127.0.0.1:${port}`;
  }
  await podman(['rm', '-f', '-v', container]);
  report(`nothing answered on the published port (podman's network backend: ${(await podman(['info', '--format', '{{.Host.NetworkBackend}}'])).trim()}); using the host's network`);
  const address = `127.0.0.1:${await freePort()}`;
  await podman(['run', '-d', '--name', container, ...LIMITS, '--network', 'host', '--env', `HEALTHCHECK_URL=http://${address}/healthz`, image, '--listen', address]);
  await listening();
  if (!(await answers(`http://${address}/healthz`, 10_000))) throw new Error(`the container did not answer on ${address}:\n${await logs()}`);
  return address;
}

beforeAll(async () => {
  if (!haveProgram('podman')) return;
  for (const program of ['skopeo', 'mmdebstrap']) {
    if (!haveProgram(program)) throw new Error(`${program} is not installed (apt-get install ${program}; .ci/run does it)`);
  }
  const base = await baseImages(podman);
  report(
    base.madeIn === undefined
      ? `base image ${base.debian}: kept from an earlier run`
      : `base image ${base.debian}: made by mmdebstrap and podman import in ${base.madeIn.toFixed(0)} s`,
  );
  report(`node in the base: ${(await podman(['run', '--rm', ...LIMITS, base.debian, 'node', '--version'])).trim()}; with this machine's CA bundle: ${base.derived}`);
  const started = Date.now();
  await podman(
    ['build', '--isolation=chroot', '--format', 'docker', '--build-arg', `BUILD_IMAGE=${base.derived}`, '--build-arg', `BASE_IMAGE=${base.derived}`, '--file', path.join(ROOT, 'Containerfile'), '--tag', image, ROOT],
    20 * 60_000,
  ).catch((error: Error) => {
    throw new Error(`podman build failed:\n${error.message}`);
  });
  const size = Number((await podman(['image', 'inspect', '--format', '{{.Size}}', image])).trim());
  report(`podman build: ${seconds(started)} s, image ${(size / 1e6).toFixed(0)} MB (${((size - Number((await podman(['image', 'inspect', '--format', '{{.Size}}', base.derived])).trim())) / 1e6).toFixed(0)} MB over the base)`);
  host = await start();
}, 40 * 60_000);

afterAll(async () => {
  if (!haveProgram('podman')) return;
  await run('podman', [...GLOBAL, 'rm', '-f', '-v', container]);
  // The image goes; the base images and the build's cached layers stay for the next run.
  await run('podman', ['rmi', '-f', image]);
  rmSync(work, { recursive: true, force: true });
}, 120_000);

describe.skipIf(!haveProgram('podman'))('the container image', () => {
  it('takes a push from skopeo and gives it back byte for byte', async () => {
    const layout = new OciLayout(path.join(work, 'pushed'));
    const built = layout.addImage({ layers: 3 });
    layout.tag(built.descriptor, 'v1');
    const copy = ['copy', '--insecure-policy', '--src-tls-verify=false', '--dest-tls-verify=false'];
    let started = Date.now();
    await must('skopeo', [...copy, '--preserve-digests', `oci:${layout.dir}:v1`, `docker://${host}/container/app:v1`]);
    const pushed = seconds(started);
    started = Date.now();
    const out = path.join(work, 'pulled');
    await must('skopeo', [...copy, `docker://${host}/container/app:v1`, `oci:${out}:v1`]);
    report(`skopeo push (manifest, config, 3 layers) ${pushed} s, pull ${seconds(started)} s`);
    const pulled = resolveTag(out, 'v1');
    expect(pulled.digest).toBe(built.descriptor.digest);
    const expected = [built.descriptor.digest, built.config.digest, ...built.layers.map((layer) => layer.digest)].sort();
    expect(listBlobs(out)).toEqual(expected);
    for (const digest of expected) expect(readBlob(out, digest)).toEqual(readBlob(layout.dir, digest));
    const tags = JSON.parse(await must('skopeo', ['list-tags', '--tls-verify=false', `docker://${host}/container/app`]));
    expect(tags.Tags).toEqual(['v1']);
  });

  it('runs serve as PID 1, as uid 10001, with metadata and blobs in the /data volume', async () => {
    const cmdline = (await podman(['exec', container, 'cat', '/proc/1/cmdline'])).split('\0').filter(Boolean);
    expect(cmdline[0]).toMatch(/node$/);
    expect(cmdline.slice(2, 7)).toEqual(['serve', '--listen', '0.0.0.0:5000', '--data', '/data']);
    expect((await podman(['exec', container, 'id', '-u'])).trim()).toBe('10001');
    expect((await podman(['exec', container, 'ls', '/data'])).split('\n')).toEqual(expect.arrayContaining(['blobs', 'metadata.db']));
    const mounts = JSON.parse(await podman(['inspect', '--format', '{{json .Mounts}}', container])) as { Destination: string }[];
    expect(mounts.map((mount) => mount.Destination)).toContain('/data');
  });

  it('has a HEALTHCHECK that asks /healthz and reports healthy', async () => {
    const check = JSON.parse(await podman(['inspect', '--format', '{{json .Config.Healthcheck}}', container])) as { Test: string[] };
    expect(check.Test.join(' ')).toContain('/healthz');
    const started = Date.now();
    // podman healthcheck run runs the image's command in the container; exit 0 is healthy.
    const result = await run('podman', [...GLOBAL, 'healthcheck', 'run', container]);
    expect(result.code, result.stderr).toBe(0);
    report(`podman healthcheck run: healthy in ${seconds(started)} s`);
  });

  it('stops on podman stop (SIGTERM) before the timeout, exit code 0, with a keep-alive connection open', async () => {
    // An idle keep-alive connection must not hold the shutdown until SIGKILL.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect((await get(`http://${host}/v2/`, agent))?.status).toBe(200);
      const started = Date.now();
      await podman(['stop', '--time', String(STOP_TIMEOUT), container], 60_000);
      const took = (Date.now() - started) / 1000;
      const state = JSON.parse(await podman(['inspect', '--format', '{{json .State}}', container])) as { ExitCode: number; Running: boolean };
      report(`podman stop --time ${STOP_TIMEOUT}: stopped in ${took.toFixed(1)} s, exit code ${state.ExitCode}`);
      expect(state.Running).toBe(false);
      expect(state.ExitCode).toBe(0); // 137 would be SIGKILL at the timeout
      expect(took).toBeLessThan(STOP_TIMEOUT);
      const lines = (await logs()).split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { msg: string; signal?: string });
      expect(lines.slice(-2)).toEqual([expect.objectContaining({ msg: 'shutting down', signal: 'SIGTERM' }), expect.objectContaining({ msg: 'stopped' })]);
    } finally {
      agent.destroy();
    }
  });
});
