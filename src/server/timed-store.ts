// The metadata store as the handlers see it when metrics are on: the same
// object, each method timed into a latency cell of its own name. Made once
// per handler, so a call costs two clock reads and a few additions, not a
// Proxy trap and a lookup (a Proxy's get trap runs on every property read).

import type { MetadataStore } from '../index.js';

/** Where a timed method adds what it took, in seconds. */
export type Timing = (seconds: number) => void;

/**
 * A store whose methods call `store`'s and report each call's duration to
 * `timingOf(method name)`, which is asked once per method, here. The result
 * inherits from `store`, so `instanceof MetadataStore` and its fields
 * (limits, notifications) read through; accessors and methods run on `store`
 * itself, whose private state a stand-in could not reach.
 */
export function timedStore(store: MetadataStore, timingOf: (operation: string) => Timing): MetadataStore {
  const timed = Object.create(store) as MetadataStore;
  for (let proto = Object.getPrototypeOf(store); proto !== null && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const [name, descriptor] of Object.entries(Object.getOwnPropertyDescriptors(proto))) {
      if (name === 'constructor' || Object.prototype.hasOwnProperty.call(timed, name)) continue;
      if (descriptor.get !== undefined) {
        Object.defineProperty(timed, name, { get: () => (store as unknown as Record<string, unknown>)[name] });
      } else if (typeof descriptor.value === 'function') {
        Object.defineProperty(timed, name, { value: timedMethod(store, descriptor.value as (...args: unknown[]) => unknown, timingOf(name)) });
      }
    }
  }
  return timed;
}

function timedMethod(store: MetadataStore, method: (...args: unknown[]) => unknown, timing: Timing): (...args: unknown[]) => unknown {
  return function (this: unknown, ...args: unknown[]) {
    const started = performance.now();
    try {
      return method.apply(store, args);
    } finally {
      timing((performance.now() - started) / 1000);
    }
  };
}
