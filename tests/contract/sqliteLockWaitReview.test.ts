/**
 * Review of the SQLite store's wait for another connection's write lock (sqliteLockWait.test.ts): the interleavings
 * around a group or unit of work waiting for the lock, over real temp files. The other connection is a second
 * better-sqlite3 connection holding `BEGIN IMMEDIATE`, which is what another process is to SQLite. Waits are
 * counted in event-loop turns; the lock timeout is only slack.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PolicyRegistry } from '../../shared/config/policy';
import { StoreUnavailableError } from '../../shared/errors';
import { silentLogger } from '../../shared/log';
import { Pipeline } from '../../shared/pipeline/pipeline';
import type { RelatedResult } from '../../shared/store/port';
import type { SqliteStore } from '../../shared/store/sqlite';
import { createBrain } from '../../shared/triage/brain';
import { ROOT } from '../helpers/cli';
import { signal } from '../helpers/signal';
import { sqliteFileUnderLock, track, turns } from '../helpers/sqliteLock';
import { caseRecord, connectionOf, notification, sighting } from './fixtures';

/** For the tests where the lock never comes: the wait must run out. */
const SHORT_WAIT_MS = 50;

const AT = '2024-05-01T10:00:00.000Z';
/** A look-up of host:h1 around AT. */
const HOST_H1 = { tenantId: 't', keys: ['host:h1'], from: '2024-04-24T10:00:00.000Z', to: '2024-05-08T10:00:00.000Z', limitPerKey: 10 };

const lock = sqliteFileUnderLock('triage-sqlite-lock-review-');
const { open, holdWriteLock, committed, committedRows } = lock;

function caseIds(answer: RelatedResult): string[] {
  return answer.sightings.map((s) => s.caseId).sort();
}

/**
 * Runs a unit of work that starts a chain which goes on after the unit has ended (a callback, an unawaited
 * promise): the chain keeps the unit's async context. Returns what the chain does once `fire` is called.
 */
async function leftOverFromUnit<T>(store: SqliteStore, then: () => Promise<T>): Promise<{ fire: () => void; result: () => Promise<T> }> {
  const later = signal();
  let chain: Promise<T> | undefined;
  await store.unitOfWork(async () => {
    chain = later.done.then(then);
    chain.catch(() => undefined); // awaited by the test; this only keeps a rejection before that from being "unhandled"
  });
  return { fire: later.fire, result: () => chain as Promise<T> };
}

// Finding: a context left over from a unit of work (a chain started inside it that runs after it) was taken as
// inside the unit, so its writes skipped the gates and the group: see SqliteStore.inUnit.
describe('a write from the async context of a unit of work that has ended', () => {
  it('joins the group waiting for the lock and is stored once the lock comes, the event loop turning meanwhile', async () => {
    // Arrange
    const store = open();
    const leftOver = await leftOverFromUnit(store, () => store.putCase(caseRecord('t', 'left-over'), [], undefined));
    const other = holdWriteLock();
    const grouped = store.putCase(caseRecord('t', 'grouped'), [], undefined);

    // Act
    leftOver.fire();
    const state = track(leftOver.result());
    const turned = await turns(20, () => state.settled);
    other.exec('ROLLBACK');
    const [stored] = await Promise.all([leftOver.result(), grouped]);

    // Assert
    expect(turned).toBe(20);
    expect(stored.caseId).toBe('left-over');
    expect(committed('left-over')).toBe(true);
  });

  it('is answered after the COMMIT of the group it ran in, so it fails when that commit fails', async () => {
    // Arrange
    const store = open();
    const leftOver = await leftOverFromUnit(store, () => store.putCase(caseRecord('t', 'left-over'), [], undefined));
    const grouped = store.putCase(caseRecord('t', 'grouped'), [], undefined); // the group commits on the next turn

    // Act: the left-over write runs in that group, whose COMMIT finds the database file gone
    leftOver.fire();
    rmSync(lock.file);
    const [group, left] = await Promise.allSettled([grouped, leftOver.result()]);

    // Assert: neither is answered "stored"
    expect(group.status === 'rejected' && group.reason).toBeInstanceOf(StoreUnavailableError);
    expect(left.status === 'rejected' && left.reason).toBeInstanceOf(StoreUnavailableError);
  });

  it("is refused when it runs between the unit's COMMIT and its end into a database file removed meanwhile", async () => {
    // Arrange: a chain of the unit that goes on one step after the unit's own work has finished
    const store = open();
    let leftOver: Promise<unknown> | undefined;

    // Act: that step runs right after the unit's COMMIT, finds the database file removed, and writes
    await store.unitOfWork(() => {
      const work = (async () => {
        await store.putCase(caseRecord('t', 'in-unit'), [], undefined);
      })();
      leftOver = work
        .then(() => undefined)
        .then(() => {
          rmSync(lock.file);
          return store.putCase(caseRecord('t', 'after-commit'), [], undefined);
        });
      leftOver.catch(() => undefined); // awaited below; this only keeps a rejection before that from being "unhandled"
      return work;
    });
    const outcome = await (leftOver as Promise<unknown>).catch((err: unknown) => err);

    // Assert: not answered "stored" for a row in a file that is gone
    expect(outcome).toBeInstanceOf(StoreUnavailableError);
  });

  it('starts a unit of work that commits whole or not at all', async () => {
    // Arrange
    const store = open();
    const leftOver = await leftOverFromUnit(store, () =>
      store.unitOfWork(async () => {
        await store.putCase(caseRecord('t', 'first-of-two'), [], undefined);
        throw new Error('the second step of the unit failed');
      }),
    );

    // Act
    leftOver.fire();
    const outcome = await leftOver.result().catch((err: unknown) => err);

    // Assert
    expect((outcome as Error).message).toBe('the second step of the unit failed');
    expect(committed('first-of-two')).toBe(false);
  });
});

describe('a SQLite store waiting for the write lock (what held under review)', () => {
  it('restores busy_timeout after a group wait that failed, a unit wait that failed and a BEGIN that failed otherwise', async () => {
    // Arrange
    const store = open(SHORT_WAIT_MS);
    const db = connectionOf(store);
    const other = holdWriteLock();
    const busyTimeouts: unknown[] = [];

    // Act
    const groupWait = await store.putCase(caseRecord('t', 'group'), [], undefined).catch((err: unknown) => err);
    busyTimeouts.push(db.pragma('busy_timeout', { simple: true }));
    const unitWait = await store.unitOfWork(async () => undefined).catch((err: unknown) => err);
    busyTimeouts.push(db.pragma('busy_timeout', { simple: true }));
    other.exec('ROLLBACK');
    db.exec('BEGIN'); // a transaction the store did not open: its BEGIN IMMEDIATE fails, and not with BUSY
    const otherFailure = await store.putCase(caseRecord('t', 'nested'), [], undefined).catch((err: unknown) => err);
    busyTimeouts.push(db.pragma('busy_timeout', { simple: true }));
    db.exec('ROLLBACK');

    // Assert
    expect(groupWait).toBeInstanceOf(StoreUnavailableError);
    expect(unitWait).toBeInstanceOf(StoreUnavailableError);
    expect((otherFailure as { code?: unknown }).code).toBe('SQLITE_ERROR');
    expect(busyTimeouts).toEqual([SHORT_WAIT_MS, SHORT_WAIT_MS, SHORT_WAIT_MS]);
  });

  it('rejects every member of a failed wait with StoreUnavailableError, and the redelivery stores case, outbox and index entry once', async () => {
    // Arrange
    const store = open(SHORT_WAIT_MS);
    await store.findRelated(HOST_H1); // the index is in memory
    const record = caseRecord('t', 'redelivered');
    const seen = [sighting('t', 'redelivered', 'host:h1', AT)];
    const outbox = [notification('t', 'redelivered', 'soc@example.com')];
    const other = holdWriteLock();
    const failed = await Promise.allSettled([
      store.putCase(record, seen, undefined, outbox),
      store.putCase(caseRecord('t', 'joined'), [], undefined),
    ]);
    other.exec('ROLLBACK');

    // Act: the sender delivers again
    const stored = await store.putCase(record, seen, undefined, outbox);

    // Assert
    expect(failed.map((f) => f.status === 'rejected' && f.reason instanceof StoreUnavailableError)).toEqual([true, true]);
    expect(stored.etag).toBe('1');
    expect(caseIds(await store.findRelated(HOST_H1))).toEqual(['redelivered']);
    expect(await store.listNotifications({ tenantId: 't', caseId: 'redelivered' })).toHaveLength(1);
    const tables = ['cases', 'sighting_log', 'notifications'] as const;
    expect(tables.map((t) => committedRows(t, 'redelivered'))).toEqual([1, 1, 1]);
    expect(committed('joined')).toBe(false);
  });

  it('answers look-ups from what the file holds after a group that waited while the other connection wrote the log rolls back', async () => {
    // Arrange: the index is in memory; the other connection appends a related log row while the store waits
    const store = open();
    await store.putCase(caseRecord('t', 'base'), [sighting('t', 'base', 'host:h1', AT)], undefined);
    await store.findRelated(HOST_H1);
    const other = holdWriteLock();
    other
      .prepare('INSERT INTO sighting_log (tenant_id, case_id, detected_at, groups) VALUES (?, ?, ?, ?)')
      .run('t', 'theirs', AT, JSON.stringify([[['exploitation'], 'brute-force', 'medium', ['host:h1']]]));
    const mine = store.putCase(caseRecord('t', 'mine'), [sighting('t', 'mine', 'host:h1', AT)], undefined);
    const tooBig = caseRecord('t', 'too-big');
    const full = store.putCase({ ...tooBig, case: { ...tooBig.case, title: 'x'.repeat(200_000) } }, [], undefined);
    const db = connectionOf(store);
    await turns(5);

    // Act: once the lock comes, the file cannot grow: SQLite rolls the group back
    db.pragma(`max_page_count = ${(db.pragma('page_count', { simple: true }) as number) + 2}`);
    other.exec('COMMIT');
    const outcomes = await Promise.allSettled([mine, full]);
    db.pragma('max_page_count = 1073741823');
    const after = await store.findRelated(HOST_H1);

    // Assert
    expect(outcomes.map((o) => o.status === 'rejected' && o.reason instanceof StoreUnavailableError)).toEqual([true, true]);
    expect(committed('mine')).toBe(false);
    expect(caseIds(after)).toEqual(['base', 'theirs']);
  });

  it('answers a look-up issued before a write that waits for the lock at once, without that write', async () => {
    // Arrange
    const store = open();
    await store.putCase(caseRecord('t', 'base'), [sighting('t', 'base', 'host:h1', AT)], undefined);
    const other = holdWriteLock();

    // Act
    const lookup = store.findRelated(HOST_H1);
    const write = store.putCase(caseRecord('t', 'waiting'), [sighting('t', 'waiting', 'host:h1', AT)], undefined);
    const lookupState = track(lookup);
    const writeState = track(write);
    await turns(3);
    const answeredWhileLocked = lookupState.settled;
    const writeSettledWhileLocked = writeState.settled;
    other.exec('ROLLBACK');
    await write;

    // Assert
    expect(answeredWhileLocked).toBe(true);
    expect(writeSettledWhileLocked).toBe(false);
    expect(caseIds(await lookup)).toEqual(['base']);
  });

  it('lets a look-up made while a group waits see the writes of that group issued before it, not those issued after', async () => {
    // Arrange
    const store = open();
    const other = holdWriteLock();
    const before = store.putCase(caseRecord('t', 'before'), [sighting('t', 'before', 'host:h1', AT)], undefined);

    // Act
    const lookup = store.findRelated(HOST_H1);
    const after = store.putCase(caseRecord('t', 'after'), [sighting('t', 'after', 'host:h1', AT)], undefined);
    await turns(5);
    other.exec('ROLLBACK');
    const [answer] = await Promise.all([lookup, before, after]);

    // Assert
    expect(caseIds(answer)).toEqual(['before']);
  });

  it('tells an answer read before a wait during which the other connection committed a related log row', async () => {
    // Arrange: the answer is read, then the case's write waits while the other connection appends a related row
    const store = open();
    const other = holdWriteLock();
    const answer = await store.findRelated(HOST_H1);
    const write = store.putCase(caseRecord('t', 'mine'), [sighting('t', 'mine', 'host:h1', AT)], undefined);
    other
      .prepare('INSERT INTO sighting_log (tenant_id, case_id, detected_at, groups) VALUES (?, ?, ?, ?)')
      .run('t', 'theirs', AT, JSON.stringify([[['exploitation'], 'brute-force', 'medium', ['host:h1']]]));

    // Act
    await turns(5);
    other.exec('COMMIT');
    await write;

    // Assert: the pipeline looks this case up again (and then finds theirs)
    expect(caseIds(answer)).toEqual([]);
    expect(answer.othersCommittedSince?.()).toBe(true);
    expect(caseIds(await store.findRelated({ ...HOST_H1, excludeCaseId: 'mine' }))).toEqual(['theirs']);
  });

  it('runs a look-up and a write issued while a unit of work waits for the lock after that unit', async () => {
    // Arrange
    const store = open();
    const other = holdWriteLock();
    const unit = store.unitOfWork(async () => {
      await store.putCase(caseRecord('t', 'in-unit'), [sighting('t', 'in-unit', 'host:h1', AT)], undefined);
    });

    // Act: the write updates the unit's case, so it can only succeed after the unit committed
    const lookup = store.findRelated(HOST_H1);
    const write = store.putCase(caseRecord('t', 'in-unit', { revision: 2 }), [], '1');
    await turns(5);
    other.exec('ROLLBACK');
    const [, answer, updated] = await Promise.all([unit, lookup, write]);

    // Assert
    expect(caseIds(answer)).toEqual(['in-unit']);
    expect(updated.etag).toBe('2');
  });

  it('closes only after the group waiting for the lock has committed its writes', async () => {
    // Arrange
    const store = open();
    const other = holdWriteLock();
    const write = store.putCase(caseRecord('t', 'before-close'), [], undefined);

    // Act
    const closing = store.close();
    const closeState = track(closing);
    await turns(10);
    const closedWhileLocked = closeState.settled;
    other.exec('ROLLBACK');
    await closing;

    // Assert
    expect(closedWhileLocked).toBe(false);
    expect((await write).caseId).toBe('before-close');
    expect(committed('before-close')).toBe(true);
    await expect(store.getCase('t', 'before-close')).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('keeps the pipeline correlating two related deliveries in arrival order while another connection holds the lock', async () => {
    // Arrange
    const chain = readFileSync(join(ROOT, 'examples', 'attack-chain.ndjson'), 'utf8')
      .trim()
      .split('\n');
    const store = open();
    const pipeline = new Pipeline({
      store,
      policies: PolicyRegistry.fromDirectory(join(ROOT, 'policies')),
      brain: createBrain(),
      log: silentLogger,
      backoffMs: 1,
    });
    const other = holdWriteLock();
    const alerts = { kind: 'alerts' as const, source: 'test' };

    // Act: both deliveries look up and write while the lock is held
    const first = pipeline.ingestText(chain[0] as string, alerts);
    const second = pipeline.ingestText(chain[1] as string, alerts);
    const bothState = track(Promise.all([first, second]));
    await turns(10);
    const settledWhileLocked = bothState.settled;
    other.exec('ROLLBACK');
    const [outFirst, outSecond] = await Promise.all([first, second]);

    // Assert: the second saw the first, and neither needed a second revision
    const a = outFirst.items[0];
    const b = outSecond.items[0];
    expect(settledWhileLocked).toBe(false);
    expect(a?.result?.killChain.relatedCaseIds).toEqual([]);
    expect(b?.result?.killChain.relatedCaseIds).toEqual([a?.caseId]);
    expect([a?.result?.revision, b?.result?.revision]).toEqual([1, 1]);
    expect((await store.getCase(b?.tenantId as string, b?.caseId as string))?.result.killChain.relatedCaseIds).toEqual([a?.caseId]);
  });
});
