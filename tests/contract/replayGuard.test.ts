import { StoreReplayGuard } from '../../shared/auth/storeReplayGuard';
import { openSqliteStore } from '../../shared/store/sqlite';

describe('store-backed HMAC replay guard', () => {
  it('accepts a signature once across instances sharing the store, and again only after it expired', async () => {
    const store = openSqliteStore({ file: ':memory:' });
    let now = Date.parse('2026-11-20T00:00:00Z');
    const instanceA = new StoreReplayGuard(store, () => now);
    const instanceB = new StoreReplayGuard(store, () => now);
    const expires = now + 300_000;

    const first = await instanceA.checkAndRemember('sha256=abc', expires);
    const replayElsewhere = await instanceB.checkAndRemember('sha256=abc', expires);
    const other = await instanceB.checkAndRemember('sha256=def', expires);
    now = expires + 1;
    const afterExpiry = await instanceA.checkAndRemember('sha256=abc', now + 300_000);

    expect([first, replayElsewhere, other, afterExpiry]).toEqual([true, false, true, true]);
    await store.close();
  });
});
