// registerStore: the process-wide store of DTR's RegisterStore.

import { describe, expect, it } from 'vitest';
import { openStore, registerStore, registeredStore } from 'regmeta';
import { caught } from '../fixtures.js';

describe('registerStore', () => {
  it('registeredStore is undefined before, the store after; a second registerStore throws STORE_ALREADY_REGISTERED', () => {
    expect(registeredStore()).toBeUndefined();
    const first = openStore(':memory:');
    const second = openStore(':memory:');
    try {
      registerStore(first);
      expect(registeredStore()).toBe(first);
      expect(caught(() => registerStore(second)).code).toBe('STORE_ALREADY_REGISTERED');
      expect(caught(() => registerStore(first)).code).toBe('STORE_ALREADY_REGISTERED');
      expect(registeredStore()).toBe(first);
    } finally {
      first.close();
      second.close();
    }
  });
});
