// store.limits: the limits a store enforces, as callers that must agree with
// them (a server reading a manifest body, a CLI paging events) read them: the
// defaults and openStore's options here; that they are enforced, on every
// backend, in test/store/contract/limits.test.ts.

import { describe, expect, it } from 'vitest';
import { openStore } from 'regmeta';

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
});
