import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StoreUnavailableError } from '../../../shared/errors';
import { createLogger, type Logger, silentLogger } from '../../../shared/log';
import {
  type ChannelSender,
  FileChannel,
  isDue,
  nextAttemptAt,
  OUTBOX_RETRY,
  OutboxDispatcher,
  startDrainLoop,
} from '../../../shared/notify/outbox';
import type { NotificationRecord, Store } from '../../../shared/store/port';
import { openSqliteStore } from '../../../shared/store/sqlite';
import { scratch } from '../../helpers/cli';
import { countingStore } from '../../helpers/countingStore';

const TENANT = '8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b';

function entry(key: string, payload: string): NotificationRecord {
  return {
    key: `${TENANT}|case-1|first-report|${key}|email`,
    tenantId: TENANT,
    caseId: 'case-1',
    revision: 1,
    kind: 'first-report',
    channel: 'email',
    recipient: `${key} <${key}@contoso.example>`,
    payload,
    createdAt: '2026-11-27T00:00:00.000Z',
    status: 'queued',
    attempts: 0,
  };
}

describe('outbox delivery', () => {
  it('never sends an entry whose text is gone: it is marked failed, kept visible, and left out of later drains', async () => {
    // Arrange: one entry with its text, one whose text is no longer stored
    const store = openSqliteStore({ file: ':memory:' });
    await store.enqueueNotification(entry('soc', 'First report: brute force against vpn01'));
    await store.enqueueNotification(entry('lead', ''));
    const sent: NotificationRecord[] = [];
    const dispatcher = new OutboxDispatcher(store, { send: async (n) => void sent.push(n) }, silentLogger);

    // Act: two drains
    const first = await dispatcher.drain({ tenantId: TENANT });
    const second = await dispatcher.drain({ tenantId: TENANT });

    // Assert
    expect(first).toBe(1);
    expect(second).toBe(0);
    expect(sent.map((n) => n.payload)).toEqual(['First report: brute force against vpn01']);
    const stored = await store.listNotifications({ tenantId: TENANT, caseId: 'case-1' });
    const gone = stored.find((n) => n.recipient.startsWith('lead'));
    expect(gone?.status).toBe('failed');
    expect(gone?.lastError).toMatch(/payload missing/);
    expect(stored.find((n) => n.recipient.startsWith('soc'))?.status).toBe('sent');
    await store.close();
  });
});

const T0 = Date.parse('2026-11-27T00:00:00.000Z');
const noWait = async (): Promise<void> => undefined;

/** A logger that keeps its JSON lines. */
function recordingLog(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { log: createLogger({ level: 'debug', sink: (l) => void lines.push(JSON.parse(l) as Record<string, unknown>) }), lines };
}

/** A sender that counts its sends per key, yielding once per send so concurrent deliveries interleave. */
function countingSender(fail: (n: NotificationRecord) => boolean = () => false): ChannelSender & { sends: string[] } {
  const sends: string[] = [];
  return {
    sends,
    send: async (n) => {
      await new Promise<void>((r) => setImmediate(r));
      if (fail(n)) throw new Error('teams 503');
      sends.push(n.key);
    },
  };
}

/** An in-memory store holding one queued first report, and a sender that counts its sends. */
async function oneQueued() {
  const store = openSqliteStore({ file: ':memory:' });
  const n = entry('soc', 'report');
  await store.enqueueNotification(n);
  return { store, n, sender: countingSender() };
}

/** The real store, with markNotification failing while `fails(update)` says so. */
function failingMarks(
  real: Store,
  fails: (update: { status: NotificationRecord['status'] }) => boolean,
): Store & { markCalls: () => number } {
  let calls = 0;
  const wrapped = new Proxy(real, {
    get(target, prop) {
      if (prop === 'markNotification') {
        return async (...args: Parameters<Store['markNotification']>) => {
          calls++;
          if (fails(args[2])) throw new StoreUnavailableError('sqlite busy');
          return target.markNotification(...args);
        };
      }
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return Object.assign(wrapped, { markCalls: () => calls });
}

async function stored(store: Store): Promise<NotificationRecord[]> {
  return store.listNotifications({ tenantId: TENANT, caseId: 'case-1' });
}

describe('a claim excludes every other delivery attempt, in this process too', () => {
  it('two concurrent deliveries of the same records by one dispatcher send each record once', async () => {
    // Arrange
    const store = openSqliteStore({ file: ':memory:' });
    const records = [entry('soc', 'report'), entry('lead', 'report')];
    for (const n of records) await store.enqueueNotification(n);
    const sender = countingSender();
    const dispatcher = new OutboxDispatcher(store, sender, silentLogger, () => new Date(T0));

    // Act
    await Promise.all([dispatcher.deliver(records), dispatcher.deliver(records)]);

    // Assert
    expect(sender.sends.sort()).toEqual(records.map((n) => n.key).sort());
    expect((await stored(store)).map((n) => n.status)).toEqual(['sent', 'sent']);
    await store.close();
  });

  it('one delivery handed the same record twice sends it once', async () => {
    // Arrange
    const { store, n, sender } = await oneQueued();

    // Act
    const out = await new OutboxDispatcher(store, sender, silentLogger).deliver([n, { ...n }], { fresh: true });

    // Assert
    expect(sender.sends).toEqual([n.key]);
    expect(out.map((r) => r.status)).toEqual(['sent']);
    await store.close();
  });

  it('does not send a record seen as queued when the store says it was sent meanwhile (read again after the claim)', async () => {
    // Arrange: a "queued" view taken before another attempt sent the record; that attempt's claim has expired since
    const { store, n: view, sender } = await oneQueued();
    await new OutboxDispatcher(store, sender, silentLogger, () => new Date(T0)).deliver([view], { fresh: true });
    const later = new OutboxDispatcher(store, sender, silentLogger, () => new Date(T0 + 10 * 60_000));

    // Act
    const out = await later.deliver([view]);

    // Assert
    expect(sender.sends).toEqual([view.key]);
    expect(out[0]?.status).toBe('sent');
    await store.close();
  });

  it('sends records the caller marks fresh without reading the store again', async () => {
    // Arrange
    const real = openSqliteStore({ file: ':memory:' });
    const n = entry('soc', 'report');
    await real.enqueueNotification(n);
    const { store, calls: reads } = countingStore(real, 'listNotifications');
    const sender = countingSender();

    // Act
    await new OutboxDispatcher(store, sender, silentLogger).deliver([n], { fresh: new Set([n.key]) });

    // Assert
    expect(sender.sends).toEqual([n.key]);
    expect(reads()).toBe(0);
    await real.close();
  });
});

/**
 * A channel whose sends each take `ms` of the injected clock; `midway` runs halfway through each send (what
 * another worker does meanwhile). Sends are listed as `worker key`.
 */
function slowSender(clock: { now: number }, ms: number, sends: string[], midway: () => Promise<void> = noWait): ChannelSender {
  return {
    send: async (n) => {
      clock.now += ms / 2;
      await midway();
      clock.now += ms / 2;
      sends.push(`slow ${n.key}`);
    },
  };
}

/** Another worker's drain at the injected time, sending through its own (fast) channel. */
function otherWorker(store: Store, clock: { now: number }, sends: string[]): OutboxDispatcher {
  return new OutboxDispatcher(store, { send: async (n) => void sends.push(`other ${n.key}`) }, silentLogger, () => new Date(clock.now));
}

/** Three queued records on an in-memory store, a clock both workers read, and another worker sending through its own channel. */
async function threeQueuedAndAnotherWorker() {
  const store = openSqliteStore({ file: ':memory:' });
  const records = [entry('a-soc', 'report'), entry('b-lead', 'report'), entry('c-ciso', 'report')];
  for (const n of records) await store.enqueueNotification(n);
  const clock = { now: T0 };
  const sends: string[] = [];
  return { store, records, clock, sends, other: otherWorker(store, clock, sends) };
}

describe('a claim outlived by slow sends', () => {
  it('does not send a record whose claim expired while earlier sends were slow and another worker took it over', async () => {
    // Arrange: three fresh records, sends of 130 s each; during the second send (at +195 s) another worker
    // drains, after the third record's claim (taken at 0, 120 s) has expired
    const { store, records, clock, sends, other } = await threeQueuedAndAnotherWorker();
    let drains = 0;
    const sender = slowSender(clock, 130_000, sends, async () => {
      if (clock.now > T0 + 120_000 && drains++ === 0) await other.drain();
    });

    // Act
    const out = await new OutboxDispatcher(store, sender, silentLogger, () => new Date(clock.now)).deliver(records, { fresh: true });

    // Assert: each record sent once; the third by the worker that took it over
    const [a, b, c] = records.map((n) => n.key);
    expect(sends.sort()).toEqual([`other ${c}`, `slow ${a}`, `slow ${b}`]);
    expect((await stored(store)).map((n) => [n.key, n.status, n.attempts])).toEqual([
      [a, 'sent', 1],
      [b, 'sent', 1],
      [c, 'sent', 1],
    ]);
    expect(out.map((n) => n.status)).toEqual(['sent', 'sent', 'queued']);
    await store.close();
  });

  it('renews its claim and sends when nobody took the record over, keeping other workers out during the send', async () => {
    // Arrange: three fresh records, sends of 50 s each; during the third send (at +125 s, past the original
    // claim's expiry) another worker drains
    const { store, records, clock, sends, other } = await threeQueuedAndAnotherWorker();
    let drained = -1;
    const sender = slowSender(clock, 50_000, sends, async () => {
      if (clock.now > T0 + 120_000) drained = await other.drain();
    });

    // Act
    const out = await new OutboxDispatcher(store, sender, silentLogger, () => new Date(clock.now)).deliver(records, { fresh: true });

    // Assert
    expect(drained).toBe(0);
    expect(sends.sort()).toEqual(records.map((n) => `slow ${n.key}`));
    expect(out.map((n) => n.status)).toEqual(['sent', 'sent', 'sent']);
    expect((await stored(store)).map((n) => [n.status, n.attempts])).toEqual([
      ['sent', 1],
      ['sent', 1],
      ['sent', 1],
    ]);
    await store.close();
  });

  it('reads a record again after renewing its claim, and does not send it when another worker sent it meanwhile', async () => {
    // Arrange: four fresh records, sends of 100 s each; during the second send (at +150 s) another worker is
    // handed the last record, whose claim expired at +120 s, and sends it; its own claim has expired (at
    // +270 s) when this delivery reaches that record (at +300 s)
    const store = openSqliteStore({ file: ':memory:' });
    const records = [entry('a-soc', 'report'), entry('b-lead', 'report'), entry('c-ciso', 'report'), entry('d-noc', 'report')];
    for (const n of records) await store.enqueueNotification(n);
    const clock = { now: T0 };
    const sends: string[] = [];
    const other = otherWorker(store, clock, sends);
    const last = records[3] as NotificationRecord;
    let handed = false;
    const sender = slowSender(clock, 100_000, sends, async () => {
      if (clock.now > T0 + 120_000 && !handed) {
        handed = true;
        await other.deliver([last]);
      }
    });

    // Act
    const out = await new OutboxDispatcher(store, sender, silentLogger, () => new Date(clock.now)).deliver(records, { fresh: true });

    // Assert
    const [a, b, c, d] = records.map((n) => n.key);
    expect(sends.sort()).toEqual([`other ${d}`, `slow ${a}`, `slow ${b}`, `slow ${c}`]);
    expect(out.map((n) => n.status)).toEqual(['sent', 'sent', 'sent', 'sent']);
    await store.close();
  });
});

describe('the retry policy', () => {
  const at = (attempts: number) => nextAttemptAt({ createdAt: '2026-11-27T00:00:00.000Z', attempts }) - T0;

  it('waits 30 s after the first attempt, doubling each time: createdAt + 30 s·(2^attempts − 1)', () => {
    expect([0, 1, 2, 3, 7].map(at)).toEqual([0, 30_000, 90_000, 210_000, 3_810_000]);
  });

  it('never waits more than an hour between two attempts', () => {
    // 30 s · 2^7 = 64 min: capped at 60 min, and every later wait too
    expect(at(8) - at(7)).toBe(3_600_000);
    expect(at(20) - at(19)).toBe(3_600_000);
    expect(OUTBOX_RETRY.maxAttempts).toBe(8);
  });

  it('is due from that moment on, and an unreadable createdAt counts as due', () => {
    const n = { createdAt: '2026-11-27T00:00:00.000Z', attempts: 1 };

    expect(isDue(n, new Date(T0 + 29_999))).toBe(false);
    expect(isDue(n, new Date(T0 + 30_000))).toBe(true);
    expect(isDue({ createdAt: 'garbage', attempts: 3 }, new Date(T0))).toBe(true);
  });
});

describe('draining the outbox (injected clock)', () => {
  it('retries a failed send once it is due and sends it when the channel has recovered, skipping it before', async () => {
    // Arrange: the first attempt fails
    const store = openSqliteStore({ file: ':memory:' });
    await store.enqueueNotification(entry('soc', 'report'));
    let now = T0;
    let down = true;
    const sender = countingSender(() => down);
    const dispatcher = new OutboxDispatcher(store, sender, silentLogger, () => new Date(now));
    await dispatcher.drain();
    down = false;

    // Act: a drain before the entry is due again, then one when it is
    now = T0 + 29_000;
    const early = await dispatcher.drain();
    now = T0 + 30_000;
    const due = await dispatcher.drain();

    // Assert
    expect(early).toBe(0);
    expect(due).toBe(1);
    expect(sender.sends).toHaveLength(1);
    expect(await stored(store)).toEqual([expect.objectContaining({ status: 'sent', attempts: 2 })]);
    await store.close();
  });

  it('sends only the entries that are due', async () => {
    // Arrange: one new entry, one that failed twice a minute ago (due again at +90 s)
    const store = openSqliteStore({ file: ':memory:' });
    const fresh = entry('soc', 'report');
    const retried = { ...entry('lead', 'report'), attempts: 2 };
    await store.enqueueNotification(fresh);
    await store.enqueueNotification(retried);
    const sender = countingSender();

    // Act
    const sent = await new OutboxDispatcher(store, sender, silentLogger, () => new Date(T0 + 60_000)).drain();

    // Assert
    expect(sent).toBe(1);
    expect(sender.sends).toEqual([fresh.key]);
    expect((await stored(store)).find((n) => n.key === retried.key)?.status).toBe('queued');
    await store.close();
  });

  it('abandons an entry that always fails after 8 attempts: failed, its last error kept, one error-level event without the payload', async () => {
    // Arrange
    const store = openSqliteStore({ file: ':memory:' });
    await store.enqueueNotification(entry('soc', 'SECRET first report text'));
    let now = T0;
    const sender = countingSender(() => true);
    const { log, lines } = recordingLog();
    const dispatcher = new OutboxDispatcher(store, sender, log, () => new Date(now));

    // Act: a drain each time the entry is due, and two more
    for (let i = 0; i < 10; i++) {
      const [n] = await stored(store);
      if (n) now = Math.max(now, nextAttemptAt(n));
      await dispatcher.drain();
    }

    // Assert
    expect(await stored(store)).toEqual([expect.objectContaining({ status: 'failed', attempts: 8, lastError: 'Error: teams 503' })]);
    const abandoned = lines.filter((l) => l.event === 'notification.abandoned');
    expect(abandoned).toEqual([
      expect.objectContaining({ level: 'error', tenantId: TENANT, caseId: 'case-1', step: 'notify', channel: 'email', attempts: 8 }),
    ]);
    expect(JSON.stringify(lines)).not.toContain('SECRET');
    await store.close();
  });
});

describe('recording the outcome of a send', () => {
  it('never sends again a record whose sent mark the store keeps refusing: the claim is kept and the loss logged', async () => {
    // Arrange
    const real = openSqliteStore({ file: ':memory:' });
    await real.enqueueNotification(entry('soc', 'report'));
    const store = failingMarks(real, (u) => u.status === 'sent');
    const sender = countingSender();
    const { log, lines } = recordingLog();

    // Act: a delivery whose mark fails, then a drain on a healthy store at once
    const out = await new OutboxDispatcher(store, sender, log, () => new Date(T0), { sleep: noWait }).drain();
    const again = await new OutboxDispatcher(real, sender, silentLogger, () => new Date(T0 + 1_000)).drain();

    // Assert
    expect(out).toBe(1);
    expect(again).toBe(0);
    expect(sender.sends).toHaveLength(1);
    expect(store.markCalls()).toBe(3);
    expect(lines.filter((l) => l.event === 'notification.sent.unrecorded')).toEqual([
      expect.objectContaining({ level: 'error', tenantId: TENANT, caseId: 'case-1', step: 'notify' }),
    ]);
    await real.close();
  });

  it('writes a refused sent mark once the store answers again, and never sends the record again, even after its claim expired', async () => {
    // Arrange: the store refuses every mark during the first drain
    const real = openSqliteStore({ file: ':memory:' });
    await real.enqueueNotification(entry('soc', 'report'));
    let down = true;
    const store = failingMarks(real, () => down);
    const sender = countingSender();
    let now = T0;
    const dispatcher = new OutboxDispatcher(store, sender, silentLogger, () => new Date(now), { sleep: noWait });
    await dispatcher.drain();
    down = false;

    // Act: a drain after the claim has expired
    now = T0 + 10 * 60_000;
    const again = await dispatcher.drain();

    // Assert
    expect(again).toBe(0);
    expect(sender.sends).toHaveLength(1);
    expect(await stored(real)).toEqual([expect.objectContaining({ status: 'sent', attempts: 1 })]);
    await real.close();
  });

  it('tries the sent mark again when the store refuses it once', async () => {
    // Arrange
    const real = openSqliteStore({ file: ':memory:' });
    await real.enqueueNotification(entry('soc', 'report'));
    let refusals = 1;
    const store = failingMarks(real, () => refusals-- > 0);
    const sender = countingSender();

    // Act
    await new OutboxDispatcher(store, sender, silentLogger, () => new Date(T0), { sleep: noWait }).drain();

    // Assert
    expect(sender.sends).toHaveLength(1);
    expect(await stored(real)).toEqual([expect.objectContaining({ status: 'sent', attempts: 1 })]);
    await real.close();
  });

  it('gives back the claims of the records a delivery stopped by a store error did not send', async () => {
    // Arrange: the first send fails and the store cannot record that; the second record is never reached
    const real = openSqliteStore({ file: ':memory:' });
    const first = entry('a-soc', 'report');
    const second = entry('b-lead', 'report');
    await real.enqueueNotification(first);
    await real.enqueueNotification(second);
    const store = failingMarks(real, (u) => u.status === 'queued');
    const flaky = countingSender((n) => n.key === first.key);

    // Act
    const stopped = new OutboxDispatcher(store, flaky, silentLogger, () => new Date(T0)).deliver([first, second]);
    await expect(stopped).rejects.toBeInstanceOf(StoreUnavailableError);
    const healthy = countingSender();
    const sent = await new OutboxDispatcher(real, healthy, silentLogger, () => new Date(T0 + 1_000)).drain();

    // Assert: nothing sent by the stopped delivery, both sent at once by the next one (no 2-minute wait)
    expect(flaky.sends).toEqual([]);
    expect(sent).toBe(2);
    expect(healthy.sends.sort()).toEqual([first.key, second.key].sort());
    await real.close();
  });
});

describe('the drain loop of a long-running process', () => {
  afterEach(() => jest.useRealTimers());

  it('drains once per interval, one drain at a time, logs a failed drain and goes on, and stop waits for the drain in progress', async () => {
    // Arrange: the first drain fails, the second hangs until released
    jest.useFakeTimers();
    const { log, lines } = recordingLog();
    let calls = 0;
    let finish: () => void = () => undefined;
    const dispatcher = {
      drain: async (): Promise<number> => {
        calls++;
        if (calls === 1) throw new StoreUnavailableError('sqlite busy');
        await new Promise<void>((r) => {
          finish = r;
        });
        return 2;
      },
    };

    // Act
    const loop = startDrainLoop(dispatcher, log, 60_000);
    await jest.advanceTimersByTimeAsync(59_999);
    const beforeFirst = calls;
    await jest.advanceTimersByTimeAsync(1);
    const afterFirst = calls;
    await jest.advanceTimersByTimeAsync(60_000 + 300_000);
    const whileHanging = calls;
    let stopped = false;
    const stopping = loop.stop().then(() => {
      stopped = true;
    });
    await jest.advanceTimersByTimeAsync(0);
    const stoppedBeforeFinish = stopped;
    finish();
    await stopping;
    await jest.advanceTimersByTimeAsync(600_000);

    // Assert
    expect([beforeFirst, afterFirst, whileHanging]).toEqual([0, 1, 2]);
    expect(stoppedBeforeFinish).toBe(false);
    expect(calls).toBe(2);
    expect(lines.map((l) => [l.event, l.level])).toEqual([
      ['outbox.drain.failed', 'warn'],
      ['outbox.drained', 'info'],
    ]);
  });
});

describe('the JSON-lines channel', () => {
  it('writes a key once, also when another channel on the same file sends it again', async () => {
    // Arrange
    const file = join(scratch(), 'outbox.jsonl');
    const n = entry('soc', 'report');

    // Act
    await new FileChannel(file).send(n);
    await new FileChannel(file).send(n);
    await new FileChannel(file).send(entry('lead', 'report'));

    // Assert
    const keys = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { key: string }).key);
    expect(keys).toEqual([n.key, entry('lead', 'report').key]);
  });

  it('knows the keys already in an existing file, and starts a new line after a line torn by a crash', async () => {
    // Arrange: a file written by an earlier process, its last line cut short
    const file = join(scratch(), 'outbox.jsonl');
    const n = entry('soc', 'report');
    appendFileSync(file, `${JSON.stringify({ key: n.key, message: 'report' })}\n{"key":"torn`);

    // Act
    await new FileChannel(file).send(n);
    await new FileChannel(file).send(entry('lead', 'report'));

    // Assert
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[1]).toBe('{"key":"torn');
    expect((JSON.parse(lines[2] ?? '') as { key: string }).key).toBe(entry('lead', 'report').key);
    expect(lines[3]).toBe('');
  });
});
