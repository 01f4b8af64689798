// Port of the current OCI distribution-spec conformance suite's data tests
// (opencontainers/distribution-spec main, conformance/ after its rewrite into a
// Go program: run.go, config.go and api.go): ping, the
// empty repository, every data set pushed, listed, HEAD, pulled, its referrers
// listed and deleted, and the manifest error cases, under the suite's "1.1"
// defaults and its "1.1+dev" settings (Docker-Content-Digest required, and the
// tag-parameter sets pushed by digest with `?tag=`). conformance-blobs.test.ts ports
// the blob API tests; conformance-v111.test.ts the v1.1.1 release's workflows.
// All of it runs twice: blobs in a directory, and in S3 (the test S3 server).
// The Go suite itself is not run here: this network reaches npm and Debian
// packages only, so neither its Go modules nor a Go toolchain can be fetched,
// here or in CI.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf, MT, OciClient } from './conformance-client.js';
import { dataSets } from './conformance-data-sets.js';
import { TestData } from './conformance-data.js';
import { DataFlows } from './conformance-flows.js';
import { blobStorages, startRegistry, type TestRegistry } from './helpers.js';

const { storages: STORAGES, cleanup } = blobStorages('conformance');
afterAll(cleanup);

const VERSIONS = [
  { version: '1.1', repo: 'conformance/repo1', requireDigestHeader: false, tagParam: false },
  { version: '1.1+dev', repo: 'conformance/dev/repo1', requireDigestHeader: true, tagParam: true },
];

describe.each(STORAGES)('blobs in $name', ({ options }) => {
  let r: TestRegistry;
  let client: OciClient;
  beforeAll(async () => {
    r = await startRegistry(await options());
    client = new OciClient(r.url);
  });
  afterAll(async () => {
    await r.close();
  });

  describe.each(VERSIONS)('OCI Conformance Test (OCI_VERSION=$version)', ({ repo, requireDigestHeader, tagParam }) => {
    let flows: DataFlows;
    beforeAll(() => {
      flows = new DataFlows(client, repo, { requireDigestHeader });
    });

    it('ping', async () => {
      expect((await client.send('GET', '/v2/')).status).toBe(200);
    });

    describe('empty', () => {
      it('tag list', async () => {
        expect([200, 404]).toContain((await client.send('GET', `/v2/${repo}/tags/list`)).status);
      });
      it('referrers', async () => {
        expect((await flows.referrersList(digestOf(`${Math.random()}`))).manifests).toEqual([]);
      });
    });

    for (const td of dataSets(tagParam)) {
      describe(td.name, () => {
        it('push', () => flows.push(td));
        it('tag-list', () => flows.list(td));
        it('head', () => flows.pull(td, 'HEAD'));
        it('pull', () => flows.pull(td, 'GET'));
        if (td.referrers.size > 0) it('referrers', async () => expect(await flows.referrers(td)).toBe('pass'));
        it('delete', () => flows.delete(td));
      });
    }

    describe('missing-manifest', () => {
      const missing = (reference: string) => client.send('GET', `/v2/${repo}/manifests/${reference}`, { headers: { Accept: `${MT.index}, ${MT.image}` } });
      it('by-digest', async () => {
        expect((await missing(digestOf(`${Math.random()}`))).status).toBe(404);
      });
      it('by-tag', async () => {
        expect((await missing(`missing-${Math.random().toString(36).slice(2, 22)}`)).status).toBe(404);
      });
    });

    describe('invalid-digest-format', () => {
      const td = new TestData('Invalid Manifest Digest');
      const manifest = td.genManifestFull({ layerCount: 1 });
      it('manifest-put', async () => {
        for (const [digest, bytes] of td.blobs) await flows.pushBlob(digest, bytes);
        await flows.putManifest('sha256:baddigeststring', td.manifests.get(manifest)!, true);
      });
      it('manifest-get', async () => {
        const get = await client.send('GET', `/v2/${repo}/manifests/sha256:baddigeststring`, { headers: { Accept: `${MT.index}, ${MT.image}` } });
        expect([404, 400]).toContain(get.status);
      });
      it('delete', () => flows.delete(td));
    });
  });

  describe('the registry under the current suite', () => {
    it('answered no request with a server fault', () => {
      expect(r.errors).toEqual([]);
      expect(r.logs.filter((entry) => entry.status >= 500)).toEqual([]);
    });
  });
});
