// `regmeta serve` over HTTPS as a real process, with a CA the test makes:
// curl and skopeo verify it against that CA (no insecure setting), and after
// the certificate files are replaced and SIGHUP sent, new connections get
// the new certificate while an open keep-alive connection keeps working.

import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCa, makeServerCert, type ServerCert, type TestCa } from '../server/certs.js';
import { OciLayout } from '../server/oci-layout.js';
import { BIN, regmeta } from './run.js';

const work = mkdtempSync(path.join(tmpdir(), 'regmeta-serve-tls-'));
let ca: TestCa;
let first: ServerCert;
let second: ServerCert;
/** Where serve reads its pair from: the test copies first's or second's files there. */
const certFile = path.join(work, 'live', 'registry.crt');
const keyFile = path.join(work, 'live', 'registry.key');
/** A --cert-dir for skopeo: the CA as ca.crt. */
const certDir = path.join(work, 'certs.d');

beforeAll(() => {
  ca = makeCa(work);
  first = makeServerCert(ca, 'first');
  second = makeServerCert(ca, 'second');
  mkdirSync(path.dirname(certFile));
  mkdirSync(certDir);
  copyFileSync(ca.caFile, path.join(certDir, 'ca.crt'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function install(cert: ServerCert): void {
  copyFileSync(cert.certFile, certFile);
  copyFileSync(cert.keyFile, keyFile);
}

interface Served {
  child: ChildProcessWithoutNullStreams;
  url: string;
  lines: Record<string, unknown>[];
  stderr: () => string;
  exit: Promise<number | null>;
}

async function serveTls(): Promise<Served> {
  const data = mkdtempSync(path.join(work, 'data-'));
  const child = spawn(process.execPath, [BIN, 'serve', '--listen', '127.0.0.1:0', '--data', data, '--tls-cert', certFile, '--tls-key', keyFile]);
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      lines.push(entry);
      if (entry.msg === 'listening') resolve(entry.url as string);
    });
    void exit.then((code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
  });
  return { child, url, lines, stderr: () => stderr, exit };
}

async function until(what: string, condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition(); waited += 20) {
    if (waited > 10_000) throw new Error(`waited in vain for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** GET /v2/ verifying against the test CA; the status, the certificate seen, and the local port (which connection). */
function get(url: string, agent: Agent | false): Promise<{ status: number; fingerprint: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v2/`, { ca: ca.ca, agent }, (res) => {
      const socket = res.socket as TLSSocket;
      const answer = { status: res.statusCode ?? 0, fingerprint: socket.getPeerCertificate().fingerprint256, localPort: socket.localPort ?? 0 };
      res.resume();
      res.on('end', () => resolve(answer));
    });
    req.on('error', reject);
    req.end();
  });
}

function run(program: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(program, args, { timeout: 60_000, env: { ...process.env, REGISTRY_AUTH_FILE: path.join(work, 'auth.json') } }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe('regmeta serve --tls-cert --tls-key', () => {
  it('is verified by curl and skopeo against the CA, and takes a new certificate on SIGHUP without dropping a connection', async () => {
    install(first);
    const served = await serveTls();
    try {
      expect(served.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect(served.lines.find((l) => l.msg === 'listening')).toMatchObject({ tls: true });
      // The certificate it starts with is logged, before the listening line, as a reloaded one is.
      const loaded = served.lines.findIndex((l) => l.msg === 'certificate loaded');
      expect(loaded).toBeGreaterThanOrEqual(0);
      expect(loaded).toBeLessThan(served.lines.findIndex((l) => l.msg === 'listening'));
      expect(served.lines[loaded]).toMatchObject({ cert: certFile, subject: expect.stringContaining('first'), fingerprint256: first.fingerprint });
      expect(Date.parse(served.lines[loaded].validTo as string)).toBeGreaterThan(Date.now());
      const curl = await run('curl', ['--silent', '--show-error', '--cacert', ca.caFile, '-o', '/dev/null', '-w', '%{http_code}', `${served.url}/v2/`]);
      expect(curl).toMatchObject({ code: 0, stdout: '200' });

      // skopeo with verification on and only the CA to go by.
      const host = new URL(served.url).host;
      const layout = new OciLayout(path.join(work, 'layout'));
      const image = layout.addImage({ layers: 2 });
      layout.tag(image.descriptor, 'v1');
      const copy = await run('skopeo', ['copy', '--insecure-policy', '--dest-tls-verify=true', '--dest-cert-dir', certDir, `oci:${layout.dir}:v1`, `docker://${host}/tls/app:v1`]);
      expect(copy.code, copy.stderr).toBe(0);
      const inspect = await run('skopeo', ['inspect', '--raw', '--tls-verify=true', '--cert-dir', certDir, `docker://${host}/tls/app:v1`]);
      expect(inspect.code, inspect.stderr).toBe(0);
      expect(Buffer.from(inspect.stdout)).toEqual(image.bytes);
      // Without the CA skopeo refuses it: the verification is real.
      const empty = path.join(work, 'no-certs.d');
      mkdirSync(empty, { recursive: true });
      const unverified = await run('skopeo', ['inspect', '--raw', '--tls-verify=true', '--cert-dir', empty, `docker://${host}/tls/app:v1`]);
      expect(unverified.code).not.toBe(0);
      expect(unverified.stderr).toMatch(/certificate signed by unknown authority/);

      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const before = await get(served.url, agent);
        expect(before).toMatchObject({ status: 200, fingerprint: first.fingerprint });
        install(second);
        served.child.kill('SIGHUP');
        await until('the reload line', () => served.lines.some((l) => l.msg === 'certificate reloaded'));
        expect(served.lines.find((l) => l.msg === 'certificate reloaded')).toMatchObject({ cert: certFile, fingerprint256: second.fingerprint });
        // The open connection goes on, with the certificate it was made with.
        expect(await get(served.url, agent)).toEqual(before);
        expect(await get(served.url, false)).toMatchObject({ status: 200, fingerprint: second.fingerprint });
      } finally {
        agent.destroy();
      }

      // A broken pair on the next SIGHUP: one error line, the certificate it had stays.
      writeFileSync(certFile, 'not a certificate\n');
      served.child.kill('SIGHUP');
      await until('the error line', () => served.stderr().includes('SIGHUP'));
      const errors = served.stderr().trim().split('\n');
      expect(errors).toHaveLength(1);
      expect(JSON.parse(errors[0])).toMatchObject({ level: 'error', msg: expect.stringMatching(/^SIGHUP: kept the old certificate: /) });
      expect(await get(served.url, false)).toMatchObject({ status: 200, fingerprint: second.fingerprint });
    } finally {
      served.child.kill('SIGTERM');
      expect(await served.exit).toBe(0);
    }
  });

  it('does not start with a certificate and a key that are not a pair (exit 2), or one it cannot read (exit 5)', async () => {
    const data = path.join(work, 'never');
    const mismatched = await regmeta(['serve', '--listen', '127.0.0.1:0', '--data', data, '--tls-cert', first.certFile, '--tls-key', second.keyFile]);
    expect(mismatched.status).toBe(2);
    expect(mismatched.stderr).toMatch(/^regmeta serve: tls.cert and tls.key do not load as a pair: /);
    const missing = await regmeta(['serve', '--listen', '127.0.0.1:0', '--data', data, '--tls-cert', path.join(work, 'nope.crt'), '--tls-key', second.keyFile]);
    expect(missing.status).toBe(5);
    expect(missing.stderr).toMatch(/^regmeta serve: cannot read tls.cert .*nope\.crt: ENOENT/);
    expect(existsSync(data)).toBe(false);
  });
});
