import { storeAnswers } from '../../../shared/http/health';
import { openSqliteStore } from '../../../shared/store/sqlite';
import { countingStore } from '../../helpers/countingStore';

/** A real store whose reads are counted, and can be made to fail. */
function countingReads() {
  const { store, calls: reads, fail } = countingStore(openSqliteStore({ file: ':memory:' }), 'getCase');
  return { store, reads, fail };
}

describe('the anonymous health probe', () => {
  it('reads the store once per five seconds however often it is called', async () => {
    const { store, reads } = countingReads();

    const answers = [];
    for (let i = 0; i < 50; i++) answers.push(await storeAnswers(store, 1_000 + i * 10));
    const later = await storeAnswers(store, 1_000 + 5_000);

    expect(answers.every(Boolean)).toBe(true);
    expect(later).toBe(true);
    expect(reads()).toBe(2);
  });

  it('reports a store that stops answering at the next probe', async () => {
    const { store, fail } = countingReads();
    await storeAnswers(store, 0);

    fail(true);
    const cached = await storeAnswers(store, 4_999);
    const probed = await storeAnswers(store, 5_000);

    expect(cached).toBe(true);
    expect(probed).toBe(false);
  });
});
