// What the current conformance suite does with each data set (run.go's
// TestPush, TestList, TestHead, TestPull, TestReferrers, TestDelete and the
// manifest checks of api.go), asserting what it asserts.

import { expect } from 'vitest';
import { blobPatchChunked, MT, type OciClient, type Outcome, type Reply } from './conformance-client.js';
import type { Descriptor, TestData } from './conformance-data.js';

const ACCEPT = { Accept: `${MT.index}, ${MT.image}` };

/** The suite's detectMediaType: the payload's mediaType field, else an OCI image manifest. */
export function mediaTypeOf(body: Buffer): string {
  const { mediaType } = JSON.parse(body.toString()) as { mediaType?: string };
  return mediaType ?? MT.image;
}

function subjectOf(body: Buffer): string | undefined {
  return (JSON.parse(body.toString()) as { subject?: { digest: string } }).subject?.digest;
}

/** Where the registry must also send the Docker-Content-Digest header (the 1.1+dev configuration). */
export interface FlowSettings {
  requireDigestHeader: boolean;
}

export class DataFlows {
  /** Which push API the next blob takes: each of the four in turn, as TestPushBlobAny tries untested APIs first. */
  private nextApi = 0;

  constructor(
    readonly client: OciClient,
    readonly repo: string,
    readonly settings: FlowSettings = { requireDigestHeader: false },
  ) {}

  private digestHeader(reply: Reply, digest: string): void {
    if (this.settings.requireDigestHeader) expect(reply.headers.get('docker-content-digest')).toBe(digest);
    this.client.verifyDigest(reply, digest);
  }

  /** Pushes one blob by one of the four upload APIs. */
  async pushBlob(digest: string, bytes: Buffer): Promise<void> {
    const api = this.nextApi++ % 4;
    if (api === 0) await this.client.blobPostPut(this.repo, digest, bytes);
    else if (api === 1) await this.client.blobPostOnly(this.repo, digest, bytes);
    else if (api === 2) await this.client.blobPatchStream(this.repo, digest, bytes);
    else await blobPatchChunked(this.client, this.repo, digest, bytes);
  }

  /** The suite's ManifestPut: 201 with a Location that serves the same bytes, OCI-Subject for a referrer (or 400 when the digest is bad). */
  async putManifest(reference: string, body: Buffer, bad = false, tags: string[] = []): Promise<void> {
    const mediaType = mediaTypeOf(body);
    const put = await this.client.send('PUT', `/v2/${this.repo}/manifests/${reference}`, {
      headers: { 'Content-Type': mediaType },
      body,
      query: tags.length > 0 ? { tag: tags } : {},
    });
    expect(put.status, put.body.toString()).toBe(bad ? 400 : 201);
    if (bad) return;
    // With tag parameters, OCI-Tag names each tag set (one header, or several, comma-separated).
    const applied = (put.headers.get('oci-tag') ?? '').split(',').map((t) => t.trim());
    for (const tag of tags) expect(applied).toContain(tag);
    const subject = subjectOf(body);
    if (subject !== undefined) expect(put.headers.get('oci-subject')).toBe(subject);
    const location = this.client.location(put);
    const get = await this.client.send('GET', location, { headers: ACCEPT });
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toBe(mediaType);
    expect(get.headers.get('content-length')).toBe(String(body.length));
    expect(get.body.equals(body)).toBe(true);
  }

  async push(td: TestData): Promise<void> {
    for (const [digest, bytes] of td.blobs) await this.pushBlob(digest, bytes);
    const tagsOf = (digest: string) => (td.tagParam ? [...td.tags].filter(([, d]) => d === digest).map(([tag]) => tag) : []);
    for (const digest of td.manOrder) await this.putManifest(digest, td.manifests.get(digest)!, td.badDigest.has(digest), tagsOf(digest));
    if (td.tagParam) return;
    for (const [tag, digest] of td.tags) await this.putManifest(tag, td.manifests.get(digest)!);
  }

  /** Every tag listed; with `last` set to the middle of the sorted list, only the later half. */
  async list(td: TestData): Promise<void> {
    const tags = async (query: Record<string, string> = {}) => {
      const reply = await this.client.send('GET', `/v2/${this.repo}/tags/list`, { query });
      expect([200, 404]).toContain(reply.status);
      return reply.status === 200 ? (JSON.parse(reply.body.toString()) as { tags: string[] }).tags : [];
    };
    const all = await tags();
    for (const tag of td.tags.keys()) expect(all).toContain(tag);
    if (all.length < 2) return;
    const sorted = [...all].sort();
    const end = Math.floor(sorted.length / 2);
    const after = await tags({ last: sorted[end - 1] });
    for (const tag of sorted.slice(0, end)) expect(after).not.toContain(tag);
    for (const tag of sorted.slice(end)) expect(after).toContain(tag);
  }

  /** A manifest by tag or digest: 200 with its type and length, the body on GET and none on HEAD. */
  async manifestExists(method: 'GET' | 'HEAD', reference: string, digest: string, body: Buffer): Promise<void> {
    const reply = await this.client.send(method, `/v2/${this.repo}/manifests/${reference}`, { headers: ACCEPT });
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toBe(mediaTypeOf(body));
    expect(reply.headers.get('content-length')).toBe(String(body.length));
    expect(reply.body.equals(method === 'GET' ? body : Buffer.alloc(0))).toBe(true);
    this.digestHeader(reply, digest);
  }

  /** TestHead (HEAD) or TestPull (GET): every tag, manifest and blob of the set, but a manifest the registry refused. */
  async pull(td: TestData, method: 'GET' | 'HEAD'): Promise<void> {
    const skip = (digest: string) => td.badDigest.has(digest);
    for (const [tag, digest] of td.tags) if (!skip(digest)) await this.manifestExists(method, tag, digest, td.manifests.get(digest)!);
    for (const digest of td.manOrder) if (!skip(digest)) await this.manifestExists(method, digest, digest, td.manifests.get(digest)!);
    for (const [digest, bytes] of td.blobs) {
      const reply = await this.client.send(method, `/v2/${this.repo}/blobs/${digest}`);
      expect(reply.status).toBe(200);
      expect(reply.headers.get('content-length')).toBe(String(bytes.length));
      expect(reply.body.equals(method === 'GET' ? bytes : Buffer.alloc(0))).toBe(true);
      this.digestHeader(reply, digest);
    }
  }

  async referrersList(subject: string, query: Record<string, string> = {}): Promise<{ reply: Reply; manifests: Descriptor[] }> {
    const reply = await this.client.send('GET', `/v2/${this.repo}/referrers/${subject}`, { query });
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toBe(MT.index);
    const index = JSON.parse(reply.body.toString()) as { mediaType: string; schemaVersion: number; manifests: Descriptor[] };
    expect(index.mediaType).toBe(MT.index);
    expect(index.schemaVersion).toBe(2);
    return { reply, manifests: index.manifests };
  }

  /** Every expected referrer listed, and each artifactType filter applied (or the suite marks filtering unsupported). */
  async referrers(td: TestData): Promise<Outcome> {
    let outcome: Outcome = 'pass';
    const listed = (manifests: Descriptor[], goal: Descriptor) =>
      manifests.some(
        (m) =>
          m.digest === goal.digest &&
          m.mediaType === goal.mediaType &&
          m.size === goal.size &&
          m.artifactType === goal.artifactType &&
          Object.entries(goal.annotations ?? {}).every(([k, v]) => m.annotations?.[k] === v),
      );
    for (const [subject, goals] of td.referrers) {
      const all = await this.referrersList(subject);
      for (const goal of goals) expect(listed(all.manifests, goal), `referrer ${goal.digest} of ${subject}`).toBe(true);
      for (const artifactType of new Set(goals.map((g) => g.artifactType!))) {
        const { reply, manifests } = await this.referrersList(subject, { artifactType });
        const applied = (reply.headers.get('oci-filters-applied') ?? '').split(',').some((f) => f.trim() === 'artifactType');
        if (!applied) outcome = 'unsupported';
        for (const goal of goals) if (!applied || goal.artifactType === artifactType) expect(listed(manifests, goal)).toBe(true);
        if (applied) for (const m of manifests) expect(m.artifactType).toBe(artifactType);
      }
    }
    return outcome;
  }

  /** Tags, then manifests in reverse push order, then blobs; each gone at once (HEAD 404). */
  async delete(td: TestData): Promise<void> {
    for (const tag of td.tags.keys()) {
      const del = await this.client.send('DELETE', `/v2/${this.repo}/manifests/${tag}`);
      expect([202, 404]).toContain(del.status);
      expect((await this.client.send('HEAD', `/v2/${this.repo}/manifests/${tag}`, { headers: ACCEPT })).status).toBe(404);
    }
    for (const digest of [...td.manOrder].reverse()) {
      const del = await this.client.send('DELETE', `/v2/${this.repo}/manifests/${digest}`);
      expect([202, 404]).toContain(del.status);
      expect((await this.client.send('HEAD', `/v2/${this.repo}/manifests/${digest}`, { headers: ACCEPT })).status).toBe(404);
    }
    for (const digest of td.blobs.keys()) await this.client.deleteBlob(this.repo, digest);
  }
}
