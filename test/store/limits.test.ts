// store.limits: the limits a store enforces, as callers that must agree with
// them (a server reading a manifest body, a CLI paging events) read them.

import { describe, expect, it } from 'vitest';
import { openStore } from 'regmeta';
import { built, caught, MediaType, ociManifest } from './fixtures.js';

describe('store.limits', () => {
  it('reports the defaults, and what openStore was given', () => {
    const plain = openStore(':memory:');
    const tuned = openStore(':memory:', { maxManifestSize: 1000, busyTimeout: 50 });
    try {
      expect(plain.limits).toEqual({ maxManifestSize: 4 * 1024 * 1024, maxManifestDepth: 256, maxPageSize: 1000, maxTextLength: 1024, busyTimeout: 5000 });
      expect(tuned.limits).toMatchObject({ maxManifestSize: 1000, busyTimeout: 50 });
      expect(Object.isFrozen(plain.limits)).toBe(true);
    } finally {
      plain.close();
      tuned.close();
    }
  });

  it('is what the store enforces: manifest size, page size and text length, each up to the limit and not past it', () => {
    const store = openStore(':memory:', { maxManifestSize: 600 });
    try {
      const { maxManifestSize, maxPageSize, maxTextLength } = store.limits;
      const m = ociManifest();
      const padded = (size: number) => {
        const text = m.payload.toString();
        return built(MediaType.OciManifest, `${text.slice(0, -1)},"annotations":{"p":"${'x'.repeat(size - text.length - 23)}"}}`);
      };
      expect(padded(maxManifestSize).size).toBe(maxManifestSize);
      store.putManifest('acme/app', padded(maxManifestSize).digest, padded(maxManifestSize));
      expect(caught(() => store.putManifest('acme/app', undefined, padded(maxManifestSize + 1))).code).toBe('SIZE_INVALID');
      expect(store.getEvents({ queryingUser: '', isAdmin: true, perPage: maxPageSize }).events.length).toBeGreaterThan(0);
      expect(caught(() => store.getEvents({ queryingUser: '', isAdmin: true, perPage: maxPageSize + 1 })).code).toBe('PAGINATION_NUMBER_INVALID');
      store.putTag('acme/app', 'v1', { digest: padded(maxManifestSize).digest }, { actor: 'a'.repeat(maxTextLength) });
      expect(caught(() => store.putTag('acme/app', 'v2', { digest: padded(maxManifestSize).digest }, { actor: 'a'.repeat(maxTextLength + 1) })).code).toBe(
        'EVENT_INVALID',
      );
    } finally {
      store.close();
    }
  });
});
