/**
 * The outbox against time: what a drain reads, a send that outlasts its claim, and a retry's backoff on
 * a redelivery. Time is an injected clock and injected timers fired by the test; nothing waits.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PolicyRegistry } from '../../../shared/config/policy';
import { silentLogger } from '../../../shared/log';
import { type ChannelSender, dueCutoffs, isDue, OUTBOX_RETRY, OutboxDispatcher } from '../../../shared/notify/outbox';
import { Pipeline } from '../../../shared/pipeline/pipeline';
import type { NotificationRecord, Store } from '../../../shared/store/port';
import { openSqliteStore } from '../../../shared/store/sqlite';
import { createBrain } from '../../../shared/triage/brain';
import { ROOT, SAMPLES } from '../../helpers/cli';
import { settle, virtualTime } from '../../helpers/virtualTime';

const TENANT = '8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b';
const T0 = Date.parse('2026-11-27T00:00:00.000Z');
const at = (ms: number): string => new Date(T0 + ms).toISOString();

function entry(name: string, options: { createdAt?: string; attempts?: number } = {}): NotificationRecord {
  return {
    key: `${TENANT}|case-1|first-report|${name}|email`,
    tenantId: TENANT,
    caseId: 'case-1',
    revision: 1,
    kind: 'first-report',
    channel: 'email',
    recipient: `${name} <${name}@contoso.example>`,
    payload: 'report',
    createdAt: options.createdAt ?? at(0),
    status: 'queued',
    attempts: options.attempts ?? 0,
  };
}

/** A channel whose sends hang until the test answers them. */
function hangingChannel() {
  const calls: { key: string; signal: AbortSignal | undefined; answer: () => void }[] = [];
  const channel: ChannelSender = {
    send: (n, signal) =>
      new Promise<void>((resolve) => {
        calls.push({ key: n.key, signal, answer: resolve });
      }),
  };
  return { channel, calls };
}

/** One queued entry on a store, and a dispatcher on virtual time whose channel hangs until told to answer. */
async function oneEntryOnAHangingChannel() {
  const store = openSqliteStore({ file: ':memory:' });
  await store.enqueueNotification(entry('soc'));
  const time = virtualTime(T0);
  const { channel, calls } = hangingChannel();
  const dispatcher = new OutboxDispatcher(store, channel, silentLogger, () => new Date(time.clock.now), { setTimer: time.setTimer });
  return { store, time, calls, dispatcher };
}

/** Another worker's dispatcher on the same store and clock, sending through its own channel. */
function otherWorker(store: Store, clock: { now: number }, sends: string[]): OutboxDispatcher {
  return new OutboxDispatcher(store, { send: async (n) => void sends.push(n.key) }, silentLogger, () => new Date(clock.now));
}

describe('the due cut-offs the drain hands the store', () => {
  it('are now minus the wait of each attempts count, one per count up to maxAttempts', () => {
    const cutoffs = dueCutoffs(new Date(T0));

    expect(cutoffs.slice(0, 4)).toEqual([at(0), at(-30_000), at(-90_000), at(-210_000)]);
    expect(cutoffs).toHaveLength(OUTBOX_RETRY.maxAttempts + 1);
  });

  it('say exactly what isDue says, to the millisecond, for every attempts count', () => {
    const now = new Date(T0);
    const cutoffs = dueCutoffs(now);
    const disagreements: string[] = [];
    for (let attempts = 0; attempts <= OUTBOX_RETRY.maxAttempts; attempts++) {
      const boundary = Date.parse(cutoffs[attempts] as string);
      for (const createdAt of [boundary - 1, boundary, boundary + 1].map((ms) => new Date(ms).toISOString())) {
        const byCutoff = createdAt <= (cutoffs[attempts] as string);
        if (byCutoff !== isDue({ createdAt, attempts }, now)) disagreements.push(`${attempts} ${createdAt}`);
      }
    }

    expect(disagreements).toEqual([]);
  });

  it('say what isDue says for an entry with more attempts than the policy allows: the last cut-off', () => {
    // Arrange: entries left with 4 to 7 attempts by a policy that allowed 8, read under one that allows 3
    const policy = { ...OUTBOX_RETRY, maxAttempts: 3 };
    const now = new Date(T0);
    const last = dueCutoffs(now, policy).at(-1) as string;
    const boundary = Date.parse(last);

    // Act
    const verdicts = [4, 5, 7].flatMap((attempts) =>
      [boundary - 1, boundary, boundary + 1].map((ms) => isDue({ createdAt: new Date(ms).toISOString(), attempts }, now, policy)),
    );

    // Assert
    expect(verdicts).toEqual([4, 5, 7].flatMap(() => [true, true, false]));
  });
});

/** `store` with the number of rows each read of queued entries (a drain's) answered, in `answers`. */
function countingQueuedReads(store: Store): { store: Store; answers: number[] } {
  const answers: number[] = [];
  const counted = new Proxy(store, {
    get(target, prop) {
      if (prop === 'listNotifications') {
        return async (filter: Parameters<Store['listNotifications']>[0]) => {
          const rows = await target.listNotifications(filter);
          if (filter.status === 'queued') answers.push(rows.length);
          return rows;
        };
      }
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { store: counted, answers };
}

describe('what a drain reads', () => {
  it('reads only the due entries from the store, not the backlog waiting out its backoff', async () => {
    // Arrange: three entries that failed twice (due again at +90 s) and one new entry; the drain runs at +60 s
    const store = openSqliteStore({ file: ':memory:' });
    for (const name of ['a', 'b', 'c']) await store.enqueueNotification(entry(name, { attempts: 2 }));
    await store.enqueueNotification(entry('new', { createdAt: at(59_000) }));
    const { store: counted, answers } = countingQueuedReads(store);
    const sends: string[] = [];

    // Act
    const sent = await otherWorker(counted, { now: T0 + 60_000 }, sends).drain();

    // Assert
    expect(sent).toBe(1);
    expect(sends).toEqual([entry('new').key]);
    expect(answers).toEqual([1]);
    await store.close();
  });

  it('sends every entry the store lists, even one left with more attempts than the policy allows, so such a backlog never fills a drain', async () => {
    // Arrange: 500 entries with 5 attempts left by a policy that allowed 8, read under one that allows 3 (the
    // store lists them from the last cut-off on: +210 s); then a first attempt a crash interrupted, at +300 s
    const store = openSqliteStore({ file: ':memory:' });
    for (let i = 0; i < 500; i++) await store.enqueueNotification(entry(`r${String(i).padStart(3, '0')}`, { attempts: 5 }));
    await store.enqueueNotification(entry('interrupted', { createdAt: at(300_000) }));
    const sends: string[] = [];
    const retry = { ...OUTBOX_RETRY, maxAttempts: 3 };
    const worker = new OutboxDispatcher(store, { send: async (n) => void sends.push(n.key) }, silentLogger, () => new Date(T0 + 400_000), {
      retry,
    });

    // Act
    const first = await worker.drain();
    const second = await worker.drain();

    // Assert
    expect([first, second]).toEqual([500, 1]);
    expect(sends.at(-1)).toBe(entry('interrupted').key);
    await store.close();
  });

  it('reads at most 500 entries per drain, the oldest, and sends them; the next drain takes the rest', async () => {
    // Arrange: 501 due entries, one created after the others
    const store = openSqliteStore({ file: ':memory:' });
    for (let i = 0; i < 500; i++) await store.enqueueNotification(entry(`r${String(i).padStart(3, '0')}`));
    await store.enqueueNotification(entry('latest', { createdAt: at(1) }));
    const { store: counted, answers } = countingQueuedReads(store);
    const sends: string[] = [];
    const worker = otherWorker(counted, { now: T0 + 1_000 }, sends);

    // Act
    const first = await worker.drain();
    const second = await worker.drain();

    // Assert
    expect(answers).toEqual([500, 1]);
    expect([first, second]).toEqual([500, 1]);
    expect(sends.at(-1)).toBe(entry('latest').key);
    await store.close();
  });
});

describe('a send that outlasts its claim', () => {
  it('keeps its claim alive while the send hangs: another worker draining after the claim would have expired does not send it', async () => {
    // Arrange: a drain whose send hangs; another worker drains at +130 s (the claim taken at 0 ran 120 s)
    const { store, time, calls, dispatcher: slow } = await oneEntryOnAHangingChannel();
    const draining = slow.drain();
    await settle();
    const otherSends: string[] = [];

    // Act
    await time.advanceTo(130_000);
    const taken = await otherWorker(store, time.clock, otherSends).drain();

    // Assert
    expect(calls.map((c) => c.key)).toEqual([entry('soc').key]);
    expect(taken).toBe(0);
    expect(otherSends).toEqual([]);
    calls[0]?.answer();
    await draining;
    await store.close();
  });

  it('gives up waiting after 45 s: the channel is told to stop, the attempt counts as failed, and the claim is kept until it expires', async () => {
    // Arrange
    const { store, time, calls, dispatcher: slow } = await oneEntryOnAHangingChannel();
    let drained: number | undefined;
    void slow.drain().then((n) => {
      drained = n;
    });
    await settle();
    const otherSends: string[] = [];
    const other = otherWorker(store, time.clock, otherSends);

    // Act: the deadline passes; another worker drains once the entry is due again (+30 s) but before the
    // claim (renewed at +40 s for 120 s) expires, then after
    await time.advanceTo(45_000);
    const stored = await store.listNotifications({ tenantId: TENANT });
    const whileClaimed = await other.drain();
    await time.advanceTo(161_000);
    const afterExpiry = await other.drain();

    // Assert
    expect(drained).toBe(0);
    expect(calls[0]?.signal?.aborted).toBe(true);
    expect(stored).toEqual([
      expect.objectContaining({ status: 'queued', attempts: 1, lastError: expect.stringMatching(/^TimeoutError: /) }),
    ]);
    expect(time.pending()).toBe(0);
    expect(whileClaimed).toBe(0);
    expect(afterExpiry).toBe(1);
    expect(otherSends).toEqual([entry('soc').key]);
    await store.close();
  });

  it('records a send that answers after its deadline as sent, so no other worker sends it again', async () => {
    // Arrange: the deadline has passed (attempt 1 counted as failed)
    const { store, time, calls, dispatcher: slow } = await oneEntryOnAHangingChannel();
    const draining = slow.drain();
    await settle();
    await time.advanceTo(45_000);
    const otherSends: string[] = [];

    // Act: the channel answers after all, at +50 s; another worker drains once the claim has expired
    await time.advanceTo(50_000);
    calls[0]?.answer();
    await settle();
    await time.advanceTo(300_000);
    const taken = await otherWorker(store, time.clock, otherSends).drain();

    // Assert
    expect(await draining).toBe(0);
    expect(taken).toBe(0);
    expect(otherSends).toEqual([]);
    expect(await store.listNotifications({ tenantId: TENANT })).toEqual([expect.objectContaining({ status: 'sent', attempts: 1 })]);
    await store.close();
  });

  it('leaves no timer behind once a send has answered', async () => {
    // Arrange
    const { store, time, calls, dispatcher } = await oneEntryOnAHangingChannel();
    const draining = dispatcher.drain();
    await settle();
    const during = time.pending();

    // Act
    calls[0]?.answer();
    const sent = await draining;

    // Assert
    expect(during).toBe(2); // the heartbeat and the deadline
    expect(sent).toBe(1);
    expect(time.pending()).toBe(0);
    await store.close();
  });
});

describe('a redelivery of an alert whose notification failed', () => {
  /** A pipeline on in-memory SQLite with an injected clock, whose channel fails while `down`. */
  function pipelineWithFlakyChannel() {
    const store = openSqliteStore({ file: ':memory:' });
    const clock = { now: T0 };
    const state = { down: true, sends: [] as string[] };
    const channel: ChannelSender = {
      send: async (n) => {
        if (state.down) throw new Error('teams 503');
        state.sends.push(n.key);
      },
    };
    const now = () => new Date(clock.now);
    const pipeline = new Pipeline({
      store,
      policies: PolicyRegistry.fromDirectory(join(ROOT, 'policies')),
      brain: createBrain(),
      log: silentLogger,
      dispatcher: new OutboxDispatcher(store, channel, silentLogger, now),
      clock: now,
      backoffMs: 1,
    });
    return { store, pipeline, clock, state };
  }

  it('waits for the backoff of the failed entries: not sent 10 s after the failure, sent once due (30 s)', async () => {
    // Arrange: the first delivery's sends all fail (attempt 1); the channel then recovers
    const { store, pipeline, clock, state } = pipelineWithFlakyChannel();
    const incident = readFileSync(join(SAMPLES, 'incident-create-bruteforce.json'), 'utf8');
    const http = { kind: 'incident' as const, source: 'test' };
    const first = await pipeline.ingestText(incident, http);
    state.down = false;

    // Act: the same incident again at +10 s, then at +30 s
    clock.now = T0 + 10_000;
    const early = await pipeline.ingestText(incident, http);
    const sendsEarly = state.sends.length;
    clock.now = T0 + 30_000;
    const due = await pipeline.ingestText(incident, http);

    // Assert
    const tenantId = first.items[0]?.tenantId;
    const outbox = await store.listNotifications({ tenantId });
    expect(outbox.length).toBeGreaterThan(0);
    expect([early.items[0]?.status, due.items[0]?.status]).toEqual(['duplicate', 'duplicate']);
    expect(sendsEarly).toBe(0);
    expect(state.sends.sort()).toEqual(outbox.map((n) => n.key).sort());
    expect(outbox.map((n) => [n.status, n.attempts])).toEqual(outbox.map(() => ['sent', 2]));
    await store.close();
  });

  it('still sends an entry not tried yet at once, whatever its createdAt says', async () => {
    // Arrange: an entry created "later" than this process's clock (another instance's clock runs ahead)
    const store = openSqliteStore({ file: ':memory:' });
    const ahead = entry('soc', { createdAt: at(5_000) });
    await store.enqueueNotification(ahead);
    const sends: string[] = [];

    // Act
    const out = await otherWorker(store, { now: T0 }, sends).deliver([ahead]);

    // Assert
    expect(sends).toEqual([ahead.key]);
    expect(out.map((n) => n.status)).toEqual(['sent']);
    await store.close();
  });
});
