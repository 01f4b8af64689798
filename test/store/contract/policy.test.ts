// store.policy on every backend: a policy is checked whole at open, a
// malformed rule refused with a message naming it, and a store reports the
// policy it enforces. (What each rule does: the tests of immutable tags and quotas.)

import { describe, expect, it } from 'vitest';
import { StoreError, type StorePolicy } from 'regmeta';
import { backends } from './backends.js';

describe.each(backends)('$name', (backend) => {
  describe('store.policy', () => {
    it('reports the policy given at open, and none by default', async () => {
      const policy: StorePolicy = { immutable: [{ repositories: 'rel/*', tags: ['v*', 'latest'] }], quotas: [{ namespace: 'acme', maxSize: 1024 }] };
      const { store, cleanup } = await backend.open({ policy });
      try {
        expect(store.policy).toEqual(policy);
        expect(Object.isFrozen(store.policy)).toBe(true);
      } finally {
        await cleanup();
      }
      const plain = await backend.open();
      try {
        expect(plain.store.policy).toEqual({});
      } finally {
        await plain.cleanup();
      }
    });

    it.each([
      [{ immutable: [{ repositories: 'Rel/*', tags: ['v*'] }] }, /immutable\[0\]\.repositories/],
      [{ immutable: [{ repositories: 'rel/*', tags: [] }] }, /immutable\[0\]\.tags/],
      [{ immutable: [{ repositories: 'rel/*', tags: ['v/1'] }] }, /immutable\[0\]\.tags\[0\]: "v\/1" is not a tag pattern/],
      [{ quotas: [{ namespace: 'acme/app', maxSize: 1 }] }, /quotas\[0\]\.namespace/],
      [{ quotas: [{ namespace: 'acme', maxSize: -1 }] }, /quotas\[0\]\.maxSize/],
      [{ quotas: [{ namespace: 'acme', maxSize: 1 }, { namespace: 'acme', maxSize: 2 }] }, /quotas\[1\]\.namespace: acme has a quota already/],
      [{ retention: [] }, /retention: unknown key/],
    ])('refuses %j at open with ARGUMENT_INVALID naming the rule', async (policy, message) => {
      const error = await backend.open({ policy: policy as StorePolicy }).then(
        async (opened) => {
          await opened.cleanup();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ code: 'ARGUMENT_INVALID', message: expect.stringMatching(message) });
    });
  });
});
