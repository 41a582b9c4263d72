/**
 * The health probe over a real SQLite file whose writes fail while its reads still answer: the case
 * where alerts are all answered 503 and the probe, reading only, used to say ok.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreUnavailableError } from '../../../shared/errors';
import { storeAnswers } from '../../../shared/http/health';
import { openSqliteStore, type SqliteStore } from '../../../shared/store/sqlite';
import { caseRecord, connectionOf, notification } from '../../contract/fixtures';

describe('the health probe over a SQLite store whose writes fail', () => {
  let dir: string;
  let store: SqliteStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'triage-health-'));
    store = openSqliteStore({ file: join(dir, 'triage.db') });
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 while the database is read-only though reads still answer, and ok once its own write commits again', async () => {
    await store.putCase(caseRecord('t', 'before'), [], undefined);
    connectionOf(store).pragma('query_only = 1');

    const refused = store.putCase(caseRecord('t', 'refused'), [], undefined);
    await expect(refused).rejects.toBeInstanceOf(StoreUnavailableError);
    const read = await store.getCase('t', 'before');
    const whileReadOnly = await storeAnswers(store, 0);
    connectionOf(store).pragma('query_only = 0');
    const cached = await storeAnswers(store, 4_999);
    const writableAgain = await storeAnswers(store, 5_000);

    expect(read?.caseId).toBe('before');
    expect(whileReadOnly).toBe(false);
    expect(cached).toBe(false);
    expect(writableAgain).toBe(true);
    expect(store.writesFailing()).toBe(false);
    // The probe's write leaves nothing behind.
    const db = new Database(join(dir, 'triage.db'), { readonly: true });
    expect(db.prepare('SELECT COUNT(*) FROM leases').pluck().get()).toBe(0);
    db.close();
  });

  it('remembers a full disk from the failed write until a write commits', async () => {
    await store.putCase(caseRecord('t', 'before'), [], undefined);
    const db = connectionOf(store);
    const pages = db.pragma('max_page_count', { simple: true }) as number;
    db.pragma(`max_page_count = ${(db.pragma('page_count', { simple: true }) as number) + 2}`);
    const tooBig = [{ ...notification('t', 'too-big', 'soc@example.com'), payload: 'x'.repeat(256 * 1024) }];

    await expect(store.putCase(caseRecord('t', 'too-big'), [], undefined, tooBig)).rejects.toBeInstanceOf(StoreUnavailableError);
    const afterFailure = store.writesFailing();
    db.pragma(`max_page_count = ${pages}`);
    await new Promise((r) => setImmediate(r)); // the failed write's group ends on the next turn
    await store.putCase(caseRecord('t', 'after'), [], undefined);

    expect(afterFailure).toBe(true);
    expect(store.writesFailing()).toBe(false);
  });

  it('stays ok when a write lost a race for the lock (another process writing), which is no store failure', async () => {
    const busy = openSqliteStore({ file: join(dir, 'busy.db'), busyTimeoutMs: 0 });
    const other = new Database(join(dir, 'busy.db'));
    other.exec('BEGIN IMMEDIATE');

    await expect(busy.putCase(caseRecord('t', 'raced'), [], undefined)).rejects.toBeInstanceOf(StoreUnavailableError);
    const healthy = await storeAnswers(busy, 0);

    other.exec('ROLLBACK');
    other.close();
    await busy.close();
    expect(healthy).toBe(true);
    expect(busy.writesFailing()).toBe(false);
  });
});
