// Many manifest pulls of one reference over real HTTP, for the pull
// statistics tests: the single-server ones and the replicas'.

import { OCI_MANIFEST } from '../server/helpers.js';

/** `n` manifest requests (GET or HEAD) of `repo`'s `reference` at `url`, 8 at a time, each to be answered 200. */
export async function pullMany(url: string, repo: string, reference: string, n: number, method = 'GET'): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const res = await fetch(`${url}/v2/${repo}/manifests/${reference}`, { method, headers: { Accept: OCI_MANIFEST } });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`${method} ${repo}:${reference}: ${res.status}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, n) }, worker));
}
