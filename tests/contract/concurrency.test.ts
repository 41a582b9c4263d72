import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { synthAlerts } from '../../bench/synth';
import { PolicyRegistry } from '../../shared/config/policy';
import { StoreUnavailableError } from '../../shared/errors';
import { createLogger, silentLogger } from '../../shared/log';
import { claimId, OutboxDispatcher } from '../../shared/notify/outbox';
import { Pipeline } from '../../shared/pipeline/pipeline';
import { type CosmosStore, openCosmosStore } from '../../shared/store/cosmos';
import type { NotificationRecord, Store } from '../../shared/store/port';
import { createBrain } from '../../shared/triage/brain';
import { ROOT } from '../helpers/cli';
import { type CosmosTestServer, startCosmosServer } from '../helpers/cosmosServer';
import { signal } from '../helpers/signal';

const TENANT = '8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b';

describe('two workers on the same Cosmos store', () => {
  let server: CosmosTestServer;
  const stores: CosmosStore[] = [];
  const open = async () => {
    const s = await openCosmosStore({ endpoint: server.endpoint, key: server.key, database: 'concurrency', createIfMissing: true });
    stores.push(s);
    return s;
  };

  beforeAll(async () => {
    server = await startCosmosServer();
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    await server.close();
  });

  it('processing the same events at the same time gives one result and one notification each', async () => {
    // Arrange: two independent workers (own client, own dispatcher), one shared record of channel sends
    const sends: string[] = [];
    const worker = async () => {
      const store = await open();
      return new Pipeline({
        store,
        policies: PolicyRegistry.fromDirectory(join(ROOT, 'policies')),
        brain: createBrain(),
        log: silentLogger,
        dispatcher: new OutboxDispatcher(store, { send: async (n: NotificationRecord) => void sends.push(n.key) }, silentLogger),
        backoffMs: 1,
      });
    };
    const [a, b] = [await worker(), await worker()];
    const rows = synthAlerts(20, { seed: 21, hosts: 5 });

    // Act: each event delivered to both workers concurrently
    const outcomes = await Promise.all(
      rows.map((r) => Promise.all([a.ingestText(r, { kind: 'alerts', source: 'a' }), b.ingestText(r, { kind: 'alerts', source: 'b' })])),
    );

    // Assert: per event exactly one worker triaged it, the other saw a duplicate with the same verdict
    for (const [x, y] of outcomes) {
      const statuses = [x.items[0]?.status, y.items[0]?.status].sort();
      expect(statuses).toEqual(['duplicate', 'triaged']);
      expect(x.items[0]?.result?.severity).toBe(y.items[0]?.result?.severity);
      expect(x.items[0]?.result?.revision).toBe(1);
    }
    const outbox = await stores[0]!.listNotifications({ tenantId: TENANT });
    expect(outbox.length).toBeGreaterThanOrEqual(rows.length);
    expect(sends.sort()).toEqual(outbox.map((n) => n.key).sort());
  });

  it('a send claim left by a crashed worker is taken over once it expires, not before', async () => {
    // Arrange: a queued outbox entry whose claim is held by a worker that died
    const store = await open();
    const n: NotificationRecord = {
      key: `${TENANT}|case-x|first-report|SOC on-call|email`,
      tenantId: TENANT,
      caseId: 'case-x',
      revision: 1,
      kind: 'first-report',
      channel: 'email',
      recipient: 'SOC on-call <soc@example.invalid>',
      payload: 'report',
      createdAt: new Date().toISOString(),
      status: 'queued',
      attempts: 0,
    };
    await store.enqueueNotification(n);
    const expires = new Date(Date.now() + 60_000);
    await store.acquireLease(
      { tenantId: TENANT, caseId: claimId(n.key), owner: 'dead-worker', expiresAt: expires.toISOString() },
      new Date().toISOString(),
    );
    const sent: string[] = [];
    const sender = { send: async (x: NotificationRecord) => void sent.push(x.key) };

    // Act: a drain now, then one after the claim expired
    await new OutboxDispatcher(store, sender, silentLogger).drain({ tenantId: TENANT, caseId: 'case-x' });
    const before = [...sent];
    await new OutboxDispatcher(store, sender, silentLogger, () => new Date(expires.getTime() + 1)).drain({
      tenantId: TENANT,
      caseId: 'case-x',
    });

    // Assert
    expect(before).toEqual([]);
    expect(sent).toEqual([n.key]);
    expect((await store.listNotifications({ tenantId: TENANT, caseId: 'case-x' }))[0]?.status).toBe('sent');
  });
});

/**
 * Two instances triage two related alerts (brute force, then C2 beaconing from the same VPN
 * gateway: a kill-chain progression) whose look-ups both happen before either commit. The
 * interleaving is forced by `Interleave`, a pass-through over each instance's real Cosmos store:
 * look-ups wait for each other, instance B's write waits until instance A has finished.
 */
describe('two instances triaging related alerts at the same moment (Cosmos)', () => {
  const chain = readFileSync(join(ROOT, 'examples', 'attack-chain.ndjson'), 'utf8')
    .trim()
    .split('\n');
  const alerts = { kind: 'alerts' as const, source: 'test' };
  let server: CosmosTestServer;
  const stores: CosmosStore[] = [];

  beforeAll(async () => {
    server = await startCosmosServer();
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    await server.close();
  });

  /** Hooks around one instance's store calls; `n` counts that instance's look-ups from 0. */
  interface Gates {
    readonly beforeLookup?: (n: number) => Promise<void> | undefined;
    readonly afterLookup?: (n: number) => Promise<void> | undefined;
    readonly beforePut?: () => Promise<unknown> | undefined;
    readonly afterPut?: () => void;
  }

  /** The real store, with look-ups and writes held by `gates`: how the tests force an interleaving of two instances. */
  function gated(store: Store, gates: Gates): Store {
    let lookups = 0;
    return new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'findRelated')
          return async (...args: Parameters<Store['findRelated']>) => {
            const n = lookups++;
            await gates.beforeLookup?.(n);
            const result = await target.findRelated(...args);
            await gates.afterLookup?.(n);
            return result;
          };
        if (prop === 'putCase')
          return async (...args: Parameters<Store['putCase']>) => {
            await gates.beforePut?.();
            const saved = await target.putCase(...args);
            gates.afterPut?.();
            return saved;
          };
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  }

  /**
   * An afterLookup gate holding each instance's first look-up until `instances` of them have looked
   * up: their look-ups all happen before any of them commits.
   */
  function firstLookupsMeet(instances: number): (n: number) => Promise<void> | undefined {
    let arrivals = 0;
    const met = signal();
    return (n) => {
      if (n > 0) return undefined;
      if (++arrivals === instances) met.fire();
      return met.done;
    };
  }

  /** What the instances of one test sent and logged. */
  interface Outputs {
    readonly sends: string[];
    readonly events: { event: string; level: string }[];
  }
  const outputs = (): Outputs => ({ sends: [], events: [] });

  /** A store of its own (its own client and caches), as another instance would have. */
  async function openInstanceStore(database: string): Promise<CosmosStore> {
    const s = await openCosmosStore({ endpoint: server.endpoint, key: server.key, database, createIfMissing: true });
    stores.push(s);
    return s;
  }

  /** One instance's pipeline; what it sends and logs goes to `out`. */
  function instance(store: Store, out: Outputs, recheckAfterCommit?: boolean): Pipeline {
    return new Pipeline({
      store,
      policies: PolicyRegistry.fromDirectory(join(ROOT, 'policies')),
      brain: createBrain(),
      log: createLogger({ level: 'debug', sink: (line) => void out.events.push(JSON.parse(line) as { event: string; level: string }) }),
      dispatcher: new OutboxDispatcher(store, { send: async (n: NotificationRecord) => void out.sends.push(n.key) }, silentLogger),
      backoffMs: 1,
      ...(recheckAfterCommit !== undefined ? { recheckAfterCommit } : {}),
    });
  }

  async function race(database: string, options: { recheckAfterCommit?: boolean; failRecheck?: boolean } = {}) {
    const aFinished = signal();
    const out = outputs();
    const storeA = await openInstanceStore(database);
    const storeB = await openInstanceStore(database);
    // Each instance's first look-up waits for the other's; B writes only after A has finished.
    const bothFirst = firstLookupsMeet(2);
    const a = instance(gated(storeA, { afterLookup: bothFirst }), out, options.recheckAfterCommit);
    const b = instance(
      gated(storeB, {
        afterLookup: bothFirst,
        beforePut: () => aFinished.done,
        beforeLookup: (n) =>
          options.failRecheck && n > 0
            ? Promise.reject(new StoreUnavailableError('findRelated', { cause: new Error('503 from the test') }))
            : undefined,
      }),
      out,
      options.recheckAfterCommit,
    );
    const [outA, outB] = await Promise.all([
      a.ingestText(chain[0] as string, alerts).finally(() => aFinished.fire()),
      b.ingestText(chain[1] as string, alerts),
    ]);
    const first = outA.items[0];
    const second = outB.items[0];
    return { storeA, first, second, ...out };
  }

  it('without the re-check (the default) both cases miss each other: the race it guards against', async () => {
    const { first, second } = await race('race-control');

    expect(first?.result?.killChain.relatedCaseIds).toEqual([]);
    expect(second?.result?.killChain.relatedCaseIds).toEqual([]);
    expect(second?.result?.killChain.multiStage).toBe(false);
  });

  it('revises the case committed second with the verdict arrival one after the other gives, and escalates once', async () => {
    // Arrange: what the second alert gets when it arrives after the first (one instance, in turn)
    const sequential = await (async () => {
      const store = await openCosmosStore({
        endpoint: server.endpoint,
        key: server.key,
        database: 'race-sequential',
        createIfMissing: true,
      });
      stores.push(store);
      const p = new Pipeline({
        store,
        policies: PolicyRegistry.fromDirectory(join(ROOT, 'policies')),
        brain: createBrain(),
        log: silentLogger,
      });
      await p.ingestText(chain[0] as string, alerts);
      return (await p.ingestText(chain[1] as string, alerts)).items[0]?.result;
    })();

    // Act: the same two alerts on two instances, both look-ups before either commit
    const { storeA, first, second, events, sends } = await race('race-recheck', { recheckAfterCommit: true });

    // Assert: the case committed first saw nothing (its re-check ran before the other commit)
    expect(first?.result?.revision).toBe(1);
    expect(first?.result?.killChain.relatedCaseIds).toEqual([]);
    // …the case committed second was revised to the sequential verdict, saying why
    const stored = await storeA.getCase(second?.tenantId as string, second?.caseId as string);
    expect(second?.status).toBe('triaged');
    expect(stored?.revision).toBe(2);
    expect(second?.result?.revision).toBe(2);
    expect(stored?.result.killChain.relatedCaseIds).toEqual([first?.caseId]);
    expect(stored?.result.killChain.multiStage).toBe(true);
    expect(stored?.result.severity).toBe(sequential?.severity);
    expect(stored?.result.killChain.detail).toBe(sequential?.killChain.detail);
    expect(stored?.result.steps.find((x) => x.step === 'dedupe')?.detail).toBe(
      're-correlated after commit r1: 1 related case(s) committed meanwhile without seeing this one',
    );
    expect(events.filter((e) => e.event === 'case.recorrelated')).toHaveLength(1);
    // …and the raised severity was notified as an escalation, each entry sent exactly once
    const outbox = await storeA.listNotifications({ tenantId: second?.tenantId as string, caseId: second?.caseId as string });
    const escalations = outbox.filter((n) => n.kind === 'escalation');
    expect(escalations.length).toBeGreaterThan(0);
    expect(escalations.every((n) => n.revision === 2 && n.status === 'sent')).toBe(true);
    expect(sends.filter((k) => escalations.some((n) => n.key === k))).toHaveLength(escalations.length);
    expect(new Set(sends).size).toBe(sends.length);
    // …and the answer shows every notification of the case: the first reports and the escalations, all sent
    expect(second?.result?.notifications.map((n) => `${n.kind}:${n.status}`).sort()).toEqual(
      outbox.map((n) => `${n.kind}:${n.status}`).sort(),
    );
    expect(second?.result?.notifications.some((n) => n.kind === 'first-report')).toBe(true);
  });

  it('leaves the earlier case alone when the later one saw it (no race: nothing to revise, nobody paged twice)', async () => {
    // Arrange: instance A commits the first alert; instance B looks the second up only after that
    // commit (so it sees A's case); A's re-check runs only after B has finished.
    const committed = signal();
    const bFinished = signal();
    const out = outputs();
    const a = instance(
      gated(await openInstanceStore('race-none'), {
        beforeLookup: (n) => (n === 1 ? bFinished.done : undefined),
        afterPut: committed.fire,
      }),
      out,
      true,
    );
    const b = instance(
      gated(await openInstanceStore('race-none'), { beforeLookup: (n) => (n === 0 ? committed.done : undefined) }),
      out,
      true,
    );

    // Act
    const [outA, outB] = await Promise.all([
      a.ingestText(chain[0] as string, alerts),
      b.ingestText(chain[1] as string, alerts).finally(() => bFinished.fire()),
    ]);

    // Assert: B saw A (as in arrival one after the other); A's re-check found B listing A and left A as it was
    expect(outB.items[0]?.result?.killChain.relatedCaseIds).toEqual([outA.items[0]?.caseId]);
    expect(outA.items[0]?.result?.revision).toBe(1);
    expect(outA.items[0]?.result?.killChain.relatedCaseIds).toEqual([]);
    expect(out.sends.filter((k) => k.includes('|escalation|'))).toEqual([]);
  });

  it('judges a revised case on what arrival in commit order shows it, not on cases that came later and saw it', async () => {
    // Arrange: X (brute force, instance A) and Y (C2 beaconing, instance B) look up before either
    // commits; Y commits, then X; then W (lateral movement, instance C) is triaged whole and sees both;
    // only then does X re-check. In commit order (Y, X, W) X would have seen Y, not W.
    const out = outputs();
    const bothFirst = firstLookupsMeet(2);
    const yCommitted = signal();
    const xCommitted = signal();
    const wDone = signal();
    const xDone = signal();
    const a = instance(
      gated(await openInstanceStore('race-three'), {
        afterLookup: bothFirst,
        beforePut: () => yCommitted.done,
        afterPut: xCommitted.fire,
        beforeLookup: (n) => (n === 1 ? wDone.done : undefined),
      }),
      out,
      true,
    );
    const b = instance(
      gated(await openInstanceStore('race-three'), {
        afterLookup: bothFirst,
        afterPut: yCommitted.fire,
        beforeLookup: (n) => (n === 1 ? xDone.done : undefined),
      }),
      out,
      true,
    );
    const c = instance(
      gated(await openInstanceStore('race-three'), { beforeLookup: (n) => (n === 0 ? xCommitted.done : undefined) }),
      out,
      true,
    );

    // Act
    const [outX, , outW] = await Promise.all([
      a.ingestText(chain[0] as string, alerts).finally(() => xDone.fire()),
      b.ingestText(chain[1] as string, alerts),
      c.ingestText(chain[2] as string, alerts).finally(() => wDone.fire()),
    ]);

    // Assert: W saw X and Y; X, which Y missed, was revised with Y only
    const x = outX.items[0];
    const yId = 'a1000000-0000-4000-8000-000000000002';
    expect(outW.items[0]?.result?.killChain.relatedCaseIds).toEqual([x?.caseId, yId]);
    expect(x?.result?.revision).toBe(2);
    expect(x?.result?.killChain.relatedCaseIds).toEqual([yId]);
    expect(x?.result?.killChain.phases).not.toContain('lateral-movement');
  });

  it('keeps the committed verdict and logs a warning when the re-check cannot reach the store', async () => {
    const { second, events } = await race('race-recheck-fails', { recheckAfterCommit: true, failRecheck: true });

    expect(second?.status).toBe('triaged');
    expect(second?.result?.revision).toBe(1);
    expect(events.some((e) => e.event === 'case.recheck.failed' && e.level === 'warn')).toBe(true);
  });
});
