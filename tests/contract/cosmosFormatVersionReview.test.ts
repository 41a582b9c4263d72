/**
 * Review of the Cosmos format versions (shared/store/cosmos.ts, header "Format version"): the paths
 * that write to a document without reading it first (the patches), documents whose `fv` is not a
 * version at all, and what a refused document does further up: the pipeline parks the alert at
 * once, and GET /api/cases answers 500, never "not found". Documents of a newer build are simulated
 * by writing raw documents with the SDK, on the local stand-in.
 */
import { join } from 'node:path';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { getCase as getCaseHandler } from '../../functions/getCase';
import { PolicyRegistry } from '../../shared/config/policy';
import { ConfigError } from '../../shared/errors';
import { Pipeline } from '../../shared/pipeline/pipeline';
import { createRuntime, setRuntime } from '../../shared/runtime';
import { createBrain } from '../../shared/triage/brain';
import { ROOT, scratch } from '../helpers/cli';
import { body, cosmosWithRawAccess, NEWER_SHAPE, type RawDoc } from '../helpers/cosmosRaw';
import { startCountingProxy } from '../helpers/countingProxy';
import { uncodedIncident } from '../helpers/incidents';
import { caseRecord, notification, parked, sighting } from './fixtures';

const AT = '2024-05-01T10:00:00.000Z';
const KEY = 'ip:203.0.113.77';
const INCIDENT_TENANT = '8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b';
const INCIDENT_NAME = '11111111-2222-4333-8444-555555555555';

const fixture = cosmosWithRawAccess('format-review');
const { open, container, docs, lines, logger } = fixture;

afterEach(() => {
  setRuntime(undefined);
});

/** Replaces the stored document of `docType` with its body plus `change` (what another writer would leave). */
async function rewrite(name: 'cases' | 'parked', docType: string | undefined, change: Record<string, unknown>): Promise<RawDoc> {
  const stored = (await docs(name)).find((d) => docType === undefined || d.docType === docType);
  if (!stored) throw new Error(`no ${docType ?? name} document to rewrite`);
  const partitionKey = name === 'parked' ? stored.id : 't';
  const { resource } = await container(name)
    .item(stored.id, partitionKey)
    .replace({ ...body(stored), ...change });
  return resource as RawDoc;
}

const newerLines = () => lines.filter((l) => l.event === 'store.cosmos.format.newer');

describe('Cosmos store format versions: writes that do not read first', () => {
  it('does not mark an outbox entry of a newer format, and refuses with ConfigError', async () => {
    // Arrange: the entry this build queued, since rewritten by a newer build
    const store = await open();
    const n = notification('t', 'case-1', 'soc@contoso.example');
    await store.enqueueNotification(n);
    const before = await rewrite('cases', 'outbox', NEWER_SHAPE);

    // Act
    const marked = await store.markNotification('t', n.key, { status: 'sent', sentAt: AT, attempts: 1 }).catch((err: unknown) => err);

    // Assert: nothing of the newer document changed, and the refusal is the one reads give
    const after = (await docs('cases')).find((d) => d.docType === 'outbox');
    expect(marked).toBeInstanceOf(ConfigError);
    expect(after?._etag).toBe(before._etag);
    expect([after?.status, after?.sentAt, after?.fv]).toEqual([before.status, undefined, 2]);
    expect(newerLines()).toEqual([expect.objectContaining({ level: 'error', tenantId: 't', docId: before.id, formatVersion: 2 })]);
  });

  it('does not mark a parked item of a newer format replayed, and refuses with ConfigError', async () => {
    // Arrange
    const store = await open();
    await store.park(parked('p-1', AT, 't'));
    const before = await rewrite('parked', undefined, NEWER_SHAPE);

    // Act
    const marked = await store.markParkedReplayed('p-1', AT).catch((err: unknown) => err);

    // Assert
    const after = (await docs('parked'))[0];
    expect(marked).toBeInstanceOf(ConfigError);
    expect(after?._etag).toBe(before._etag);
    expect(after?.replayedAt).toBeUndefined();
    expect(newerLines()).toEqual([expect.objectContaining({ docId: 'p-1', formatVersion: 2 })]);
  });

  it('still marks entries and parked items of its own format, and those written before `fv`', async () => {
    // Arrange: one outbox entry and one parked item as this build writes them, one of each without `fv`
    const store = await open();
    const current = notification('t', 'case-1', 'soc@contoso.example');
    const old = notification('t', 'case-1', 'lead@contoso.example');
    await store.enqueueNotification(current);
    await store.enqueueNotification(old);
    await store.park(parked('p-1', AT, 't'));
    await store.park(parked('p-2', AT, 't'));
    for (const doc of await docs('cases')) {
      if (doc.docType !== 'outbox' || doc.recipient !== old.recipient) continue;
      const { fv: _fv, ...withoutFv } = body(doc);
      await container('cases').item(doc.id, 't').replace(withoutFv);
    }
    const { fv: _fv, ...oldParked } = body((await docs('parked')).find((d) => d.id === 'p-2') ?? { id: 'p-2' });
    await container('parked').item('p-2', 'p-2').replace(oldParked);

    // Act
    await store.markNotification('t', current.key, { status: 'sent', sentAt: AT, attempts: 1 });
    await store.markNotification('t', old.key, { status: 'failed', attempts: 8, lastError: 'channel down' });
    await store.markParkedReplayed('p-1', AT);
    await store.markParkedReplayed('p-2', AT);
    await store.markNotification('t', 'no-such-key', { status: 'sent', sentAt: AT, attempts: 1 });

    // Assert
    const listed = await store.listNotifications({ tenantId: 't' });
    const replayed = await store.listParked({ includeReplayed: true });
    expect(listed.map((x) => [x.recipient, x.status, x.attempts]).sort()).toEqual([
      ['lead@contoso.example', 'failed', 8],
      ['soc@contoso.example', 'sent', 1],
    ]);
    expect(replayed.map((p) => [p.id, p.replayedAt]).sort()).toEqual([
      ['p-1', AT],
      ['p-2', AT],
    ]);
    expect(lines.filter((l) => l.event === 'store.notification.unknown').map((l) => l.key)).toEqual(['no-such-key']);
    expect(newerLines()).toEqual([]);
  });
  it('marks with one request, and sends the patch again when a refused document reads as of a known format', async () => {
    // Arrange: a proxy counting requests, the entry queued through it
    const proxy = await startCountingProxy(fixture.server.endpoint);
    try {
      const store = await open(logger(), proxy.endpoint);
      const n = notification('t', 'case-1', 'soc@contoso.example');
      await store.enqueueNotification(n);
      proxy.reset();

      // Act: one mark as usual, then one whose patch is answered 412 (as if the document had been newer a moment ago)
      await store.markNotification('t', n.key, { status: 'queued', attempts: 1, lastError: 'channel down' });
      const usual = proxy.seen.map((r) => [r.method, r.kind]);
      proxy.reset();
      proxy.inject({ status: 412, kinds: ['point'] });
      await store.markNotification('t', n.key, { status: 'sent', sentAt: AT, attempts: 2 });
      const rechecked = proxy.seen.map((r) => [r.method, r.kind, r.status]);

      // Assert
      const [stored] = await store.listNotifications({ tenantId: 't' });
      expect(usual).toEqual([['PATCH', 'point']]);
      expect(rechecked).toEqual([
        ['PATCH', 'point', 412],
        ['GET', 'point', 200],
        ['PATCH', 'point', 200],
      ]);
      expect([stored?.status, stored?.attempts]).toEqual(['sent', 2]);
      expect(newerLines()).toEqual([]);
    } finally {
      await proxy.close();
    }
  });
});

describe('Cosmos store format versions: a `fv` that is no version', () => {
  it.each([
    ['"1"', '1'],
    ['null', null],
    ['1.5', 1.5],
    ['0', 0],
    ['-1', -1],
    ['true', true],
  ])('refuses a case document with fv %s as unreadable data, not as the work of a newer build', async (_label, fv) => {
    // Arrange
    const writer = await open();
    await writer.putCase(caseRecord('t', 'case-1'), [sighting('t', 'case-1', KEY, AT)], undefined);
    await rewrite('cases', 'case', { fv });
    const reader = await open();

    // Act
    const got = await reader.getCase('t', 'case-1').catch((err: unknown) => err);

    // Assert: refused (never read as version 1), and the operator is not sent looking for a newer build
    expect(got).toBeInstanceOf(ConfigError);
    expect((got as ConfigError).message).toContain('is not a format version');
    expect((got as ConfigError).message).not.toContain('newer build');
    expect(newerLines()).toEqual([expect.objectContaining({ docId: 'case:case-1', tenantId: 't', caseId: 'case-1' })]);
  });

  it('does not patch an outbox entry whose fv is no version', async () => {
    // Arrange
    const store = await open();
    const n = notification('t', 'case-1', 'soc@contoso.example');
    await store.enqueueNotification(n);
    const before = await rewrite('cases', 'outbox', { fv: '1' });

    // Act
    const marked = await store.markNotification('t', n.key, { status: 'sent', sentAt: AT, attempts: 1 }).catch((err: unknown) => err);

    // Assert
    const after = (await docs('cases')).find((d) => d.docType === 'outbox');
    expect(marked).toBeInstanceOf(ConfigError);
    expect(after?._etag).toBe(before._etag);
  });
});

describe('Cosmos store format versions: a refusal further up', () => {
  const incident = (event: 'Create' | 'Update', at: string) => uncodedIncident(INCIDENT_NAME, event, at, 'Medium');
  const http = { kind: 'incident' as const, source: 'test' };

  it('parks the alert at once when its case document is of a newer format, and leaves the document alone', async () => {
    // Arrange: the case as this build wrote it, then taken over by a newer build
    const store = await open();
    const pipeline = new Pipeline({
      store,
      policies: PolicyRegistry.fromDirectory(join(ROOT, 'policies')),
      brain: createBrain(),
      log: logger(),
      backoffMs: 1,
    });
    await pipeline.ingest(incident('Create', '2026-11-20T01:00:00.000Z'), http);
    const stored = (await docs('cases')).find((d) => d.docType === 'case');
    if (!stored) throw new Error('the first ingest wrote no case');
    const { resource: newer } = await container('cases')
      .item(stored.id, INCIDENT_TENANT)
      .replace({ ...body(stored), ...NEWER_SHAPE });

    // Act
    const outcome = await pipeline.ingest(incident('Update', '2026-11-20T01:05:00.000Z'), http);

    // Assert: parked with the refusal, tried once (no transient retries), and the newer document untouched
    const item = outcome.items[0];
    const parkedItems = await docs('parked');
    const after = (await docs('cases')).find((d) => d.docType === 'case');
    expect(item).toMatchObject({ status: 'failed', error: { name: 'ConfigError' } });
    expect(parkedItems.map((p) => [p.id, p.errorName])).toEqual([[item?.parkedId, 'ConfigError']]);
    expect(newerLines()).toHaveLength(1);
    expect(after?._etag).toBe(newer?._etag);
  });

  it('answers GET /api/cases/{id} with 500 for a case document of a newer format, with or without the tenant', async () => {
    // Arrange
    const store = await open();
    await store.putCase(caseRecord('t', 'case-1'), [sighting('t', 'case-1', KEY, AT)], undefined);
    await rewrite('cases', 'case', NEWER_SHAPE);
    const rt = await createRuntime(
      {
        POLICY_DIR: join(ROOT, 'policies'),
        INDICATOR_FILES: join(ROOT, 'indicators', 'soc-global.csv'),
        OUTBOX_FILE: join(scratch(), 'o.jsonl'),
      },
      { log: logger(), store },
    );
    setRuntime(rt);
    const ctx = () => new InvocationContext({ functionName: 'test', invocationId: 'inv-1' });
    const get = (query: string) =>
      new HttpRequest({ method: 'GET', url: `http://localhost/api/cases/case-1${query}`, params: { id: 'case-1' } });

    // Act
    const byTenant = await getCaseHandler(get('?tenantId=t'), ctx());
    const anyTenant = await getCaseHandler(get(''), ctx());

    // Assert
    expect([byTenant.status, anyTenant.status]).toEqual([500, 500]);
    expect(JSON.stringify([byTenant.jsonBody, anyTenant.jsonBody])).not.toContain('Brute force');
  });

  it('releases no lease of a newer format: the read before the delete refuses it', async () => {
    // Arrange: a lease a newer build holds for owner w1 (this process never saw its etag)
    const store = await open();
    await container('cases').items.create({
      id: 'lease:case-1',
      docType: 'lease',
      tenantId: 't',
      caseId: 'case-1',
      owner: 'w1',
      expiresAt: AT,
      ...NEWER_SHAPE,
    });

    // Act
    const released = await store.releaseLease('t', 'case-1', 'w1').catch((err: unknown) => err);

    // Assert
    expect(released).toBeInstanceOf(ConfigError);
    expect((await docs('cases')).map((d) => d.id)).toEqual(['lease:case-1']);
  });

  it('refuses a payload document of a newer format met by a listing of the outbox', async () => {
    // Arrange: the entry is this build's, the text it points at was rewritten by a newer build
    const writer = await open();
    await writer.enqueueNotification(notification('t', 'case-1', 'soc@contoso.example'));
    await rewrite('cases', 'payload', NEWER_SHAPE);
    const reader = await open();

    // Act
    const drain = await reader.listNotifications({ status: 'queued', limit: 500 }).catch((err: unknown) => err);

    // Assert
    expect(drain).toBeInstanceOf(ConfigError);
    expect(newerLines()).toEqual([expect.objectContaining({ tenantId: 't', formatVersion: 2 })]);
  });

  it('writes a revision on top of a case document read without `fv` and repaired, at version 1', async () => {
    // Arrange: a case written before `fv`, owing one index row
    const writer = await open();
    await writer.putCase(caseRecord('t', 'case-1'), [sighting('t', 'case-1', KEY, AT)], undefined);
    const stored = (await docs('cases')).find((d) => d.docType === 'case');
    const { fv: _fv, ...old } = body(stored ?? { id: 'case:case-1' });
    const owed = {
      delete: [],
      upsert: [{ entityKey: 'host:vpn01', detectedAt: AT, phases: ['exploitation'], playbook: 'brute-force', severity: 'medium' }],
    };
    await container('cases')
      .item(old.id, 't')
      .replace({ ...old, indexTodo: owed });
    const reader = await open();

    // Act: the read finishes the to-do, then a revision is written on top of what it answered
    const read = await reader.getCase('t', 'case-1');
    const repaired = (await docs('cases')).find((d) => d.docType === 'case');
    await reader.putCase(caseRecord('t', 'case-1', { revision: 2 }), [sighting('t', 'case-1', 'host:vpn01', AT)], read?.etag);

    // Assert
    const after = await docs('cases');
    expect(repaired?.fv).toBe(1);
    expect(after.filter((d) => d.docType === 'case').map((d) => [d.revision, d.fv, d.indexTodo])).toEqual([[2, 1, undefined]]);
    expect(after.filter((d) => d.fv !== 1).map((d) => d.id)).toEqual([]);
  });
});
