import { join } from 'node:path';
import { synthAlerts } from '../../bench/synth';
import { PolicyRegistry } from '../../shared/config/policy';
import { silentLogger } from '../../shared/log';
import { claimId, OutboxDispatcher } from '../../shared/notify/outbox';
import { Pipeline } from '../../shared/pipeline/pipeline';
import { type CosmosStore, openCosmosStore } from '../../shared/store/cosmos';
import type { NotificationRecord } from '../../shared/store/port';
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
