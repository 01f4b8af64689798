// What the worker processes of test/store/processes.test.ts and the test
// itself share: deterministic manifests, a seeded random source, the line
// protocol on stdin/stdout, and the replay of an event log.

import { createHash } from 'node:crypto';
import { writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Event, Manifest, MetadataStore } from '../../../../src/index.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

export interface TestManifest {
  digest: string;
  manifest: Manifest;
}

/** A valid OCI image manifest whose bytes (and so digest) are a function of `label`. */
export function makeManifest(label: string): TestManifest {
  const hex = (s: string) => createHash('sha256').update(s).digest('hex');
  const payload = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${hex(`config ${label}`)}`, size: 2 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${hex(`layer ${label}`)}`, size: 32 }],
      annotations: { label },
    }),
  );
  return { digest: `sha256:${createHash('sha256').update(payload).digest('hex')}`, manifest: { mediaType: OCI_MANIFEST, payload } };
}

/** mulberry32: a small seeded generator, so a failing run can be replayed from its seed. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Writes one JSON line to stdout synchronously: once this returns the line is
 * in the pipe, so a SIGKILL right after cannot take an acknowledgement back.
 */
export function send(message: unknown): void {
  const line = Buffer.from(`${JSON.stringify(message)}\n`);
  for (let done = 0; done < line.length; ) {
    try {
      done += writeSync(1, line, done);
    } catch (error) {
      // A non-blocking pipe that is full: the parent will drain it.
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
    }
  }
}

/** The lines the parent writes to this worker's stdin, one at a time. */
export function stdinLines(): AsyncIterator<string> {
  return createInterface({ input: process.stdin })[Symbol.asyncIterator]();
}

/** The worker's single argument: a JSON object. */
export function workerArgs<T>(): T {
  return JSON.parse(process.argv[2] ?? '{}') as T;
}

/** An error as plain data, for the parent to assert on. */
export function describeError(error: unknown): { name: string; code?: string; message: string } {
  const e = error as { name?: unknown; code?: unknown; message?: unknown };
  return {
    name: String(e?.name ?? typeof error),
    code: typeof e?.code === 'string' ? e.code : undefined,
    message: String(e?.message ?? error),
  };
}

/** Every event of the store, oldest first, read through getEvents as an admin, page by page. */
export function allEventsOldestFirst(store: MetadataStore): Event[] {
  const events: Event[] = [];
  let page: string | undefined;
  do {
    const result = store.getEvents({ perPage: 1000, page });
    events.push(...result.events);
    page = result.next;
  } while (page !== undefined);
  return events.reverse();
}

/**
 * Replays the TAG and MANIFEST events of `repo`: the tags they leave, and every
 * place where the log contradicts itself (an UPDATE whose previousDigest is not
 * the current target, a DELETE of a tag that is not there, a tag on a manifest
 * that is not there, a manifest deleted while still tagged...).
 */
export function replayTags(events: Event[], repo: string): { tags: Map<string, string>; problems: string[] } {
  const tags = new Map<string, string>();
  const manifests = new Set<string>();
  const problems: string[] = [];
  events.forEach((event, index) => {
    if (event.repository !== repo) return;
    const where = `event ${index} (${event.type} ${event.object.type} ${event.object.id})`;
    if (event.object.type === 'MANIFEST') {
      const digest = event.digest ?? '';
      if (event.object.id !== `${repo}@${digest}`) problems.push(`${where}: object id does not match digest ${digest}`);
      if (event.type === 'CREATE') {
        if (manifests.has(digest)) problems.push(`${where}: manifest created twice`);
        manifests.add(digest);
      } else if (event.type === 'DELETE') {
        if (!manifests.delete(digest)) problems.push(`${where}: deletes a manifest that is not there`);
        // deleteManifest writes a DELETE TAG for each of its tags before this event.
        for (const [tag, target] of tags) if (target === digest) problems.push(`${where}: leaves tag ${tag} dangling`);
      } else problems.push(`${where}: unexpected type`);
      return;
    }
    if (event.object.type !== 'TAG') return;
    const tag = event.tag ?? '';
    const digest = event.digest ?? '';
    const current = tags.get(tag);
    if (event.object.id !== `${repo}:${tag}`) problems.push(`${where}: object id does not match tag ${tag}`);
    switch (event.type) {
      case 'CREATE':
        if (current !== undefined) problems.push(`${where}: creates a tag that is there (${current})`);
        if (event.previousDigest !== undefined) problems.push(`${where}: CREATE with a previousDigest`);
        break;
      case 'UPDATE':
        if (current === undefined) problems.push(`${where}: updates a tag that is not there`);
        else if (event.previousDigest !== current) {
          problems.push(`${where}: previousDigest ${event.previousDigest} but the tag was ${current}`);
        }
        if (digest === current) problems.push(`${where}: UPDATE to the same target`);
        break;
      case 'DELETE':
        if (current === undefined) problems.push(`${where}: deletes a tag that is not there`);
        else if (digest !== current) problems.push(`${where}: deletes ${digest} but the tag was ${current}`);
        tags.delete(tag);
        return;
    }
    if (!manifests.has(digest)) problems.push(`${where}: points at ${digest}, which is not there`);
    tags.set(tag, digest);
  });
  return { tags, problems };
}

/** The tags of `repo` as the store reports them: allTags, then getTag of each. */
export function storedTags(store: MetadataStore, repo: string): Map<string, string> {
  return new Map(store.allTags(repo).map((tag) => [tag, store.getTag(repo, tag).digest]));
}
