import { createHash } from 'node:crypto';
import { CosmosClient, type OperationInput } from '@azure/cosmos';
import { StoreUnavailableError } from '../../shared/errors';
import { createLogger } from '../../shared/log';
import { type CosmosStore, openCosmosStore } from '../../shared/store/cosmos';
import type { CaseRecord, EntitySighting, NotificationRecord } from '../../shared/store/port';
import { type CosmosTestServer, startCosmosServer } from '../helpers/cosmosServer';
import { type CountingProxy, startCountingProxy } from '../helpers/countingProxy';
import { caseRecord, notification, sighting } from './fixtures';

/** A first report the size the pipeline writes (≈ 2.8 KB), with non-ASCII text so bytes and characters differ. */
const REPORT = [
  '# First report — Brute force against vpn01 (case c1)',
  '',
  'Severity: high. Raised from medium: the source 203.0.113.77 is on the SOC block list (soc-global.csv, “Tor exit”).',
  '',
  ...Array.from(
    { length: 20 },
    (_, i) =>
      `- 2024-05-01T10:${String(i).padStart(2, '0')}:00Z failed sign-in for k.tanaka@contoso.example on vpn01.corp.contoso.example (attempt ${i + 1}, café VPN profile)`,
  ),
  '',
  'Next step: block 203.0.113.77 at the edge and reset the account; second report due by 2024-05-01T11:00:00Z.',
].join('\n');

const RECIPIENTS = ['soc@contoso.example', 'lead@contoso.example', 'oncall@contoso.example'];
const KEYS = ['ip:203.0.113.77', 'host:vpn01', 'host:vpn01.corp.contoso.example', 'account:k.tanaka@contoso.example', 'ip:10.0.0.5'];
const AT = '2024-05-01T10:00:00.000Z';

/** The case with `report` as its first report, in the place the pipeline puts it (after `entities`), so key order is tested too. */
function withReport(record: CaseRecord, report: string): CaseRecord {
  const result = Object.fromEntries(
    Object.entries(record.result).flatMap(([k, v]) =>
      k === 'entities' ? [[k, v] as const, ['firstReport', report] as const] : [[k, v] as const],
    ),
  ) as unknown as CaseRecord['result'];
  return { ...record, result };
}

/** One new alert as the pipeline writes it: the case with its report, five index rows, the report to three recipients. */
function alert(caseId: string, report = REPORT) {
  const record = withReport(caseRecord('t', caseId), report);
  const sightings = KEYS.map((k) => sighting('t', caseId, k, AT));
  const outbox = RECIPIENTS.map((to) => ({ ...notification('t', caseId, to), payload: report }));
  return { record, sightings, outbox };
}

/** The store's id hash (sha256 of the parts, base64url, 32 characters): old-shape documents must carry the ids it computes. */
function hashId(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\u0000');
  return h.digest('base64url').slice(0, 32);
}

/** The batch the store sent before payload documents existed: the text inline in the case and in every outbox document. */
function inlineShape(record: CaseRecord, sightings: readonly EntitySighting[], outbox: readonly NotificationRecord[]): OperationInput[] {
  const { tenantId, caseId } = record;
  const sightingDocs = sightings.map((s) => ({
    id: `sighting:${hashId(caseId, s.entityKey, s.detectedAt)}`,
    docType: 'sighting',
    tenantId,
    caseId,
    entityKey: s.entityKey,
    detectedAt: s.detectedAt,
    phases: [...s.phases],
    playbook: s.playbook,
    severity: s.severity,
  }));
  const outboxDocs = outbox.map((n) => ({ id: `outbox:${hashId(n.key)}`, docType: 'outbox', ...n }));
  const caseDoc = {
    id: `case:${caseId}`,
    docType: 'case',
    tenantId,
    caseId,
    revision: record.revision,
    revisionKey: record.revisionKey,
    fingerprint: record.fingerprint,
    state: record.state,
    detectedAt: record.detectedAt,
    case: record.case,
    result: record.result,
    sightingIds: sightingDocs.map((d) => d.id),
    outboxIds: outboxDocs.map((d) => d.id),
  };
  return [
    { operationType: 'Create', partitionKey: tenantId, resourceBody: JSON.parse(JSON.stringify(caseDoc)) },
    ...[...sightingDocs, ...outboxDocs].map(
      (doc): OperationInput => ({ operationType: 'Create', partitionKey: tenantId, resourceBody: JSON.parse(JSON.stringify(doc)) }),
    ),
  ];
}

interface RawDoc {
  id: string;
  docType: string;
  payload?: string;
  payloadId?: string;
  reportPayloadId?: string;
  result?: { firstReport?: string };
  /** Index rows a case still owes (a revision written in several batches, not finished). */
  indexTodo?: { delete: string[]; upsert: unknown[] };
  ttl?: number;
}

let server: CosmosTestServer;
let databases = 0;

beforeAll(async () => {
  server = await startCosmosServer();
});

afterAll(async () => {
  await server.close();
});

describe('Cosmos store: each outbox payload stored once', () => {
  let proxy: CountingProxy;
  let raw: CosmosClient;
  let database: string;
  const opened: CosmosStore[] = [];

  /** A store on this test's database, as a separate process would have it (its own caches), through the counting proxy. */
  const open = async (
    options: {
      defaultTtlSeconds?: number;
      log?: ReturnType<typeof createLogger>;
      retry?: { attempts: number; sleep: () => Promise<void> };
    } = {},
  ) => {
    const store = await openCosmosStore({ endpoint: proxy.endpoint, key: server.key, database, createIfMissing: true, ...options });
    opened.push(store);
    return store;
  };
  const cases = () => raw.database(database).container('cases');
  const docs = async () => (await cases().items.query<RawDoc>('SELECT * FROM c').fetchAll()).resources;
  const ofType = (all: readonly RawDoc[], docType: string) => all.filter((d) => d.docType === docType);

  beforeEach(async () => {
    database = `payloads-${++databases}`;
    proxy = await startCountingProxy(server.endpoint);
    raw = new CosmosClient({ endpoint: server.endpoint, key: server.key, connectionPolicy: { enableEndpointDiscovery: false } });
  });

  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    raw.dispose();
    await proxy.close();
  });

  it('gives back a case with its first report and its three outbox entries exactly as they were put', async () => {
    const writer = await open();
    const { record, sightings, outbox } = alert('c1');
    const saved = await writer.putCase(record, sightings, undefined, outbox);
    const reader = await open();

    const read = await reader.getCase('t', 'c1');
    const found = await reader.findCase('c1');
    const listed = await reader.listNotifications({ tenantId: 't', caseId: 'c1' });

    expect(read).toEqual({ ...record, etag: saved.etag });
    expect(JSON.stringify(read?.result)).toBe(JSON.stringify(record.result)); // same keys in the same order
    expect(found).toEqual(read);
    expect(listed).toEqual([...outbox].sort((a, b) => a.key.localeCompare(b.key)));
  });

  it("writes a stand-alone alert's entity lists once in the case document, and reads the record back whole", async () => {
    const store = await open();
    const { record, sightings, outbox } = alert('c1');
    const [first] = record.case.alerts;
    const shared = { ...record, case: { ...record.case, alerts: [{ ...first!, entities: record.case.entities }] } }; // as the parser gives it

    const saved = await store.putCase(shared, sightings, undefined, outbox);
    const [caseDoc] = ofType(await docs(), 'case') as unknown as { case: { entities: unknown } }[];
    const read = await (await open()).getCase('t', 'c1');

    expect(caseDoc?.case.entities).toBe('=alerts[0].entities');
    expect(read).toEqual({ ...shared, etag: saved.etag });
    expect(read?.case.entities).toBe(read?.case.alerts[0]?.entities);
  });

  it('keeps the report text once: one payload document that the case and the outbox entries point at, with their TTL', async () => {
    const store = await open({ defaultTtlSeconds: 86_400 });
    const { record, sightings, outbox } = alert('c1');

    await store.putCase(record, sightings, undefined, outbox);
    const all = await docs();

    const payloads = ofType(all, 'payload');
    const [caseDoc] = ofType(all, 'case');
    expect(payloads).toHaveLength(1);
    expect(payloads[0]?.payload).toBe(REPORT);
    expect(payloads[0]?.ttl).toBe(86_400);
    expect(caseDoc?.result?.firstReport).toBe('');
    expect(caseDoc?.reportPayloadId).toBe(payloads[0]?.id);
    expect(ofType(all, 'outbox').map((d) => [d.payloadId, d.payload])).toEqual(RECIPIENTS.map(() => [payloads[0]?.id, undefined]));
  });

  it('sends the report text once instead of four times for one new alert with three recipients, for under 512 bytes of pointers', async () => {
    const store = await open();
    const ours = alert('c1');
    const inline = alert('c2'); // same sizes, another case: the two writes do not collide
    const sdk = new CosmosClient({ endpoint: proxy.endpoint, key: server.key, connectionPolicy: { enableEndpointDiscovery: false } });
    const copy = Buffer.byteLength(JSON.stringify(REPORT)); // one copy of the text as it travels (JSON-escaped)
    proxy.reset();

    await store.putCase(ours.record, ours.sightings, undefined, ours.outbox);
    const sent = proxy.bytes();
    const requests = proxy.counts();
    proxy.reset();
    await sdk
      .database(database)
      .container('cases')
      .items.batch(inlineShape(inline.record, inline.sightings, inline.outbox), 't');
    const inlined = proxy.bytes().batch;
    sdk.dispose();
    const withoutText = inlined - 4 * copy; // the same write with no report at all

    expect(requests).toMatchObject({ point: 0, batch: 1 });
    expect(sent.batch).toBeGreaterThan(withoutText + copy);
    expect(sent.batch).toBeLessThan(withoutText + copy + 512);
  });

  it('writes no second copy of the text when the put is redelivered with its outbox entries already stored', async () => {
    const long = REPORT.repeat(8); // large enough that one copy more or less shows in the bytes
    const { record, sightings, outbox } = alert('c1', long);
    const first = await (await open()).putCase(record, sightings, undefined, outbox);
    const worker = await open();
    const read = await worker.getCase('t', 'c1');
    proxy.reset();

    await worker.putCase({ ...record, revision: 2 }, sightings, read?.etag, outbox);
    const sent = proxy.bytes();
    const all = await docs();

    expect(read?.etag).toBe(first.etag);
    expect(sent.batch + sent.point).toBeLessThan(1.5 * Buffer.byteLength(long));
    expect(ofType(all, 'payload').map((d) => d.payload)).toEqual([long]);
    expect(ofType(all, 'outbox').filter((d) => d.payload !== undefined)).toEqual([]);
    expect((await worker.getCase('t', 'c1'))?.result.firstReport).toBe(long);
    expect(await worker.listNotifications({ tenantId: 't', caseId: 'c1' })).toEqual([...outbox].sort((a, b) => a.key.localeCompare(b.key)));
  });

  it('reads each payload once per process: the second read of the case and the listing of its entries cost no payload read', async () => {
    const writer = await open();
    const { record, sightings, outbox } = alert('c1');
    await writer.putCase(record, sightings, undefined, outbox);
    const reader = await open();
    proxy.reset();

    await writer.getCase('t', 'c1');
    const byWriter = proxy.counts().point;
    proxy.reset();
    await reader.getCase('t', 'c1');
    const firstRead = proxy.counts().point;
    proxy.reset();
    await reader.getCase('t', 'c1');
    await reader.listNotifications({ tenantId: 't', caseId: 'c1' });
    const afterwards = proxy.counts().point;

    expect(byWriter).toBe(1); // it wrote the payload: known already
    expect(firstRead).toBe(2); // the case, then its report
    expect(afterwards).toBe(1); // the case only
  });

  it('lists entries of several cases with one payload read per distinct payload', async () => {
    const writer = await open();
    for (const caseId of ['c1', 'c2']) {
      const { record, sightings, outbox } = alert(caseId, REPORT.replace('case c1', `case ${caseId}`));
      await writer.putCase(record, sightings, undefined, outbox);
    }
    const reader = await open();
    proxy.reset();

    const listed = await reader.listNotifications({ tenantId: 't' });

    expect(listed).toHaveLength(6);
    expect(new Set(listed.map((n) => n.payload.split('\n')[0]))).toEqual(
      new Set(['# First report — Brute force against vpn01 (case c1)', '# First report — Brute force against vpn01 (case c2)']),
    );
    expect(proxy.counts().point).toBe(2);
  });

  it('reads documents written before payload documents existed (text inline, no ids), and updates them', async () => {
    const store = await open(); // creates the container
    const { record, sightings, outbox } = alert('c1');
    await cases().items.batch(inlineShape(record, sightings, outbox), 't');
    const later = notification('t', 'c1', 'ciso@contoso.example', { kind: 'escalation', createdAt: '2024-05-01T10:30:00.000Z' });

    const read = await store.getCase('t', 'c1');
    const found = await store.findCase('c1');
    const listed = await store.listNotifications({ tenantId: 't', caseId: 'c1' });
    await store.markNotification('t', outbox[0]?.key ?? '', { status: 'sent', attempts: 1, sentAt: '2024-05-01T10:01:00.000Z' });
    const revised = read && (await store.putCase({ ...read, revision: 2 }, sightings, read.etag, [later]));
    const mixed = await store.listNotifications({ tenantId: 't', caseId: 'c1' });

    expect(read).toEqual({ ...record, etag: read?.etag });
    expect(found).toEqual(read);
    expect(listed).toEqual([...outbox].sort((a, b) => a.key.localeCompare(b.key)));
    expect(revised?.revision).toBe(2);
    expect((await store.getCase('t', 'c1'))?.result.firstReport).toBe(REPORT);
    expect(mixed.map((n) => [n.recipient, n.status, n.payload])).toEqual([
      ...[...outbox]
        .sort((a, b) => a.key.localeCompare(b.key))
        .map((n) => [n.recipient, n.key === outbox[0]?.key ? 'sent' : 'queued', REPORT]),
      ['ciso@contoso.example', 'queued', later.payload],
    ]);
  });

  it('enqueues a notification as its payload document then its outbox document, sharing the payload the case wrote', async () => {
    const store = await open();
    const { record, sightings, outbox } = alert('c1');
    await store.putCase(record, sightings, undefined, outbox);
    const extra = { ...notification('t', 'c1', 'ciso@contoso.example'), payload: REPORT };
    proxy.reset();

    const outcomes = [await store.enqueueNotification(extra), await store.enqueueNotification({ ...extra, payload: 'changed' })];
    const listed = await store.listNotifications({ tenantId: 't', caseId: 'c1' });

    expect(outcomes).toEqual(['created', 'exists']);
    expect(listed.find((n) => n.key === extra.key)).toEqual(extra);
    expect(ofType(await docs(), 'payload').filter((d) => d.payload === REPORT)).toHaveLength(1);
  });

  it('commits the report with the case when the index rows need several batches', async () => {
    const writer = await open();
    const { record, outbox } = alert('c1');
    const many = Array.from({ length: 150 }, (_, i) => sighting('t', 'c1', `ip:10.0.${i >> 8}.${i & 255}`, AT));
    proxy.reset();

    const saved = await writer.putCase(record, many, undefined, outbox);
    const batches = proxy.counts().batch;
    const reader = await open();

    expect(batches).toBe(2);
    expect(await reader.getCase('t', 'c1')).toEqual({ ...record, etag: saved.etag });
    expect((await reader.listNotifications({ tenantId: 't', caseId: 'c1' })).map((n) => n.payload)).toEqual([REPORT, REPORT, REPORT]);
  });

  it('commits the outbox entries with the case in the first batch, so a failed later batch leaves index rows owed, never a notification', async () => {
    // Arrange: every batch after the first fails for good (the reader's repair too: its rows stay owed on the case)
    const writer = await open({ retry: { attempts: 2, sleep: async () => {} } });
    const { record, outbox } = alert('c1');
    const many = Array.from({ length: 150 }, (_, i) => sighting('t', 'c1', `ip:10.0.${i >> 8}.${i & 255}`, AT));
    proxy.inject({ status: 503, kinds: ['batch'], skip: 1 }, 10);

    // Act
    const put = writer.putCase(record, many, undefined, outbox);

    // Assert: the put reports the failure; the case and all three outbox entries (with their text) are stored
    await expect(put).rejects.toBeInstanceOf(StoreUnavailableError);
    const reader = await open();
    expect((await reader.getCase('t', 'c1'))?.result).toEqual(record.result);
    const listed = await reader.listNotifications({ tenantId: 't', caseId: 'c1' });
    expect(listed.map((n) => [n.status, n.payload])).toEqual(RECIPIENTS.map(() => ['queued', REPORT]));
    const stored = await docs();
    const written = ofType(stored, 'sighting').length;
    expect(written).toBeLessThan(many.length);
    expect(ofType(stored, 'case')[0]?.indexTodo?.upsert.length).toBe(many.length - written);
  });

  it('reads a payload document that is gone (expired before its readers) as an empty text, and says so in the log', async () => {
    const lines: string[] = [];
    const writer = await open();
    const { record, sightings, outbox } = alert('c1');
    await writer.putCase(record, sightings, undefined, outbox);
    const [payload] = ofType(await docs(), 'payload');
    await cases()
      .item(payload?.id ?? '', 't')
      .delete();
    const reader = await open({ log: createLogger({ level: 'warn', sink: (line) => lines.push(line) }) });

    const read = await reader.getCase('t', 'c1');
    const listed = await reader.listNotifications({ tenantId: 't', caseId: 'c1' });

    expect(read?.result.firstReport).toBe('');
    expect(listed.map((n) => n.payload)).toEqual(['', '', '']);
    expect(lines.map((l) => (JSON.parse(l) as { event: string }).event)).toEqual(['store.payload.missing', 'store.payload.missing']);
  });
});
