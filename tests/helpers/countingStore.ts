/**
 * A real store with one of its methods counted (and, on demand, failing): for tests that assert
 * how often the code under test reads the store, without replacing the store by a mock.
 */
import type { Store } from '../../shared/store/port';

/** `real` with `method` counted; `fail(true)` makes that method throw until `fail(false)`. */
export function countingStore<K extends keyof Store>(
  real: Store,
  method: K,
): { store: Store; calls: () => number; fail: (on: boolean) => void } {
  let calls = 0;
  let failing = false;
  const store = new Proxy(real, {
    get(target, prop) {
      if (prop === method) {
        return async (...args: unknown[]) => {
          calls++;
          if (failing) throw new Error(`${String(method)} failed (test)`);
          return (target[method] as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        };
      }
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return {
    store,
    calls: () => calls,
    fail: (on) => {
      failing = on;
    },
  };
}
