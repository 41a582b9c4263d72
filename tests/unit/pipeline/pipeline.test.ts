import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PolicyRegistry } from '../../../shared/config/policy';
import { StoreUnavailableError } from '../../../shared/errors';
import { createLogger, type Logger, silentLogger } from '../../../shared/log';
import { type ChannelSender, OutboxDispatcher } from '../../../shared/notify/outbox';
import { rawAt } from '../../../shared/pipeline/park';
import { Pipeline } from '../../../shared/pipeline/pipeline';
import type { NotificationRecord } from '../../../shared/store/port';
import { openSqliteStore } from '../../../shared/store/sqlite';
import { createBrain } from '../../../shared/triage/brain';
import { ROOT, SAMPLES } from '../../helpers/cli';
import { uncodedIncident } from '../../helpers/incidents';

const TENANT = '8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b';
const INCIDENT = '6a3c1f0e-2b4d-4e8f-9a0b-1c2d3e4f5a6b';
const incidentText = readFileSync(join(SAMPLES, 'incident-create-bruteforce.json'), 'utf8');

function setup(options: { sender?: ChannelSender; policies?: PolicyRegistry; outboxClock?: () => Date; log?: Logger } = {}) {
  const store = openSqliteStore({ file: ':memory:' });
  const sent: NotificationRecord[] = [];
  const sender = options.sender ?? { send: async (n: NotificationRecord) => void sent.push(n) };
  const pipeline = new Pipeline({
    store,
    policies: options.policies ?? PolicyRegistry.fromDirectory(join(ROOT, 'policies')),
    brain: createBrain(),
    log: options.log ?? silentLogger,
    dispatcher: new OutboxDispatcher(store, sender, silentLogger, options.outboxClock),
    // The same clock writes the entries' createdAt, so a test that moves it past a backoff does not depend on real time.
    ...(options.outboxClock ? { clock: options.outboxClock } : {}),
    backoffMs: 1,
  });
  return { store, pipeline, sent };
}

const http = { kind: 'incident' as const, source: 'test' };

describe('pipeline idempotency', () => {
  it('gives one stored case and one notification per recipient for the same delivery three times', async () => {
    const { store, pipeline, sent } = setup();

    const outcomes = [];
    for (let i = 0; i < 3; i++) outcomes.push(await pipeline.ingestText(incidentText, http));

    expect(outcomes.map((o) => o.items[0]?.status)).toEqual(['triaged', 'duplicate', 'duplicate']);
    const outbox = await store.listNotifications({ tenantId: TENANT, caseId: INCIDENT });
    expect(outbox.length).toBeGreaterThan(0);
    expect(sent).toHaveLength(outbox.length);
    expect(new Set(sent.map((n) => n.key)).size).toBe(sent.length);
    expect((await store.getCase(TENANT, INCIDENT))?.revision).toBe(1);
  });

  it('makes an Update with a newer lastModifiedTimeUtc a new revision, and ignores an older one as stale', async () => {
    const { store, pipeline, sent } = setup();
    const update = JSON.parse(incidentText) as { objectEventType: string; object: { properties: Record<string, unknown> } };
    update.objectEventType = 'Update';
    update.object.properties.lastModifiedTimeUtc = '2026-11-20T01:20:00.000Z';
    update.object.properties.status = 'Active';
    const older = structuredClone(update);
    older.object.properties.lastModifiedTimeUtc = '2026-11-20T01:00:00.000Z';

    await pipeline.ingestText(incidentText, http);
    const firstSends = sent.length;
    const revised = await pipeline.ingest(update, http);
    const stale = await pipeline.ingest(older, http);

    expect(revised.items[0]?.status).toBe('revised');
    expect(revised.items[0]?.result?.revision).toBe(2);
    expect(stale.items[0]?.status).toBe('stale');
    expect((await store.getCase(TENANT, INCIDENT))?.revision).toBe(2);
    // Same severity: the revision notifies nobody again.
    expect(sent).toHaveLength(firstSends);
  });

  it('lists exactly the steps that ran, and says when the tenant had no policy', async () => {
    const { pipeline } = setup({ policies: new PolicyRegistry() });

    const out = await pipeline.ingestText(incidentText, http);

    const result = out.items[0]?.result;
    expect(result?.steps.map((s) => s.step)).toEqual(['parse', 'dedupe', 'classify', 'correlate', 'score', 'notify', 'persist']);
    expect(result?.policy.source).toBe('default');
    // Detection is the alert's generation time (01:12:58), earlier than the incident's creation.
    expect(result?.sla).toMatchObject({ detectedAt: '2026-11-20T01:12:58.000Z', notifyBy: '2026-11-20T01:27:58.000Z' });
  });

  it('delivers later what a failing channel could not send, once its backoff is over, without duplicating what it did', async () => {
    let fail = true;
    let now = Date.now();
    const delivered: string[] = [];
    const { store, pipeline } = setup({
      sender: {
        send: async (n) => {
          if (fail) throw new Error('channel down');
          delivered.push(n.key);
        },
      },
      outboxClock: () => new Date(now),
    });

    await pipeline.ingestText(incidentText, http);
    const queued = await store.listNotifications({ caseId: INCIDENT, status: 'queued' });
    fail = false;
    await pipeline.ingestText(incidentText, http); // a redelivery at once: the failed entries wait out their backoff
    const sentTooEarly = delivered.length;
    now += 31_000; // past the first 30 s backoff
    await pipeline.ingestText(incidentText, http); // the redelivery finishes the delivery
    await pipeline.ingestText(incidentText, http);

    expect(queued.length).toBeGreaterThan(0);
    expect(sentTooEarly).toBe(0);
    expect(delivered.sort()).toEqual(queued.map((n) => n.key).sort());
    expect(await store.listNotifications({ caseId: INCIDENT, status: 'queued' })).toEqual([]);
  });

  it('parks a rejected item with its reason and raw body, and keeps its neighbours', async () => {
    const { store, pipeline } = setup();
    const rows = JSON.parse(readFileSync(join(SAMPLES, 'securityalert-records.json'), 'utf8')) as unknown[];

    const out = await pipeline.ingest([rows[0], { SystemAlertId: 'x', TimeGenerated: 'not a date' }, rows[1]], {
      kind: 'alerts',
      source: 'test',
    });

    expect(out.counts).toMatchObject({ triaged: 2, rejected: 1 });
    const parked = await store.listParked({});
    expect(parked).toHaveLength(1);
    expect(parked[0]).toMatchObject({ source: 'test', errorName: 'InputValidationError' });
    expect(parked[0]?.issues.some((i) => i.path.startsWith('$[1]'))).toBe(true);
    expect(parked[0]?.body).toContain('not a date');
  });

  it('parks a record nested 5,000 levels deep instead of crashing, and triages the records around it', async () => {
    const { store, pipeline } = setup();
    const rows = JSON.parse(readFileSync(join(SAMPLES, 'securityalert-records.json'), 'utf8')) as unknown[];
    const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    const event = `{"records":[${JSON.stringify(rows[0])},${deep},${JSON.stringify(rows[1])}]}`;

    const out = await pipeline.ingest([event], { kind: 'eventhub-batch', source: 'test' });

    expect(out.counts).toMatchObject({ triaged: 2, rejected: 1 });
    const parked = await store.listParked({});
    expect(parked).toHaveLength(1);
    expect(parked[0]?.issues[0]?.path).toBe('$[0].records[1]');
    expect(parked[0]?.body).toBe(deep);
  });

  it('parks an Event Hub event that arrived as bytes as its text, so it can be read and replayed', async () => {
    const { store, pipeline } = setup();

    const out = await pipeline.ingest([Buffer.from('{"records": [ truncated')], { kind: 'eventhub-batch', source: 'test' });

    expect(out.counts).toMatchObject({ rejected: 1 });
    const parked = await store.listParked({});
    expect(parked[0]?.body).toBe('{"records": [ truncated');
  });

  it('parks a string item of an HTTP alerts body as its JSON, so a replay refuses it for the same reason', async () => {
    const { store, pipeline } = setup();

    const out = await pipeline.ingest(['hello'], { kind: 'alerts', source: 'test' });
    const parked = await store.listParked({});
    const replayed = await pipeline.ingestText(parked[0]?.body ?? '', { kind: 'alerts', source: 'replay' });

    expect(out.counts).toMatchObject({ rejected: 1 });
    expect(parked[0]?.body).toBe('"hello"');
    expect(replayed.items[0]?.status).toBe('rejected');
    expect(replayed.items[0]?.error?.issues?.[0]?.reason).toBe(out.items[0]?.error?.issues?.[0]?.reason);
  });

  it('parks a case whose store write keeps failing, so the alert is never lost, and logs it with its case and step', async () => {
    const lines: Record<string, unknown>[] = [];
    const { store, pipeline } = setup({
      log: createLogger({ level: 'warn', sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) }),
    });
    const real = store.putCase.bind(store);
    store.putCase = async () => {
      throw new StoreUnavailableError('disk full');
    };

    const out = await pipeline.ingestText(incidentText, http);
    store.putCase = real;

    expect(out.items[0]?.status).toBe('failed');
    const parked = await store.listParked({});
    expect(parked[0]?.errorName).toBe('StoreUnavailableError');
    for (const event of ['case.failed', 'item.parked'])
      expect(lines.find((l) => l.event === event)).toMatchObject({ tenantId: TENANT, caseId: INCIDENT, step: 'persist' });
    // The parked body replays into a real case once the store is back.
    const replayed = await pipeline.ingestText(parked[0]?.body ?? '', { kind: 'auto', source: 'replay' });
    expect(replayed.items[0]?.error).toBeUndefined();
    expect(replayed.items[0]?.status).toBe('triaged');
  });
});

describe('rawAt', () => {
  it('finds the original item inside arrays, envelopes, JSON strings and bytes', async () => {
    const row = { SystemAlertId: 'a' };
    const batch = [{ records: [{}, row] }, JSON.stringify({ records: [row] }), Buffer.from(JSON.stringify({ records: [row] }))];

    expect(rawAt(batch, '$[0].records[1]')).toEqual(row);
    expect(rawAt(batch, '$[1].records[0]')).toEqual(row);
    expect(rawAt(batch, '$[2].records[0]')).toEqual(row);
    expect(rawAt(batch, '$')).toBe(batch);
    expect(rawAt(batch, '$[9].records[0]')).toBeUndefined();
  });
});

describe('pipeline delivery failures', () => {
  it('keeps a committed case triaged when recording a delivery fails, and sends what is left on the next delivery', async () => {
    const { store, pipeline, sent } = setup();
    const realMark = store.markNotification.bind(store);
    store.markNotification = async () => {
      throw new StoreUnavailableError('store hiccup');
    };

    const first = await pipeline.ingestText(incidentText, http);
    store.markNotification = realMark;
    const again = await pipeline.ingestText(incidentText, http);

    expect(first.items[0]?.status).toBe('triaged');
    expect(again.items[0]?.status).toBe('duplicate');
    expect(await store.listNotifications({ caseId: INCIDENT, status: 'queued' })).toEqual([]);
    // At-least-once towards the channel: the first send happened, its status could not be recorded.
    expect(sent.length).toBeGreaterThanOrEqual(1);
  });
});

describe('pipeline ordering of concurrent deliveries', () => {
  const chain = readFileSync(join(ROOT, 'examples', 'attack-chain.ndjson'), 'utf8')
    .trim()
    .split('\n');
  const alerts = { kind: 'alerts' as const, source: 'test' };

  it('correlates two related alerts delivered at the same moment in arrival order, instead of both missing each other', async () => {
    const { pipeline } = setup();

    // Act: both deliveries in flight together (as concurrent HTTP requests are).
    const [first, second] = await Promise.all([
      pipeline.ingestText(chain[0] as string, alerts),
      pipeline.ingestText(chain[1] as string, alerts),
    ]);

    const firstId = first.items[0]?.caseId as string;
    expect(first.items[0]?.result?.killChain.relatedCaseIds).toEqual([]);
    expect(second.items[0]?.result?.killChain.relatedCaseIds).toEqual([firstId]);
  });
});

describe('pipeline revisions of one incident', () => {
  const NAME = '11111111-2222-4333-8444-555555555555';
  const incident = (event: 'Create' | 'Update', lastModifiedTimeUtc: string, severity: string, status = 'Active'): unknown =>
    uncodedIncident(NAME, event, lastModifiedTimeUtc, severity, status);
  const escalations = (sent: readonly NotificationRecord[]) => sent.filter((n) => n.kind === 'escalation');

  it('keeps two updates within one millisecond in order: the older, delivered last, is stale and changes nothing', async () => {
    const { store, pipeline } = setup();
    await pipeline.ingest(incident('Create', '2026-11-20T01:00:00.000Z', 'Medium'), http);

    const newer = await pipeline.ingest(incident('Update', '2026-11-20T01:05:00.1239Z', 'High'), http);
    const older = await pipeline.ingest(incident('Update', '2026-11-20T01:05:00.1231Z', 'Medium', 'Closed'), http);

    expect(newer.items[0]?.status).toBe('revised');
    expect(older.items[0]?.status).toBe('stale');
    const stored = await store.getCase(TENANT, NAME);
    expect(stored?.revision).toBe(2);
    expect(stored?.result.severity).toBe('high');
    expect(stored?.revisionKey).toBe('2026-11-20T01:05:00.1239Z');
    expect(stored?.case.sentinel?.lastModifiedTimeUtc).toBe('2026-11-20T01:05:00.123Z');
  });

  it('settles two different contents under one revision key on one of them, whatever order they are redelivered in', async () => {
    const { store, pipeline, sent } = setup();
    const a = incident('Update', '2026-11-20T01:05:00.000Z', 'High');
    const b = incident('Update', '2026-11-20T01:05:00.000Z', 'Medium', 'Closed');
    await pipeline.ingest(incident('Create', '2026-11-20T01:00:00.000Z', 'Medium'), http);

    await pipeline.ingest(a, http);
    await pipeline.ingest(b, http);
    const settled = await store.getCase(TENANT, NAME);
    const sentBefore = sent.length;

    const statuses: string[] = [];
    for (const body of [a, b, a, b]) statuses.push((await pipeline.ingest(body, http)).items[0]?.status ?? '');

    // Whichever content won, redeliveries of either are answered as duplicate (the winner) or stale.
    expect([...new Set(statuses)].sort()).toEqual(['duplicate', 'stale']);
    const stored = await store.getCase(TENANT, NAME);
    expect(stored?.revision).toBe(settled?.revision);
    expect(stored?.fingerprint).toBe(settled?.fingerprint);
    expect(sent).toHaveLength(sentBefore);
  });

  it('never pages twice for one level: a case that goes down and up again notifies nobody the second time', async () => {
    const { pipeline, sent } = setup();
    await pipeline.ingest(incident('Create', '2026-11-20T01:00:00.000Z', 'Medium'), http);

    const up = await pipeline.ingest(incident('Update', '2026-11-20T01:05:00.000Z', 'High'), http);
    const afterUp = escalations(sent).length;
    await pipeline.ingest(incident('Update', '2026-11-20T01:06:00.000Z', 'Medium'), http);
    const upAgain = await pipeline.ingest(incident('Update', '2026-11-20T01:07:00.000Z', 'High'), http);

    expect(afterUp).toBeGreaterThan(0);
    expect(escalations(sent)).toHaveLength(afterUp);
    expect(up.items[0]?.result?.notifiedSeverity).toBe('high');
    expect(upAgain.items[0]?.result?.revision).toBe(4);
    expect(upAgain.items[0]?.result?.notifiedSeverity).toBe('high');
  });

  it('answers a revision that notifies with the whole outbox of the case, first reports included', async () => {
    const { store, pipeline } = setup();
    await pipeline.ingest(incident('Create', '2026-11-20T01:00:00.000Z', 'Medium'), http);

    const up = await pipeline.ingest(incident('Update', '2026-11-20T01:05:00.000Z', 'High'), http);

    const outbox = await store.listNotifications({ tenantId: TENANT, caseId: NAME });
    const answer = up.items[0]?.result;
    expect(answer?.notifications).toHaveLength(outbox.length);
    expect(answer?.notifications.map((n) => n.kind)).toEqual(expect.arrayContaining(['first-report', 'escalation']));
    expect(answer?.sla.firstNotifiedAt).toBeDefined();
  });
});
