/**
 * The SQLite store waiting for another connection's write lock (a `triage replay` on the same file, an
 * operator's sqlite3 shell with an open write transaction) without freezing the event loop. The other
 * connection is a second real better-sqlite3 connection on the same file holding `BEGIN IMMEDIATE`, which is
 * what another process is to SQLite. Transactions are counted from the WAL file itself (its commit frames), and
 * waits are measured in event-loop turns, never in time.
 */
import { StoreUnavailableError } from '../../shared/errors';
import { sqliteFileUnderLock, track, turns } from '../helpers/sqliteLock';
import { caseRecord, sighting } from './fixtures';

const { open, holdWriteLock, committed, walCommits } = sqliteFileUnderLock('triage-sqlite-lock-wait-');

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
