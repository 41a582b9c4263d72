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

  /** A store that holds each instance's first look-up until both instances have looked up. */
  function interleave(store: Store, bothLookedUp: Promise<void>, arrived: () => void, writeAfter?: Promise<unknown>): Store {
    let lookups = 0;
    return new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'findRelated')
          return async (...args: Parameters<Store['findRelated']>) => {
            const result = await target.findRelated(...args);
            if (lookups++ === 0) {
              arrived();
              await bothLookedUp;
            }
            return result;
          };
        if (prop === 'putCase' && writeAfter)
          return async (...args: Parameters<Store['putCase']>) => {
            await writeAfter;
            return target.putCase(...args);
          };
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  }

  async function race(database: string, options: { recheckAfterCommit?: boolean; failRecheck?: boolean } = {}) {
    const open = async () => {
      const s = await openCosmosStore({ endpoint: server.endpoint, key: server.key, database, createIfMissing: true });
      stores.push(s);
      return s;
    };
    let arrivals = 0;
    let release: () => void = () => undefined;
    const bothLookedUp = new Promise<void>((r) => {
      release = r;
    });
    const arrived = () => {
      if (++arrivals === 2) release();
    };
    let aDone: () => void = () => undefined;
    const aFinished = new Promise<void>((r) => {
      aDone = r;
    });
    const events: { event: string; level: string }[] = [];
    const sends: string[] = [];
    const worker = (store: Store) =>
      new Pipeline({
        store,
        policies: PolicyRegistry.fromDirectory(join(ROOT, 'policies')),
        brain: createBrain(),
        log: createLogger({ level: 'debug', sink: (line) => void events.push(JSON.parse(line) as { event: string; level: string }) }),
        dispatcher: new OutboxDispatcher(store, { send: async (n: NotificationRecord) => void sends.push(n.key) }, silentLogger),
        backoffMs: 1,
        ...(options.recheckAfterCommit !== undefined ? { recheckAfterCommit: options.recheckAfterCommit } : {}),
      });
    const storeA = await open();
    const storeB = await open();
    const a = worker(interleave(storeA, bothLookedUp, arrived));
    let bLookups = 0;
    const bStore = interleave(storeB, bothLookedUp, arrived, aFinished);
    const b = worker(
      options.failRecheck
        ? new Proxy(bStore, {
            get(target, prop, receiver) {
              if (prop === 'findRelated')
                return async (...args: Parameters<Store['findRelated']>) => {
                  if (bLookups++ > 0) throw new StoreUnavailableError('findRelated', { cause: new Error('503 from the test') });
                  return target.findRelated(...args);
                };
              const v = Reflect.get(target, prop, receiver);
              return typeof v === 'function' ? v.bind(target) : v;
            },
          })
        : bStore,
    );
    const [outA, outB] = await Promise.all([
      a.ingestText(chain[0] as string, alerts).finally(() => aDone()),
      b.ingestText(chain[1] as string, alerts),
    ]);
    const first = outA.items[0];
    const second = outB.items[0];
    return { storeA, first, second, events, sends };
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
    const open = async (database: string) => {
      const s = await openCosmosStore({ endpoint: server.endpoint, key: server.key, database, createIfMissing: true });
      stores.push(s);
      return s;
    };
    let aCommitted: () => void = () => undefined;
    const committed = new Promise<void>((r) => {
      aCommitted = r;
    });
    let bDone: () => void = () => undefined;
    const bFinished = new Promise<void>((r) => {
      bDone = r;
    });
    const gated = (store: Store, hooks: { lookup?: (n: number) => Promise<void>; put?: () => void }): Store => {
      let lookups = 0;
      return new Proxy(store, {
        get(target, prop, receiver) {
          if (prop === 'findRelated')
            return async (...args: Parameters<Store['findRelated']>) => {
              await hooks.lookup?.(lookups++);
              return target.findRelated(...args);
            };
          if (prop === 'putCase')
            return async (...args: Parameters<Store['putCase']>) => {
              const saved = await target.putCase(...args);
              hooks.put?.();
              return saved;
            };
          const v = Reflect.get(target, prop, receiver);
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
    };
    const sends: string[] = [];
    const worker = (store: Store) =>
      new Pipeline({
        store,
        policies: PolicyRegistry.fromDirectory(join(ROOT, 'policies')),
        brain: createBrain(),
        log: silentLogger,
        dispatcher: new OutboxDispatcher(store, { send: async (n: NotificationRecord) => void sends.push(n.key) }, silentLogger),
        recheckAfterCommit: true,
      });
    const a = worker(gated(await open('race-none'), { lookup: async (n) => (n === 1 ? bFinished : undefined), put: () => aCommitted() }));
    const b = worker(gated(await open('race-none'), { lookup: async (n) => (n === 0 ? committed : undefined) }));

    // Act
    const [outA, outB] = await Promise.all([
      a.ingestText(chain[0] as string, alerts),
      b.ingestText(chain[1] as string, alerts).finally(() => bDone()),
    ]);

    // Assert: B saw A (as in arrival one after the other); A's re-check found B listing A and left A as it was
    expect(outB.items[0]?.result?.killChain.relatedCaseIds).toEqual([outA.items[0]?.caseId]);
    expect(outA.items[0]?.result?.revision).toBe(1);
    expect(outA.items[0]?.result?.killChain.relatedCaseIds).toEqual([]);
    expect(sends.filter((k) => k.includes('|escalation|'))).toEqual([]);
  });

  it('keeps the committed verdict and logs a warning when the re-check cannot reach the store', async () => {
    const { second, events } = await race('race-recheck-fails', { recheckAfterCommit: true, failRecheck: true });

    expect(second?.status).toBe('triaged');
    expect(second?.result?.revision).toBe(1);
    expect(events.some((e) => e.event === 'case.recheck.failed' && e.level === 'warn')).toBe(true);
  });
});
