/**
 * The SQLite store waiting for another connection's write lock (a `triage replay` on the same file, an
 * operator's sqlite3 shell with an open write transaction) without freezing the event loop. The other
 * connection is a second real better-sqlite3 connection on the same file holding `BEGIN IMMEDIATE`, which is
 * what another process is to SQLite. Transactions are counted from the WAL file itself (its commit frames), and
 * waits are measured in event-loop turns, never in time.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreUnavailableError } from '../../shared/errors';
import { openSqliteStore, type SqliteStore } from '../../shared/store/sqlite';
import { caseRecord, sighting } from './fixtures';

/** Far longer than the few event-loop turns a test holds the lock for: only a store that never waits on a timer runs out of it. */
const LOCK_WAIT_MS = 2000;

let dir: string;
let file: string;
const opened: SqliteStore[] = [];
const others: Database.Database[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'triage-sqlite-lock-wait-'));
  file = join(dir, 'triage.db');
});

afterEach(async () => {
  for (const o of others.splice(0)) {
    if (o.inTransaction) o.exec('ROLLBACK');
    o.close();
  }
  for (const s of opened.splice(0)) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The store under test on `file`. */
function open(busyTimeoutMs = LOCK_WAIT_MS): SqliteStore {
  const s = openSqliteStore({ file, busyTimeoutMs, now: () => Date.parse('2024-05-02T00:00:00.000Z') });
  opened.push(s);
  return s;
}

/** A second connection on the file holding the write lock, as another process's write transaction does. */
function holdWriteLock(): Database.Database {
  const other = new Database(file);
  others.push(other);
  other.exec('BEGIN IMMEDIATE');
  return other;
}

/** Whether `p` has settled, updated as it does. */
function track(p: Promise<unknown>): { settled: boolean } {
  const state = { settled: false };
  p.then(
    () => {
      state.settled = true;
    },
    () => {
      state.settled = true;
    },
  );
  return state;
}

/** Lets the event loop turn (setImmediate) until `stop()` or `max` turns; returns the turns it got. */
async function turns(max: number, stop: () => boolean = () => false): Promise<number> {
  let n = 0;
  while (n < max && !stop()) {
    await new Promise((r) => setImmediate(r));
    n++;
  }
  return n;
}

/**
 * Transactions committed to the WAL file so far: frames whose header holds the database size after the
 * commit (non-zero only on a transaction's last frame), as long as their salts match the WAL header's.
 */
function walCommits(): number {
  let wal: Buffer;
  try {
    wal = readFileSync(`${file}-wal`);
  } catch {
    return 0;
  }
  if (wal.length < 32) return 0;
  const pageSize = wal.readUInt32BE(8);
  const salt1 = wal.readUInt32BE(16);
  const salt2 = wal.readUInt32BE(20);
  let commits = 0;
  for (let at = 32; at + 24 + pageSize <= wal.length; at += 24 + pageSize) {
    if (wal.readUInt32BE(at + 8) !== salt1 || wal.readUInt32BE(at + 12) !== salt2) break;
    if (wal.readUInt32BE(at + 4) !== 0) commits++;
  }
  return commits;
}

/** Whether `caseId` is committed, read by a connection of its own (it sees committed rows only). */
function committed(caseId: string): boolean {
  const reader = new Database(file, { readonly: true });
  try {
    return reader.prepare('SELECT count(*) FROM cases WHERE case_id = ?').pluck().get(caseId) === 1;
  } finally {
    reader.close();
  }
}

describe('a SQLite write while another connection holds the write lock', () => {
  it('keeps the event loop turning while another connection holds the write lock', async () => {
    // Arrange
    const store = open();
    const other = holdWriteLock();

    // Act: the write waits for the lock; meanwhile the loop must keep turning
    const write = store.putCase(caseRecord('t', 'waited'), [], undefined);
    const state = track(write);
    const turned = await turns(50, () => state.settled);
    const settledWhileLocked = state.settled;
    other.exec('ROLLBACK');
    await write;

    // Assert
    expect(turned).toBe(50);
    expect(settledWhileLocked).toBe(false);
    expect((await store.getCase('t', 'waited'))?.caseId).toBe('waited');
    expect(committed('waited')).toBe(true);
  });

  it('fails with StoreUnavailableError once busyTimeoutMs passes without the lock', async () => {
    // Arrange
    const store = open(50);
    const other = holdWriteLock();

    // Act: two writers of one waiting group; the lock never comes
    const writes = [store.putCase(caseRecord('t', 'refused-1'), [], undefined), store.putCase(caseRecord('t', 'refused-2'), [], undefined)];
    const outcomes = Promise.allSettled(writes);
    const state = track(outcomes);
    const turned = await turns(Number.POSITIVE_INFINITY, () => state.settled);
    const [first, second] = await outcomes;
    other.exec('ROLLBACK');
    const after = await store.putCase(caseRecord('t', 'after'), [], undefined);

    // Assert: both fail as a write that met the lock always did, the loop turned while they waited,
    // and the failed group is gone: the next write opens one of its own
    expect(first?.status === 'rejected' && first.reason).toBeInstanceOf(StoreUnavailableError);
    expect(second?.status === 'rejected' && second.reason).toBeInstanceOf(StoreUnavailableError);
    expect(first?.status === 'rejected' && (first.reason as { cause?: { code?: unknown } }).cause?.code).toBe('SQLITE_BUSY');
    expect(turned).toBeGreaterThan(10);
    expect(committed('refused-1') || committed('refused-2')).toBe(false);
    expect(after.caseId).toBe('after');
    expect(store.writesFailing()).toBe(false);
  });

  it('joins concurrent writers into the one group that is waiting for the lock', async () => {
    // Arrange
    const store = open();
    const other = holdWriteLock();
    const commitsBefore = walCommits();

    // Act: one writer waits for the lock, two more arrive while it does
    const first = store.putCase(caseRecord('t', 'joined-1'), [], undefined);
    await turns(5);
    const later = [store.putCase(caseRecord('t', 'joined-2'), [], undefined), store.putCase(caseRecord('t', 'joined-3'), [], undefined)];
    await turns(5);
    other.exec('ROLLBACK');
    await Promise.all([first, ...later]);

    // Assert: all three stored, by one transaction
    expect(walCommits() - commitsBefore).toBe(1);
    expect(['joined-1', 'joined-2', 'joined-3'].map(committed)).toEqual([true, true, true]);
  });

  it('runs a unit of work issued while a group waits for the lock after that group, not inside it', async () => {
    // Arrange
    const store = open();
    const other = holdWriteLock();
    const commitsBefore = walCommits();
    const grouped = store.putCase(caseRecord('t', 'grouped'), [], undefined);
    await turns(5);

    // Act
    let groupCommittedAtUnitStart: boolean | undefined;
    const unit = store.unitOfWork(async () => {
      groupCommittedAtUnitStart = committed('grouped');
      await store.putCase(caseRecord('t', 'in-unit'), [], undefined);
    });
    await turns(5);
    other.exec('ROLLBACK');
    await Promise.all([grouped, unit]);

    // Assert: the group had committed when the unit began, and they were two transactions
    expect(groupCommittedAtUnitStart).toBe(true);
    expect(walCommits() - commitsBefore).toBe(2);
    expect(committed('in-unit')).toBe(true);
  });

  it('answers a read at once, from what is committed, while a write waits for the lock', async () => {
    // Arrange
    const store = open();
    await store.putCase(caseRecord('t', 'stored'), [], undefined);
    const other = holdWriteLock();
    const write = store.putCase(caseRecord('t', 'waiting'), [], undefined);
    const writeState = track(write);

    // Act: the health probe is such a read
    const stored = await store.getCase('t', 'stored');
    const waiting = await store.getCase('t', 'waiting');
    const writeSettledBeforeReads = writeState.settled;
    other.exec('ROLLBACK');
    await write;

    // Assert
    expect(stored?.caseId).toBe('stored');
    expect(waiting).toBeUndefined();
    expect(writeSettledBeforeReads).toBe(false);
    expect((await store.getCase('t', 'waiting'))?.caseId).toBe('waiting');
  });

  it('answers a read at once while a unit of work waits for the lock', async () => {
    // Arrange
    const store = open();
    await store.putCase(caseRecord('t', 'stored'), [], undefined);
    const other = holdWriteLock();
    const unit = store.unitOfWork(async () => {
      await store.putCase(caseRecord('t', 'in-unit'), [], undefined);
    });
    const unitState = track(unit);

    // Act
    const stored = await store.getCase('t', 'stored');
    const unitSettledBeforeRead = unitState.settled;
    other.exec('ROLLBACK');
    await unit;

    // Assert
    expect(stored?.caseId).toBe('stored');
    expect(unitSettledBeforeRead).toBe(false);
    expect(committed('in-unit')).toBe(true);
  });

  it('lets a look-up issued after a waiting write see that write once the lock is taken', async () => {
    // Arrange: the pipeline issues a case's write, then the next case's look-up, without awaiting the commit
    const store = open();
    const at = '2024-05-01T10:00:00.000Z';
    const other = holdWriteLock();
    const write = store.putCase(caseRecord('t', 'first'), [sighting('t', 'first', 'host:h1', at)], undefined);

    // Act
    const lookup = store.findRelated({
      tenantId: 't',
      keys: ['host:h1'],
      from: '2024-04-24T10:00:00.000Z',
      to: '2024-05-08T10:00:00.000Z',
      limitPerKey: 10,
    });
    await turns(5);
    other.exec('ROLLBACK');
    const [answer] = await Promise.all([lookup, write]);

    // Assert
    expect(answer.sightings.map((s) => s.caseId)).toEqual(['first']);
  });
});
