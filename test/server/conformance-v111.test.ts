// Port of the OCI distribution-spec conformance suite's v1.1.1 workflows
// (opencontainers/distribution-spec, conformance/ 01_pull_test.go,
// 02_push_test.go, 03_discovery_test.go, setup.go and 04_management_test.go:
// the last versions of those files before the suite was rewritten). Every case keeps the suite's name and expectations and runs in the
// suite's order against one repository, as the suite does with OCI_NAMESPACE.
// Settings: OCI_CROSSMOUNT_NAMESPACE set, OCI_AUTOMATIC_CROSSMOUNT=0 (regmeta
// mounts only from a named repository), OCI_DELETE_MANIFEST_BEFORE_BLOBS=1 (the
// default; regmeta refuses, 409 BLOB_REFERENCED, to unlink a blob a manifest of
// the repository still references, so the =0 order cannot pass by design).
// The Go suite itself is not run here: this network reaches npm and Debian
// packages only, so neither its Go modules nor a Go toolchain can be fetched,
// here or in CI. conformance-blobs.test.ts and conformance-data.test.ts port
// the current (rewritten) suite. The workflows live in conformance-v111-*.ts.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciClient } from './conformance-client.js';
import { discoveryWorkflow, managementWorkflow } from './conformance-v111-discovery.js';
import { Harness } from './conformance-v111-harness.js';
import { pullWorkflow, pushWorkflow } from './conformance-v111-pull-push.js';
import { startRegistry, type TestRegistry } from './helpers.js';

let r: TestRegistry;
const h = new Harness('conformance/v111', 'conformance/v111-crossmount');
beforeAll(async () => {
  r = await startRegistry();
  h.client = new OciClient(r.url);
});
afterAll(async () => {
  await r.close();
});

pullWorkflow(h);
pushWorkflow(h);
discoveryWorkflow(h);
managementWorkflow(h);

describe('the registry under the v1.1.1 workflows', () => {
  it('answered no request with a server fault', () => {
    expect(r.errors).toEqual([]);
    expect(r.logs.filter((entry) => entry.status >= 500)).toEqual([]);
  });
});
