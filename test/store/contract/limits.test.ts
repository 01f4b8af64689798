// store.limits on every backend: what a store reports is what it enforces.
// (The defaults and SQLite's own options: test/store/limits.test.ts.)

import { describe, expect, it } from 'vitest';
import { MediaType, built, ociManifest, rejection } from '../fixtures.js';
import { backends } from './backends.js';

describe.each(backends)('$name', (backend) => {
  describe('store.limits', () => {
    it('is what the store enforces: manifest size, page size and text length, each up to the limit and not past it', async () => {
      const { store, cleanup } = await backend.open({ maxManifestSize: 600 });
      try {
        const { maxManifestSize, maxPageSize, maxTextLength } = store.limits;
        expect(maxManifestSize).toBe(600);
        const m = ociManifest();
        const padded = (size: number) => {
          const text = m.payload.toString();
          return built(MediaType.OciManifest, `${text.slice(0, -1)},"annotations":{"p":"${'x'.repeat(size - text.length - 23)}"}}`);
        };
        const largest = padded(maxManifestSize);
        expect(largest.size).toBe(maxManifestSize);
        await store.putManifest('acme/app', largest.digest, largest);
        expect((await rejection(store.putManifest('acme/app', undefined, padded(maxManifestSize + 1)))).code).toBe('SIZE_INVALID');
        expect((await store.getEvents({ perPage: maxPageSize })).events.length).toBeGreaterThan(0);
        const pastPage = store.getEvents({ perPage: maxPageSize + 1 });
        expect((await rejection(pastPage)).code).toBe('PAGINATION_NUMBER_INVALID');
        await store.putTag('acme/app', 'v1', { digest: largest.digest }, { actor: 'a'.repeat(maxTextLength) });
        const pastText = store.putTag('acme/app', 'v2', { digest: largest.digest }, { actor: 'a'.repeat(maxTextLength + 1) });
        expect((await rejection(pastText)).code).toBe('EVENT_INVALID');
      } finally {
        await cleanup();
      }
    });
  });
});
