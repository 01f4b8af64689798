// Certificates the tests make for themselves with the openssl binary: a CA,
// and server certificates it signs for 127.0.0.1 and localhost, so that
// clients (node, curl, skopeo) verify the registry as they would any other.

import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** A CA's files in a directory. */
export interface TestCa {
  dir: string;
  /** The CA certificate, PEM: what clients are told to trust. */
  caFile: string;
  ca: Buffer;
}

/** A server certificate and its key, signed by a TestCa. */
export interface ServerCert {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
  /** SHA-256 fingerprint, as node:tls reports a peer's (fingerprint256). */
  fingerprint: string;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A new CA in `dir` (ca.pem, ca.key).
 * @throws when openssl is missing or fails.
 */
export function makeCa(dir: string): TestCa {
  openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=regmeta test CA');
  const caFile = path.join(dir, 'ca.pem');
  return { dir, caFile, ca: readFileSync(caFile) };
}

/**
 * A server certificate for 127.0.0.1 and localhost signed by `ca`, written
 * as `<name>.pem` and `<name>.key` in the CA's directory.
 * @throws when openssl fails.
 */
export function makeServerCert(ca: TestCa, name: string): ServerCert {
  const ext = path.join(ca.dir, `${name}.ext`);
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  openssl(ca.dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  openssl(ca.dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', ext, '-out', `${name}.pem`);
  const certFile = path.join(ca.dir, `${name}.pem`);
  const keyFile = path.join(ca.dir, `${name}.key`);
  const cert = readFileSync(certFile);
  return { certFile, keyFile, cert, key: readFileSync(keyFile), fingerprint: new X509Certificate(cert).fingerprint256 };
}
