// What a mirror writes into the metadata (manifests without their blobs, tags
// moved and dropped, events as the actor mirror), on each backend: SQLite
// and PostgreSQL, through the Store the server uses.

import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeRegistry, createRegistry } from 'regmeta/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, type Opened } from '../../store/contract/backends.js';
import { OciLayout, type BuiltImage } from '../oci-layout.js';
import { pull } from './manifest-pull.js';
import { pushImage as copyImage, startUpstream, type TestUpstream } from './upstreams.js';

let dir: string;
let upstream: TestUpstream;
let layout: OciLayout;
let a: BuiltImage;
let b: BuiltImage;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'regmeta-mirror-backends-'));
  upstream = await startUpstream();
  layout = new OciLayout(join(dir, 'layout'));
  [a, b] = [0, 1].map(() => layout.addImage({ layerSize: 256 }));
  layout.tag(a.descriptor, 'a');
  layout.tag(b.descriptor, 'b');
});

afterAll(async () => {
  await upstream?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.each(backends)('a mirror on $name metadata', (backend) => {
  let opened: Opened;
  let server: ReturnType<typeof createRegistry>;
  let url: string;
  const repo = `library/${backend.name}`;

  beforeAll(async () => {
    opened = await backend.open();
    for (const tag of ['v1', 'gone']) await copyImage(upstream, layout, 'a', repo, tag);
    server = createRegistry({ store: opened.store, dataDir: mkdtempSync(join(dir, 'data-')), mirrors: [{ prefix: 'hub', url: upstream.url, ttl: 0 }] });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    if (server) await closeRegistry(server, 2000);
    await opened?.cleanup();
  });

  it('keeps a pulled tag and digest, follows a moved tag, drops one gone upstream, as the actor mirror', async () => {
    const { store } = opened;
    for (const tag of ['v1', 'gone']) expect((await pull(`${url}/v2/hub/${repo}/manifests/${tag}`)).digest).toBe(a.descriptor.digest);
    expect((await store.getTag(`hub/${repo}`, 'v1')).digest).toBe(a.descriptor.digest);
    await copyImage(upstream, layout, 'b', repo, 'v1');
    const moved = await pull(`${url}/v2/hub/${repo}/manifests/v1`);
    expect([moved.digest, moved.body.equals(b.bytes)]).toEqual([b.descriptor.digest, true]);
    expect((await store.tagHistory(`hub/${repo}`, 'v1')).map((h) => h.digest)).toEqual([b.descriptor.digest, a.descriptor.digest]);
    expect((await pull(`${url}/v2/hub/${repo}/manifests/${a.descriptor.digest}`)).body.equals(a.bytes)).toBe(true);
    // Deleting a's manifest upstream drops its tags there: gone (v1 has moved off it).
    expect((await fetch(`${upstream.url}/v2/${repo}/manifests/${a.descriptor.digest}`, { method: 'DELETE' })).status).toBe(202);
    expect((await pull(`${url}/v2/hub/${repo}/manifests/gone`)).status).toBe(404);
    await expect(store.getTag(`hub/${repo}`, 'gone')).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
    const { events } = await store.getEvents({ repository: `hub/${repo}`, perPage: 1000 });
    expect(events.length).toBeGreaterThanOrEqual(5);
    expect(new Set(events.map((e) => e.actor))).toEqual(new Set(['mirror']));
    expect(events.filter((e) => e.type === 'DELETE').map((e) => e.tag)).toEqual(['gone']);
  });
});
