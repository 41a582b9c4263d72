/**
 * A send the channel takes only after the sender's claim on it lapsed: the worker that took the record
 * over may have sent it too, and nothing can undo that (a channel with no idempotency of its own
 * delivers both). The operator is told which record: one `outbox.late-send` warning with its key.
 * Time is an injected clock and injected timers fired by the test; nothing waits.
 */
import { createLogger } from '../../../shared/log';
import { type ChannelSender, OutboxDispatcher } from '../../../shared/notify/outbox';
import type { NotificationRecord, Store } from '../../../shared/store/port';
import { openSqliteStore } from '../../../shared/store/sqlite';
import { settle, virtualTime } from '../../helpers/virtualTime';

const TENANT = '8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b';
const T0 = Date.parse('2026-11-27T00:00:00.000Z');
const KEY = `${TENANT}|case-1|first-report|soc|email`;

function entry(): NotificationRecord {
  return {
    key: KEY,
    tenantId: TENANT,
    caseId: 'case-1',
    revision: 1,
    kind: 'first-report',
    channel: 'email',
    recipient: 'soc <soc@contoso.example>',
    payload: 'SECRET report text',
    createdAt: new Date(T0).toISOString(),
    status: 'queued',
    attempts: 0,
  };
}

/** One queued entry; a dispatcher on virtual time whose channel hangs until the test answers, logging into `lines`. */
async function slowWorker() {
  const store = openSqliteStore({ file: ':memory:' });
  await store.enqueueNotification(entry());
  const time = virtualTime(T0);
  const answers: (() => void)[] = [];
  const channel: ChannelSender = { send: () => new Promise<void>((resolve) => void answers.push(resolve)) };
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level: 'debug', sink: (l) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
  const dispatcher = new OutboxDispatcher(store, channel, log, () => new Date(time.clock.now), { setTimer: time.setTimer });
  return { store, time, answers, lines, dispatcher };
}

/** Another worker on the same store and clock, whose channel takes every send at once. */
function otherWorker(store: Store, clock: { now: number }, sends: string[]): OutboxDispatcher {
  return new OutboxDispatcher(
    store,
    { send: async (n) => void sends.push(n.key) },
    createLogger({ level: 'silent' }),
    () => new Date(clock.now),
  );
}

const lateSends = (lines: readonly Record<string, unknown>[]) => lines.filter((l) => l.event === 'outbox.late-send');

describe('a send that answers after its claim lapsed', () => {
  it('past its deadline and its claim, after another worker sent the record: one outbox.late-send warning with the key', async () => {
    // Arrange: the send times out at +45 s; its claim (renewed at +40 s) runs to +160 s; another worker sends it at +161 s
    const { store, time, answers, lines, dispatcher } = await slowWorker();
    const draining = dispatcher.drain();
    await settle();
    await time.advanceTo(161_000);
    const otherSends: string[] = [];
    const taken = await otherWorker(store, time.clock, otherSends).drain();

    // Act: the first channel answers after all
    await time.advanceTo(170_000);
    answers[0]?.();
    await settle();

    // Assert
    expect(await draining).toBe(0);
    expect(taken).toBe(1);
    expect(otherSends).toEqual([KEY]);
    expect(lateSends(lines)).toEqual([
      expect.objectContaining({ level: 'warn', key: KEY, tenantId: TENANT, caseId: 'case-1', reason: 'claim-expired', recorded: true }),
    ]);
    expect(JSON.stringify(lines)).not.toContain('SECRET');
    expect(await store.listNotifications({ tenantId: TENANT })).toEqual([expect.objectContaining({ status: 'sent' })]);
    await store.close();
  });

  it('from a process that stalled until another worker took its claim over: one outbox.late-send warning with the key', async () => {
    // Arrange: the process stalls from its send at 0 to +130 s (no timer runs); meanwhile the claim (to +120 s)
    // expires and another worker takes the record over and sends it
    const { store, time, answers, lines, dispatcher } = await slowWorker();
    const draining = dispatcher.drain();
    await settle();
    time.clock.now = T0 + 130_000;
    const otherSends: string[] = [];
    const taken = await otherWorker(store, time.clock, otherSends).drain();

    // Act: the process wakes (its heartbeat finds the claim taken, its deadline passes), then its channel answers
    await time.advanceTo(130_000);
    answers[0]?.();
    await settle();

    // Assert
    expect(await draining).toBe(0);
    expect(taken).toBe(1);
    expect(lines.some((l) => l.event === 'notification.claim.lost')).toBe(true);
    expect(lateSends(lines)).toEqual([expect.objectContaining({ level: 'warn', key: KEY, reason: 'claim-taken-over' })]);
    await store.close();
  });

  it('from a process that stalled past its claim and whose channel answers before any timer runs: warned as well', async () => {
    // Arrange: as above, but the channel answers the moment the process wakes
    const { store, time, answers, lines, dispatcher } = await slowWorker();
    const draining = dispatcher.drain();
    await settle();
    time.clock.now = T0 + 130_000;
    const otherSends: string[] = [];
    await otherWorker(store, time.clock, otherSends).drain();

    // Act
    answers[0]?.();
    const sent = await draining;

    // Assert
    expect(sent).toBe(1);
    expect(otherSends).toEqual([KEY]);
    expect(lateSends(lines)).toEqual([expect.objectContaining({ level: 'warn', key: KEY, reason: 'claim-expired', recorded: true })]);
    await store.close();
  });

  it('but within its claim: recorded as sent, no late-send warning (nobody else can have sent it)', async () => {
    // Arrange: the send times out at +45 s
    const { store, time, answers, lines, dispatcher } = await slowWorker();
    const draining = dispatcher.drain();
    await settle();
    await time.advanceTo(45_000);

    // Act: the channel answers at +50 s, well inside the claim
    await time.advanceTo(50_000);
    answers[0]?.();
    await settle();

    // Assert
    expect(await draining).toBe(0);
    expect(lateSends(lines)).toEqual([]);
    expect(lines.some((l) => l.event === 'notification.sent.late')).toBe(true);
    await store.close();
  });
});
