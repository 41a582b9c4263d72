/**
 * Two processes writing one SQLite file. Two SqliteStore instances on one file in this test process
 * are two connections, which is what two processes are to SQLite: each has its own in-memory index and
 * its own view of the log. Interleavings are forced with pass-through wrappers around the real stores.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PolicyRegistry } from '../../shared/config/policy';
import { createLogger, silentLogger } from '../../shared/log';
import { OutboxDispatcher } from '../../shared/notify/outbox';
import { Pipeline } from '../../shared/pipeline/pipeline';
import type { NotificationRecord, Store } from '../../shared/store/port';
import { openSqliteStore, type SqliteStore } from '../../shared/store/sqlite';
import { createBrain } from '../../shared/triage/brain';
import { ROOT } from '../helpers/cli';
import { countingStore } from '../helpers/countingStore';
import { signal } from '../helpers/signal';
import { caseRecord, notification, parked, sighting } from './fixtures';

let dir: string;
const opened: SqliteStore[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'triage-sqlite-processes-'));
});

afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

/** One connection to `file`, as one process would open it. */
function connect(file: string): SqliteStore {
  const s = openSqliteStore({ file, now: () => Date.parse('2024-05-02T00:00:00.000Z') });
  opened.push(s);
  return s;
}

describe('a SQLite look-up answer tells whether another connection committed correlation rows after it', () => {
  const at = '2024-05-01T10:00:00.000Z';
  const q = { tenantId: 't', keys: ['host:h1'], from: '2024-04-24T10:00:00.000Z', to: '2024-05-08T10:00:00.000Z', limitPerKey: 10 };
  const put = (store: Store, caseId: string) => store.putCase(caseRecord('t', caseId), [sighting('t', caseId, 'host:h1', at)], undefined);

  it('says so for an answer read before the other connection committed, not for one read after', async () => {
    const file = join(dir, 'two.db');
    const a = connect(file);
    const b = connect(file);
    const before = await a.findRelated(q);

    await put(b, 'b-1');
    const after = await a.findRelated(q);
    await put(a, 'a-1');

    expect(before.sightings).toEqual([]);
    expect(before.othersCommittedSince?.()).toBe(true);
    expect(after.sightings.map((s) => s.caseId)).toEqual(['b-1']);
    expect(after.othersCommittedSince?.()).toBe(false);
  });

  it("finds the other connection's rows even when another look-up read them before this case's own write", async () => {
    const file = join(dir, 'caught-up.db');
    const a = connect(file);
    const b = connect(file);
    const first = await a.findRelated(q);

    await put(b, 'b-1');
    await a.findRelated(q); // another case's look-up in process A catches the index up
    await put(a, 'a-1');

    expect(first.othersCommittedSince?.()).toBe(true);
  });

  it("does not count the other connection's writes that are not correlation rows, nor its own writes", async () => {
    const file = join(dir, 'quiet.db');
    const a = connect(file);
    const b = connect(file);
    await put(b, 'b-0');
    const answer = await a.findRelated(q);

    await b.park(parked('p-1', '2024-05-01T10:01:00.000Z', 't'));
    await b.enqueueNotification(notification('t', 'b-0', 'soc@example.com'));
    await Promise.all([put(a, 'a-1'), put(a, 'a-2')]);
    await a.unitOfWork(async () => {
      await put(a, 'a-3');
    });

    expect(answer.othersCommittedSince?.()).toBe(false);
  });

  it("finds the other connection's row that took the seq of its own rolled-back row", async () => {
    const file = join(dir, 'reused.db');
    const a = connect(file);
    const b = connect(file);
    await a.warm();
    await expect(
      a.unitOfWork(async () => {
        await put(a, 'a-lost');
        throw new Error('batch failed');
      }),
    ).rejects.toThrow('batch failed');
    const answer = await a.findRelated(q);

    await put(b, 'b-1'); // its log row gets the seq a-lost had
    await put(a, 'a-1');

    expect(answer.othersCommittedSince?.()).toBe(true);
  });
});

/**
 * Two processes (two pipelines, each on its own connection) triage two related alerts of the example
 * attack chain (brute force, then C2 beaconing from the same VPN gateway: a kill-chain progression).
 */
describe('two processes triaging related alerts at the same moment on one SQLite file', () => {
  const chain = readFileSync(join(ROOT, 'examples', 'attack-chain.ndjson'), 'utf8')
    .trim()
    .split('\n');
  const alerts = { kind: 'alerts' as const, source: 'test' };

  /** Hooks around one process's store calls; `n` counts that process's look-ups from 0. */
  interface Gates {
    readonly afterLookup?: (n: number) => Promise<void> | undefined;
    readonly beforePut?: () => Promise<unknown> | undefined;
  }

  /** The real store, with look-ups and writes held by `gates`: how the test forces an interleaving of two processes. */
  function gated(store: Store, gates: Gates): Store {
    let lookups = 0;
    return new Proxy(store, {
      get(target, prop) {
        if (prop === 'findRelated')
          return async (...args: Parameters<Store['findRelated']>) => {
            const n = lookups++;
            const answer = await target.findRelated(...args);
            await gates.afterLookup?.(n);
            return answer;
          };
        if (prop === 'putCase')
          return async (...args: Parameters<Store['putCase']>) => {
            await gates.beforePut?.();
            return target.putCase(...args);
          };
        const v: unknown = Reflect.get(target, prop, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  }

  /** What the processes of one test sent and logged. */
  interface Outputs {
    readonly sends: string[];
    readonly events: string[];
  }

  /** One process's pipeline; what it sends and logs goes to `out`. */
  function processOn(store: Store, out: Outputs = { sends: [], events: [] }): Pipeline {
    return new Pipeline({
      store,
      policies: PolicyRegistry.fromDirectory(join(ROOT, 'policies')),
      brain: createBrain(),
      log: createLogger({ level: 'info', sink: (line) => void out.events.push((JSON.parse(line) as { event: string }).event) }),
      dispatcher: new OutboxDispatcher(store, { send: async (n: NotificationRecord) => void out.sends.push(n.key) }, silentLogger),
      backoffMs: 1,
    });
  }

  it('revises the case committed second to the verdict arrival one after the other gives, when both looked up before either commit', async () => {
    // Arrange: what the second alert gets when it arrives after the first (one process, in turn)
    const sequential = processOn(connect(join(dir, 'sequential.db')));
    await sequential.ingestText(chain[0] as string, alerts);
    const inTurn = (await sequential.ingestText(chain[1] as string, alerts)).items[0]?.result;
    // …and the forced interleaving: A looks up, B looks up, A commits, B commits
    const file = join(dir, 'shared.db');
    const out: Outputs = { sends: [], events: [] };
    let arrivals = 0;
    const bothLookedUp = signal();
    const firstLookupsMeet = (n: number) => {
      if (n > 0) return undefined;
      if (++arrivals === 2) bothLookedUp.fire();
      return bothLookedUp.done;
    };
    // B writes once A is done (its commit and its deliveries): two connections in one thread must not both
    // hold a write lock, or the one waiting blocks the thread the other needs to commit.
    const aDone = signal();
    const a = processOn(gated(connect(file), { afterLookup: firstLookupsMeet }), out);
    const b = processOn(gated(connect(file), { afterLookup: firstLookupsMeet, beforePut: () => aDone.done }), out);

    // Act
    const [outA, outB] = await Promise.all([
      a.ingestText(chain[0] as string, alerts).finally(() => aDone.fire()),
      b.ingestText(chain[1] as string, alerts),
    ]);

    // Assert: the first look-ups saw nothing; the case committed second was re-checked and revised
    const first = outA.items[0];
    const second = outB.items[0];
    const reader = connect(file);
    const storedA = await reader.getCase(first?.tenantId as string, first?.caseId as string);
    const storedB = await reader.getCase(second?.tenantId as string, second?.caseId as string);
    expect(storedA?.revision).toBe(1);
    expect(storedA?.result.killChain.relatedCaseIds).toEqual([]);
    expect(storedB?.revision).toBe(2);
    expect(storedB?.result.killChain.relatedCaseIds).toEqual([first?.caseId]);
    expect(storedB?.result.killChain.multiStage).toBe(true);
    expect(storedB?.result.killChain.detail).toBe(inTurn?.killChain.detail);
    expect(storedB?.result.severity).toBe(inTurn?.severity);
    expect(second?.result?.revision).toBe(2);
    expect(out.events.filter((e) => e === 'case.recorrelated')).toHaveLength(1);
    // …and every outbox entry (the escalation included) was sent exactly once
    const outbox = await reader.listNotifications({ tenantId: second?.tenantId as string, caseId: second?.caseId as string });
    expect(outbox.some((n) => n.kind === 'escalation' && n.revision === 2 && n.status === 'sent')).toBe(true);
    expect(new Set(out.sends).size).toBe(out.sends.length);
  });

  it('does not look again when the other process committed before the look-up (the look-up saw it)', async () => {
    const file = join(dir, 'in-turn.db');
    const a = processOn(connect(file));
    const { store: storeB, calls: lookups } = countingStore(connect(file), 'findRelated');
    const b = processOn(storeB);

    const outA = await a.ingestText(chain[0] as string, alerts);
    const outB = await b.ingestText(chain[1] as string, alerts);

    expect(outB.items[0]?.result?.killChain.relatedCaseIds).toEqual([outA.items[0]?.caseId]);
    expect(outB.items[0]?.result?.revision).toBe(1);
    expect(lookups()).toBe(1);
  });

  it('costs a process alone no store call more: one look-up per case, related alerts arriving together still correlate', async () => {
    const real = connect(join(dir, 'alone.db'));
    const { store: countingLookups, calls: lookups } = countingStore(real, 'findRelated');
    const { store, calls: reads } = countingStore(countingLookups, 'getCase');
    const alone = processOn(store);

    const outcomes = await Promise.all(chain.map((row) => alone.ingestText(row, alerts)));

    const results = outcomes.map((o) => o.items[0]?.result);
    expect(results.map((r) => r?.revision)).toEqual([1, 1, 1]);
    expect(results[2]?.killChain.relatedCaseIds).toHaveLength(2);
    expect(lookups()).toBe(chain.length);
    expect(reads()).toBe(chain.length); // the dedupe read, no re-check's
  });
});
