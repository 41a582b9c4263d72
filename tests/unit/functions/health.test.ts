import { storeAnswers } from '../../../shared/http/health';
import type { Store } from '../../../shared/store/port';
import { openSqliteStore } from '../../../shared/store/sqlite';

/** A real store whose reads are counted, and can be made to fail. */
function countingStore(): { store: Store; reads: () => number; fail: (f: boolean) => void } {
  const real = openSqliteStore({ file: ':memory:' });
  let reads = 0;
  let failing = false;
  const store: Store = Object.assign(Object.create(real) as Store, {
    getCase: async (t: string, c: string) => {
      reads++;
      if (failing) throw new Error('store down');
      return real.getCase(t, c);
    },
  });
  return {
    store,
    reads: () => reads,
    fail: (f) => {
      failing = f;
    },
  };
}

describe('the anonymous health probe', () => {
  it('reads the store once per five seconds however often it is called', async () => {
    const { store, reads } = countingStore();

    const answers = [];
    for (let i = 0; i < 50; i++) answers.push(await storeAnswers(store, 1_000 + i * 10));
    const later = await storeAnswers(store, 1_000 + 5_000);

    expect(answers.every(Boolean)).toBe(true);
    expect(later).toBe(true);
    expect(reads()).toBe(2);
  });

  it('reports a store that stops answering at the next probe', async () => {
    const { store, fail } = countingStore();
    await storeAnswers(store, 0);

    fail(true);
    const cached = await storeAnswers(store, 4_999);
    const probed = await storeAnswers(store, 5_000);

    expect(cached).toBe(true);
    expect(probed).toBe(false);
  });
});
