/**
 * The SQLite store's write-failure signal (writesFailing, behind GET /api/health) over a real file whose
 * writes fail while reads still answer: only a transaction that wrote something shows the store writes again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StoreUnavailableError } from '../../shared/errors';
import { openSqliteStore, type SqliteStore } from '../../shared/store/sqlite';
import { caseRecord, connectionOf, notification } from './fixtures';

describe('writesFailing on a SQLite store whose writes fail', () => {
  let dir: string;
  let store: SqliteStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'triage-writes-failing-'));
    store = openSqliteStore({ file: join(dir, 'triage.db') });
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stays set after a batch that only read (redeliveries of stored alerts) commits while the database is full', async () => {
    // Arrange: the database cannot grow (a full disk); a new alert's write fails
    await store.putCase(caseRecord('t', 'stored'), [], undefined);
    const db = connectionOf(store);
    db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
    const tooBig = [{ ...notification('t', 'refused', 'soc@example.com'), payload: 'x'.repeat(64 * 1024) }];
    await expect(store.putCase(caseRecord('t', 'refused'), [], undefined, tooBig)).rejects.toBeInstanceOf(StoreUnavailableError);
    await new Promise((r) => setImmediate(r)); // the failed write's group ends on the next turn

    // Act: an Event Hub batch of duplicates is one unit of work that reads and writes nothing
    const read = await store.unitOfWork(async () => store.getCase('t', 'stored'));

    // Assert: nothing was written, so nothing shows the store writes again
    expect(read?.caseId).toBe('stored');
    expect(store.writesFailing()).toBe(true);
  });

  it('is cleared by a batch that wrote once the file is writable again', async () => {
    await store.putCase(caseRecord('t', 'stored'), [], undefined);
    connectionOf(store).pragma('query_only = 1');
    await expect(store.putCase(caseRecord('t', 'refused'), [], undefined)).rejects.toBeInstanceOf(StoreUnavailableError);
    connectionOf(store).pragma('query_only = 0');

    await store.unitOfWork(async () => {
      await store.putCase(caseRecord('t', 'accepted'), [], undefined);
    });

    expect(store.writesFailing()).toBe(false);
  });
});
