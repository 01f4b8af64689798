// The shared state of the v1.1.1 workflow ports: one client, the repository
// the suite calls OCI_NAMESPACE and the one it calls OCI_CROSSMOUNT_NAMESPACE,
// and the request shapes every workflow repeats.

import { expect } from 'vitest';
import { MT, OciClient, type Reply, type RequestOptions } from './conformance-client.js';
import type { Blob } from './conformance-v111-data.js';

const is2xx = (status: number) => status >= 200 && status < 300;

export class Harness {
  /** Set once the registry listens (beforeAll). */
  client!: OciClient;

  constructor(
    readonly name: string,
    readonly crossmount: string,
  ) {}

  send = (method: string, path: string, options?: RequestOptions): Promise<Reply> => this.client.send(method, path, options);

  expect2xx = (reply: Reply): void => {
    expect(is2xx(reply.status), `status ${reply.status}: ${reply.body}`).toBe(true);
  };

  /** A 2xx, or one of `statuses`: the suite's SatisfyAny of a 2xx range and some codes. */
  expectOneOf = (reply: Reply, statuses: number[]): void => {
    if (!is2xx(reply.status)) expect(statuses, `status ${reply.status}: ${reply.body}`).toContain(reply.status);
  };

  /** The suite's populate step: POST for a session, PUT the blob to its Location with ?digest=. */
  populate = async (b: Blob): Promise<void> => {
    const post = await this.send('POST', `/v2/${this.name}/blobs/uploads/`);
    const put = await this.send('PUT', this.client.location(post), { query: { digest: b.digest }, headers: { 'Content-Type': MT.octet }, body: b.content });
    this.expect2xx(put);
  };

  putManifest = (reference: string, b: Blob | string, type: string = MT.image): Promise<Reply> =>
    this.send('PUT', `/v2/${this.name}/manifests/${reference}`, { headers: { 'Content-Type': type }, body: typeof b === 'string' ? b : b.content });

  getManifest = (method: string, reference: string): Promise<Reply> =>
    this.send(method, `/v2/${this.name}/manifests/${reference}`, { headers: { Accept: MT.image } });

  del = (kind: 'manifests' | 'blobs', reference: string): Promise<Reply> => this.send('DELETE', `/v2/${this.name}/${kind}/${reference}`);

  tagList = async (query: Record<string, string> = {}): Promise<{ reply: Reply; tags: string[] }> => {
    const reply = await this.send('GET', `/v2/${this.name}/tags/list`, { query });
    return { reply, tags: (JSON.parse(reply.body.toString()) as { tags: string[] }).tags };
  };
}
