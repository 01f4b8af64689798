// What the mirror tests share: a real upstream (Debian's docker-registry)
// holding images pushed by real skopeo, and skopeo and curl run as the
// tests' clients, with nothing of $HOME's (credentials, registries.conf).

import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDistribution, type Peer } from '../../bench/peers.js';
import { OciLayout, type BuiltImage, type BuiltIndex } from '../server/oci-layout.js';

/** A program's exit code and output. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `program` with `env` added; never throws for a non-zero exit. */
export function run(program: string, args: string[], env: Record<string, string> = {}, timeout = 120_000): Promise<Ran> {
  return new Promise((done) => {
    execFile(program, args, { env: { ...process.env, ...env }, maxBuffer: 64 << 20, timeout }, (error, stdout, stderr) =>
      done({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** Runs `program` and throws its stderr (and `context()`, the servers' logs) when it fails. */
export async function must(program: string, args: string[], env: Record<string, string> = {}, context: () => string = () => ''): Promise<string> {
  const ran = await run(program, args, env);
  if (ran.code !== 0) throw new Error(`${program} ${args.join(' ')} exited ${ran.code}:\n${ran.stderr}\n${context()}`);
  return ran.stdout;
}

/** An upstream registry with images in it, as the mirror tests pull them. */
export interface Upstream {
  peer: Peer;
  /** The source layout: the bytes every pull through the mirror must give back. */
  layout: OciLayout;
  /** `library/app:1`: one image. */
  app: BuiltImage;
  /** `library/multi:latest`: an index of two platforms' images. */
  multi: BuiltIndex;
}

/** Starts docker-registry and pushes library/app:1 and library/multi:latest into it with skopeo. */
export async function startUpstream(dir: string, auth: string): Promise<Upstream> {
  const peer = await startDistribution({ parentDir: dir });
  const layout = new OciLayout(join(dir, `source-${peer.host.replace(/\W/g, '-')}`));
  const app = layout.addImage({ layers: 2, layerSize: 64 * 1024 });
  const multi = layout.addIndex([{ architecture: 'amd64', os: 'linux' }, { architecture: 'arm64', os: 'linux' }], { layerSize: 4096 });
  layout.tag(app.descriptor, 'app');
  layout.tag(multi.descriptor, 'multi');
  const copy = ['copy', '--insecure-policy', '--dest-tls-verify=false', '--preserve-digests', '--quiet'];
  const env = { REGISTRY_AUTH_FILE: auth };
  await must('skopeo', [...copy, `oci:${layout.dir}:app`, `docker://${peer.host}/library/app:1`], env, peer.output);
  await must('skopeo', [...copy, '--all', `oci:${layout.dir}:multi`, `docker://${peer.host}/library/multi:latest`], env, peer.output);
  return { peer, layout, app, multi };
}

/** An empty auth file for skopeo and podman: nothing from $HOME. */
export function emptyAuth(dir: string): string {
  const file = join(dir, 'auth.json');
  writeFileSync(file, '{}');
  return file;
}
