import { CosmosClient } from '@azure/cosmos';
import { ConcurrencyConflictError, ConfigError, StoreUnavailableError } from '../../shared/errors';
import { createLogger } from '../../shared/log';
import { type CosmosStore, openCosmosStore } from '../../shared/store/cosmos';
import { type CosmosTestServer, startCosmosServer } from '../helpers/cosmosServer';
import { type CountingProxy, startCountingProxy } from '../helpers/countingProxy';
import { caseRecord, notification, parked, sighting } from './fixtures';
import { describeStoreContract } from './store.contract';

let server: CosmosTestServer;
let databases = 0;
const nextDatabase = () => `triage-${++databases}`;

beforeAll(async () => {
  server = await startCosmosServer();
});

afterAll(async () => {
  await server.close();
});

describeStoreContract('cosmos', () =>
  openCosmosStore({ endpoint: server.endpoint, key: server.key, database: nextDatabase(), createIfMissing: true }),
);

describe('Cosmos store', () => {
  let proxy: CountingProxy;
  let store: CosmosStore;
  const slept: number[] = [];

  beforeEach(async () => {
    proxy = await startCountingProxy(server.endpoint);
    slept.length = 0;
    store = await openCosmosStore({
      endpoint: proxy.endpoint,
      key: server.key,
      database: nextDatabase(),
      createIfMissing: true,
      // Record the waits instead of sleeping: the policy is what is under test, not the clock.
      retry: { attempts: 4, sleep: async (ms) => void slept.push(ms), random: () => 0.5 },
    });
    proxy.reset();
  });

  afterEach(async () => {
    await store.close();
    await proxy.close();
  });

  const window = { from: '2024-04-24T10:00:00.000Z', to: '2024-05-08T10:00:00.000Z' };
  const keys = ['ip:203.0.113.77', 'host:vpn01', 'host:vpn01.corp.contoso.example', 'account:k.tanaka@contoso.example', 'ip:10.0.0.5'];

  it('serves one alert on the hot path with two point operations, one batch and one single-partition query', async () => {
    const record = caseRecord('t', 'case-1');

    const existing = await store.getCase('t', 'case-1');
    const lease = await store.acquireLease(
      { tenantId: 't', caseId: 'case-1', owner: 'w1', expiresAt: '2024-05-01T10:01:00.000Z' },
      '2024-05-01T10:00:00.000Z',
    );
    await store.findRelated({ tenantId: 't', keys, ...window, excludeCaseId: 'case-1', limitPerKey: 21 });
    await store.putCase(
      record,
      keys.map((k) => sighting('t', 'case-1', k, record.detectedAt)),
      existing?.etag,
      [notification('t', 'case-1', 'soc@contoso.example')],
    );
    const alertPart = proxy.counts();
    await store.enqueueNotification(notification('t', 'case-1', 'lead@contoso.example'));
    await store.enqueueNotification(notification('t', 'case-1', 'oncall@contoso.example'));
    await store.releaseLease('t', 'case-1', 'w1');
    const whole = proxy.counts();

    expect(lease.acquired).toBe(true);
    // getCase (read) + acquireLease (create) = 2 point operations; putCase = 1 batch with the case, 5 sightings and 1 outbox entry.
    expect(alertPart).toEqual({ point: 2, batch: 1, query: 1, 'query-plan': 1, 'cross-partition-query': 0, metadata: 0 });
    expect(alertPart.point + alertPart.batch).toBeLessThanOrEqual(3);
    // + 2 enqueues (each a payload upsert, then the outbox create) + 1 conditional delete of the lease.
    expect(whole).toEqual({ point: 7, batch: 1, query: 1, 'query-plan': 1, 'cross-partition-query': 0, metadata: 0 });
  });

  it("serves the pipeline's own sequence (ETag concurrency, outbox in the commit) with one point read, one query and one batch", async () => {
    const record = caseRecord('t', 'case-2');

    const existing = await store.getCase('t', 'case-2');
    await store.findRelated({ tenantId: 't', keys, ...window, excludeCaseId: 'case-2', limitPerKey: 21 });
    await store.putCase(
      record,
      keys.map((k) => sighting('t', 'case-2', k, record.detectedAt)),
      existing?.etag,
      ['soc@contoso.example', 'lead@contoso.example'].map((to) => notification('t', 'case-2', to)),
    );

    expect(proxy.counts()).toEqual({ point: 1, batch: 1, query: 1, 'query-plan': 1, 'cross-partition-query': 0, metadata: 0 });
    expect(await store.listNotifications({ tenantId: 't', caseId: 'case-2' })).toHaveLength(2);
  });

  it('writes a new revision read through the store with one point read and one batch, deleting stale index rows', async () => {
    const first = await store.putCase(
      caseRecord('t', 'case-1'),
      keys.map((k) => sighting('t', 'case-1', k, '2024-05-01T10:00:00.000Z')),
      undefined,
    );
    proxy.reset();

    const read = await store.getCase('t', 'case-1');
    await store.putCase(
      caseRecord('t', 'case-1', { revision: 2 }),
      [sighting('t', 'case-1', 'ip:203.0.113.77', '2024-05-01T10:00:00.000Z')],
      read?.etag,
    );
    const counts = proxy.counts();
    const { sightings: related } = await store.findRelated({ tenantId: 't', keys, ...window, limitPerKey: 10 });

    expect(read?.etag).toBe(first.etag);
    expect(counts).toMatchObject({ point: 1, batch: 1, query: 0, 'cross-partition-query': 0 });
    expect(related.map((s) => s.entityKey)).toEqual(['ip:203.0.113.77']);
  });

  it('updates a case it did not read itself after one extra point read, and refuses a stale etag before writing', async () => {
    const other = await openCosmosStore({ endpoint: proxy.endpoint, key: server.key, database: `triage-${databases}` });
    const first = await other.putCase(
      caseRecord('t', 'case-1'),
      [sighting('t', 'case-1', 'host:vpn01', '2024-05-01T10:00:00.000Z')],
      undefined,
    );
    proxy.reset();

    const second = await store.putCase(caseRecord('t', 'case-1', { revision: 2 }), [], first.etag);
    const stale = store.putCase(caseRecord('t', 'case-1', { revision: 3 }), [], first.etag);

    await expect(stale).rejects.toBeInstanceOf(ConcurrencyConflictError);
    expect(proxy.seen.map((s) => s.kind)).toEqual(['point', 'batch', 'point']);
    expect((await other.getCase('t', 'case-1'))?.etag).toBe(second.etag);
    await expect(other.findRelated({ tenantId: 't', keys: ['host:vpn01'], ...window, limitPerKey: 5 })).resolves.toEqual({
      sightings: [],
      saturated: [],
    });
    await other.close();
  });

  it('commits a case with more index rows than one batch holds in several batches', async () => {
    const many = Array.from({ length: 150 }, (_, i) => sighting('t', 'case-1', `ip:10.0.${i >> 8}.${i & 255}`, '2024-05-01T10:00:00.000Z'));

    await store.putCase(caseRecord('t', 'case-1'), many, undefined);
    const found = await store.findRelated({ tenantId: 't', keys: many.map((s) => s.entityKey), ...window, limitPerKey: 2 });

    expect(proxy.counts().batch).toBe(2);
    expect(found.sightings).toHaveLength(150);
  });

  it('refuses, before writing anything, a case whose outbox entries would not fit the batch that commits the case', async () => {
    const outbox = Array.from({ length: 120 }, (_, i) => notification('t', 'case-1', `contact-${i}`));

    const put = store.putCase(caseRecord('t', 'case-1'), [], undefined, outbox);

    await expect(put).rejects.toBeInstanceOf(ConfigError);
    expect(proxy.counts().batch ?? 0).toBe(0);
    await expect(store.getCase('t', 'case-1')).resolves.toBeUndefined();
  });

  it('waits as long as a 429 asks (x-ms-retry-after-ms) and then succeeds', async () => {
    await store.putCase(caseRecord('t', 'case-1'), [], undefined);
    proxy.reset();
    proxy.inject({ status: 429, headers: { 'x-ms-retry-after-ms': '50' }, kinds: ['point'] });

    const read = await store.getCase('t', 'case-1');

    expect(read?.revision).toBe(1);
    expect(slept).toEqual([50]);
    expect(proxy.seen.map((s) => [s.kind, s.status])).toEqual([
      ['point', 429],
      ['point', 200],
    ]);
  });

  it('logs each retry of a case operation with its tenant, case and pipeline step', async () => {
    const lines: Record<string, unknown>[] = [];
    const logged = await openCosmosStore({
      endpoint: proxy.endpoint,
      key: server.key,
      database: `triage-${databases}`,
      retry: { attempts: 4, sleep: async () => {}, random: () => 0.5 },
      log: createLogger({ level: 'warn', sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) }),
    });
    proxy.inject({ status: 429, headers: { 'x-ms-retry-after-ms': '1' }, kinds: ['batch'] });
    proxy.inject({ status: 429, headers: { 'x-ms-retry-after-ms': '1' }, kinds: ['point'] });

    await logged.putCase(caseRecord('t', 'case-1'), [], undefined);
    await logged.getCase('t', 'case-1');
    await logged.close();

    const retries = lines.filter((l) => l.event === 'store.cosmos.retry');
    expect(retries).toEqual([
      expect.objectContaining({ tenantId: 't', caseId: 'case-1', step: 'persist', op: 'putCase' }),
      expect.objectContaining({ tenantId: 't', caseId: 'case-1', step: 'dedupe', op: 'getCase' }),
    ]);
  });

  it('retries a throttled batch with exponential backoff (the SDK drops the batch retry-after) and commits once', async () => {
    proxy.inject({ status: 429, headers: { 'x-ms-retry-after-ms': '50' }, kinds: ['batch'] }, 2);

    const saved = await store.putCase(
      caseRecord('t', 'case-1'),
      [sighting('t', 'case-1', 'host:vpn01', '2024-05-01T10:00:00.000Z')],
      undefined,
    );

    // random() = 0.5 puts the jitter at 3/4 of 100 ms, 200 ms.
    expect(slept).toEqual([75, 150]);
    expect((await store.getCase('t', 'case-1'))?.etag).toBe(saved.etag);
  });

  it('retries a throttled correlation query and still returns every sighting once', async () => {
    await store.putCase(
      caseRecord('t', 'case-1'),
      keys.map((k) => sighting('t', 'case-1', k, '2024-05-01T10:00:00.000Z')),
      undefined,
    );
    proxy.reset();
    proxy.inject({ status: 429, headers: { 'x-ms-retry-after-ms': '20' }, kinds: ['query'] });

    const { sightings: found } = await store.findRelated({ tenantId: 't', keys, ...window, limitPerKey: 5 });

    expect(found.map((s) => s.entityKey)).toEqual(keys);
    expect(slept).toEqual([20]);
  });

  it('gives up with StoreUnavailableError, carrying the last service error, when 503s outlast the attempts', async () => {
    proxy.inject({ status: 503 }, 10);

    const failure = await store.getCase('t', 'case-1').catch((err: unknown) => err);

    expect(failure).toBeInstanceOf(StoreUnavailableError);
    expect(((failure as StoreUnavailableError).cause as { code?: unknown }).code).toBe(503);
    expect(proxy.seen).toHaveLength(4);
    expect(slept).toEqual([75, 150, 300]);
  });

  it('reports an unreachable account as StoreUnavailableError after its attempts', async () => {
    const gone = await startCountingProxy(server.endpoint);
    await gone.close();

    const failure = await openCosmosStore({
      endpoint: gone.endpoint,
      key: server.key,
      database: 'x',
      retry: { attempts: 2, sleep: async () => {} },
    }).catch((err: unknown) => err);

    expect(failure).toBeInstanceOf(StoreUnavailableError);
    expect(((failure as StoreUnavailableError).cause as { code?: unknown }).code).toBe('ECONNREFUSED');
  });

  it('refuses to open a database whose containers do not exist unless asked to create them', async () => {
    const opening = openCosmosStore({ endpoint: proxy.endpoint, key: server.key, database: 'not-deployed' });

    await expect(opening).rejects.toBeInstanceOf(ConfigError);
  });

  it('gives a contended lease to exactly one of two workers on two separate clients', async () => {
    const other = await openCosmosStore({ endpoint: server.endpoint, key: server.key, database: `triage-${databases}` });
    const lease = (owner: string) => ({ tenantId: 't', caseId: 'case-7', owner, expiresAt: '2024-05-01T10:01:00.000Z' });

    const results = await Promise.all([
      store.acquireLease(lease('w1'), '2024-05-01T10:00:00.000Z'),
      other.acquireLease(lease('w2'), '2024-05-01T10:00:00.000Z'),
    ]);

    expect(results.filter((r) => r.acquired)).toHaveLength(1);
    await other.close();
  });

  it('keeps ids Cosmos would refuse (slashes, backslashes) usable', async () => {
    const caseId = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.SecurityInsights/incidents/abc#1?x';

    const saved = await store.putCase(
      caseRecord('t', caseId),
      [sighting('t', caseId, 'account:contoso\\k.tanaka', '2024-05-01T10:00:00.000Z')],
      undefined,
    );
    const { sightings: found } = await store.findRelated({ tenantId: 't', keys: ['account:contoso\\k.tanaka'], ...window, limitPerKey: 5 });

    expect((await store.getCase('t', caseId))?.etag).toBe(saved.etag);
    expect((await store.findCase(caseId))?.caseId).toBe(caseId);
    expect(found.map((s) => s.caseId)).toEqual([caseId]);
  });

  it('stamps the retention TTL on everything it writes, per tenant when a tenant has its own, and a short one on leases', async () => {
    const database = nextDatabase();
    const retained = await openCosmosStore({
      endpoint: server.endpoint,
      key: server.key,
      database,
      createIfMissing: true,
      defaultTtlSeconds: 365 * 86_400,
      ttlSecondsForTenant: (tenantId) => (tenantId === 'short' ? 31 * 86_400 : undefined),
    });

    await retained.putCase(caseRecord('t', 'c1'), [sighting('t', 'c1', 'host:vpn01', '2024-05-01T10:00:00.000Z')], undefined, [
      notification('t', 'c1', 'soc@contoso.example'),
    ]);
    await retained.putCase(caseRecord('short', 'c2'), [], undefined);
    await retained.acquireLease(
      { tenantId: 't', caseId: 'c1', owner: 'w1', expiresAt: '2024-05-01T10:01:00.000Z' },
      '2024-05-01T10:00:00.000Z',
    );
    await retained.park(parked('p-1', '2024-05-01T10:00:00.000Z'));
    await retained.close();

    const raw = new CosmosClient({ endpoint: server.endpoint, key: server.key, connectionPolicy: { enableEndpointDiscovery: false } });
    const { resources: docs } = await raw
      .database(database)
      .container('cases')
      .items.query<{ docType: string; tenantId: string; ttl?: number }>('SELECT c.docType, c.tenantId, c.ttl FROM c')
      .fetchAll();
    const { resources: parkedDocs } = await raw
      .database(database)
      .container('parked')
      .items.query<{ ttl?: number }>('SELECT c.ttl FROM c')
      .fetchAll();
    raw.dispose();

    const year = 365 * 86_400;
    expect(docs.map((d) => `${d.tenantId}/${d.docType}:${d.ttl}`).sort()).toEqual(
      [`short/case:${31 * 86_400}`, `t/case:${year}`, 't/lease:120', `t/outbox:${year}`, `t/payload:${year}`, `t/sighting:${year}`].sort(),
    );
    expect(parkedDocs).toEqual([{ ttl: year }]);
  });
});
