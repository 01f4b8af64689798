// The metadata store as the handlers see it when metrics are on: the same
// object, each method timed into a latency cell of its own name, from the
// call until its promise settles. Made once per handler, so a call costs two
// clock reads, one reaction on its promise and a few additions, not a Proxy
// trap and a lookup (a Proxy's get trap runs on every property read).

import type { Store } from '../store/index.js';

/** Where a timed method adds what it took, in seconds. */
export type Timing = (seconds: number) => void;

/**
 * A store whose methods call `store`'s and report each call's duration to
 * `timingOf(method name)`, which is asked once per method, here. The result
 * inherits from `store`, so its fields (backend, limits, notifications) read
 * through; accessors and methods run on `store` itself, whose private state
 * a stand-in could not reach.
 */
export function timedStore(store: Store, timingOf: (operation: string) => Timing): Store {
  const timed = Object.create(store) as Store;
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

function timedMethod(store: Store, method: (...args: unknown[]) => unknown, timing: Timing): (...args: unknown[]) => unknown {
  return function (this: unknown, ...args: unknown[]) {
    const started = performance.now();
    const done = () => timing((performance.now() - started) / 1000);
    const result = method.apply(store, args);
    // A reaction beside the caller's, not a promise in its way: the caller awaits `result` itself.
    if (result instanceof Promise) result.then(done, done);
    else done();
    return result;
  };
}
