// The registry over the asynchronous contract: given an Store instead
// of a MetadataStore, and over a store whose every answer arrives a turn of
// the event loop later, as a network backend's does (PostgreSQL's): the
// handlers must await each call, and every route must answer the same.

import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { asyncStore, openStore, type Store } from 'regmeta';
import { closeRegistry, createRegistry, startRegistry } from 'regmeta/server';
import { OCI_MANIFEST, pushBlob, pushImage, sha256 } from './helpers.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempData(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'regmeta-async-'));
  dirs.push(dir);
  return dir;
}

/**
 * `store` with every answer (and every refusal) held back until the event
 * loop has turned once: a handler that forgets an await answers before the
 * store did, or leaves a rejection unhandled.
 */
function later(store: Store): Store {
  const delay = <T>(value: Promise<T>): Promise<T> =>
    value.then(
      (v) => new Promise<T>((resolve) => setImmediate(() => resolve(v))),
      (e: unknown) => new Promise<T>((_, reject) => setImmediate(() => reject(e))),
    );
  const notifications = new Proxy(store.notifications, {
    get: (target, key) => {
      const value = Reflect.get(target, key) as unknown;
      return typeof value === 'function' ? (...args: unknown[]) => delay((value as (...a: unknown[]) => Promise<unknown>)(...args)) : value;
    },
  });
  return new Proxy(store, {
    get: (target, key) => {
      if (key === 'notifications') return notifications;
      const value = Reflect.get(target, key, target) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => delay((value as (...a: unknown[]) => Promise<unknown>).apply(target, args));
    },
  });
}

async function listening(store: Store, dataDir: string) {
  const errors: unknown[] = [];
  const server = createRegistry({ store, dataDir, onError: (error) => errors.push(error) });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, errors, close: () => closeRegistry(server, 2000) };
}

describe('the registry on an Store', () => {
  for (const [label, wrap] of [
    ['given the SQLite store behind asyncStore', (s: Store) => s],
    ['over a store whose answers arrive a turn later', later],
  ] as const) {
    it(`${label}: pushes, pulls, lists, deletes and refuses as on a MetadataStore`, async () => {
      const dataDir = tempData();
      const store = asyncStore(openStore(path.join(dataDir, 'metadata.db'), { durability: 'normal' }));
      const registry = await listening(wrap(store), dataDir);
      try {
        const image = await pushImage(registry.url, 'acme/app', 'v1', 'one');
        const pulled = await fetch(`${registry.url}/v2/acme/app/manifests/v1`, { headers: { Accept: OCI_MANIFEST } });
        expect(pulled.status).toBe(200);
        expect(await pulled.text()).toBe(image.manifest);
        const head = await fetch(`${registry.url}/v2/acme/app/blobs/${sha256(image.layer)}`, { method: 'HEAD' });
        expect(head.status).toBe(200);
        expect((await fetch(`${registry.url}/v2/acme/app/tags/list`)).status).toBe(200);
        expect(await (await fetch(`${registry.url}/v2/_catalog`)).json()).toEqual({ repositories: ['acme/app'] });
        const missing = await fetch(`${registry.url}/v2/acme/app/manifests/nope`);
        expect(missing.status).toBe(404);
        expect(((await missing.json()) as { errors: { code: string }[] }).errors[0].code).toBe('MANIFEST_UNKNOWN');
        expect((await fetch(`${registry.url}/v2/acme/app/manifests/v1`, { method: 'DELETE' })).status).toBe(202);
        const events = (await (await fetch(`${registry.url}/api/v0/events?repository=acme/app`)).json()) as { events: { type: string }[] };
        expect(events.events.length).toBeGreaterThan(0);
        // The store the embedder passed is the one written.
        expect(await store.allTags('acme/app')).toEqual([]);
        expect((await store.statBlob('acme/app', sha256(image.layer))).size).toBe(Buffer.byteLength(image.layer));
        expect(registry.errors).toEqual([]);
      } finally {
        await registry.close();
        await store.close();
      }
    });
  }

  it('streams events committed after the stream opened, over a store whose answers arrive a turn later', async () => {
    const dataDir = tempData();
    const store = asyncStore(openStore(path.join(dataDir, 'metadata.db'), { durability: 'normal', pollInterval: 20 }));
    const registry = await listening(later(store), dataDir);
    const aborter = new AbortController();
    try {
      const stream = await fetch(`${registry.url}/api/v0/events/stream`, { signal: aborter.signal });
      expect(stream.status).toBe(200);
      const reader = stream.body!.getReader();
      await pushBlob(registry.url, 'acme/streamed', 'a blob');
      let text = '';
      while (!text.includes('event: CREATE')) text += new TextDecoder().decode((await reader.read()).value);
      expect(text).toContain('acme/streamed');
    } finally {
      aborter.abort();
      await registry.close();
      await store.close();
    }
  });

  it('startRegistry serves the Store it is given, hands it back as it is, and leaves it open', async () => {
    const dataDir = tempData();
    const store = asyncStore(openStore(path.join(dataDir, 'metadata.db'), { durability: 'normal' }));
    const registry = await startRegistry({ store, dataDir, port: 0, log: () => undefined });
    try {
      expect(registry.store).toBe(store);
      await pushBlob(registry.url, 'acme/given', 'given bytes');
    } finally {
      await registry.close();
    }
    expect((await store.statBlob('acme/given', sha256('given bytes'))).size).toBe(11);
    await store.close();
  });

  it('startRegistry over a MetadataStore hands back an Store on it, and leaves the store open', async () => {
    const dataDir = tempData();
    const sync = openStore(path.join(dataDir, 'metadata.db'), { durability: 'normal' });
    const registry = await startRegistry({ store: sync, dataDir, port: 0, log: () => undefined });
    try {
      await pushBlob(registry.url, 'acme/sync', 'sync bytes');
      expect(registry.store.backend).toBe('sqlite');
      expect((await registry.store.statBlob('acme/sync', sha256('sync bytes'))).size).toBe(10);
    } finally {
      await registry.close();
    }
    expect(sync.statBlob('acme/sync', sha256('sync bytes')).size).toBe(10);
    sync.close();
  });
});
