/**
 * Format versions of Cosmos documents (shared/store/cosmos.ts, header "Format version"): every
 * document written carries `fv`, a document without it is read as version 1, and a document a
 * newer build wrote (simulated here by writing raw documents with the SDK) is refused with
 * ConfigError instead of being answered, found or listed as something it is not.
 */
import { ConfigError } from '../../shared/errors';
import type { CosmosStore } from '../../shared/store/cosmos';
import type { CaseRecord } from '../../shared/store/port';
import { body, cosmosWithRawAccess, NEWER_SHAPE } from '../helpers/cosmosRaw';
import { caseRecord, notification, parked, sighting } from './fixtures';

const AT = '2024-05-01T10:00:00.000Z';
const WINDOW = { from: '2024-04-24T10:00:00.000Z', to: '2024-05-08T10:00:00.000Z' };
const KEY = 'ip:203.0.113.77';
const REPORT = 'First report for case-1: brute force against vpn01';

const { open, container, docs, lines } = cosmosWithRawAccess('format');

/** case-1 with its report sent to one recipient, indexed under KEY. */
function caseWithReport(): CaseRecord {
  const record = caseRecord('t', 'case-1');
  return { ...record, result: { ...record.result, firstReport: REPORT } };
}

async function writeCase(store: CosmosStore): Promise<CaseRecord> {
  return store.putCase(caseWithReport(), [sighting('t', 'case-1', KEY, AT)], undefined, [
    { ...notification('t', 'case-1', 'soc@contoso.example'), payload: REPORT },
  ]);
}

const newerLine = () => lines.find((l) => l.event === 'store.cosmos.format.newer');

describe('Cosmos store: document format versions', () => {
  it('writes its format version on every document kind', async () => {
    // Arrange
    const store = await open();
    const first = await writeCase(store);

    // Act: every kind of write (create, replace, upsert, batch) and the patches that follow some of them
    await store.putCase({ ...caseWithReport(), revision: 2, fingerprint: 'fp-2' }, [sighting('t', 'case-1', 'host:vpn01', AT)], first.etag);
    await store.enqueueNotification({ ...notification('t', 'case-1', 'lead@contoso.example'), payload: 'Second report' });
    await store.markNotification('t', notification('t', 'case-1', 'lead@contoso.example').key, { status: 'sent', sentAt: AT, attempts: 1 });
    await store.acquireLease({ tenantId: 't', caseId: 'case-1', owner: 'w1', expiresAt: '2024-05-01T10:01:00.000Z' }, AT);
    await store.park(parked('p-1', AT, 't'));
    await store.markParkedReplayed('p-1', AT);

    // Assert
    const cases = await docs('cases');
    const parkedItems = await docs('parked');
    expect([...new Set(cases.map((d) => d.docType))].sort()).toEqual(['case', 'lease', 'outbox', 'payload', 'sighting']);
    expect(parkedItems.map((d) => d.replayedAt)).toEqual([AT]);
    expect([...cases, ...parkedItems].filter((d) => d.fv !== 1).map((d) => d.id)).toEqual([]);
  });

  it('reads documents written without a format version as the current one', async () => {
    // Arrange: what a build from before `fv` wrote, including a case document that still owes an index row
    const writer = await open();
    await writeCase(writer);
    await writer.park(parked('p-1', AT, 't'));
    for (const doc of await docs('parked')) {
      const { fv: _fv, ...old } = body(doc);
      await container('parked').item(doc.id, doc.id).replace(old);
    }
    for (const doc of await docs('cases')) {
      const { fv: _fv, ...old } = body(doc);
      const owed = {
        delete: [],
        upsert: [{ entityKey: 'host:vpn01', detectedAt: AT, phases: ['exploitation'], playbook: 'brute-force', severity: 'medium' }],
      };
      await container('cases')
        .item(doc.id, 't')
        .replace(doc.docType === 'case' ? { ...old, indexTodo: owed } : old);
    }
    const reader = await open();

    // Act
    const read = await reader.getCase('t', 'case-1');
    const related = await reader.findRelated({ tenantId: 't', keys: [KEY, 'host:vpn01'], ...WINDOW, limitPerKey: 5 });
    const listed = await reader.listNotifications({ tenantId: 't' });
    const parkedItems = await reader.listParked({ tenantId: 't' });

    // Assert
    const after = await docs('cases');
    expect(read?.result).toEqual(caseWithReport().result);
    expect(related.sightings.map((s) => [s.entityKey, s.caseId]).sort()).toEqual([
      ['host:vpn01', 'case-1'],
      [KEY, 'case-1'],
    ]);
    expect(listed.map((n) => n.payload)).toEqual([REPORT]);
    expect(parkedItems.map((p) => p.id)).toEqual(['p-1']);
    // The case document the read finished is written back at the version it was read as (1), with its new row
    expect(after.filter((d) => d.docType === 'case').map((d) => [d.fv, d.indexTodo])).toEqual([[1, undefined]]);
    expect(after.filter((d) => d.docType === 'sighting' && d.entityKey === 'host:vpn01').map((d) => d.fv)).toEqual([1]);
    expect(newerLine()).toBeUndefined();
  });

  it('refuses a case document of a newer format instead of answering it', async () => {
    // Arrange
    const writer = await open();
    const written = await writeCase(writer);
    const stored = (await docs('cases')).find((d) => d.docType === 'case');
    await container('cases')
      .item('case:case-1', 't')
      .replace({ ...body(stored ?? { id: 'case:case-1' }), ...NEWER_SHAPE });
    const reader = await open();

    // Act
    const got = await reader.getCase('t', 'case-1').catch((err: unknown) => err);
    const found = await reader.findCase('case-1').catch((err: unknown) => err);
    const revised = await reader.putCase({ ...caseWithReport(), revision: 2 }, [], written.etag).catch((err: unknown) => err);

    // Assert
    expect(got).toBeInstanceOf(ConfigError);
    expect((got as ConfigError).setting).toBe('COSMOS_DATABASE');
    expect(found).toBeInstanceOf(ConfigError);
    expect(revised).toBeInstanceOf(ConfigError);
    expect(newerLine()).toMatchObject({ level: 'error', tenantId: 't', caseId: 'case-1', docId: 'case:case-1', formatVersion: 2 });
    expect(JSON.stringify(lines)).not.toContain('Brute force');
    expect((await docs('cases')).find((d) => d.docType === 'case')?.fv).toBe(2);
  });

  it('refuses an index row of a newer format met by findRelated', async () => {
    // Arrange: a row a newer build wrote for another case under the same key
    const store = await open();
    await writeCase(store);
    await container('cases').items.create({
      id: 'sighting:newer-row',
      docType: 'sighting',
      tenantId: 't',
      caseId: 'case-2',
      entityKey: KEY,
      detectedAt: '2024-05-01T09:00:00.000Z',
      ...NEWER_SHAPE,
    });

    // Act
    const related = await store
      .findRelated({ tenantId: 't', keys: [KEY], ...WINDOW, excludeCaseId: 'case-3', limitPerKey: 5 })
      .catch((err: unknown) => err);

    // Assert
    expect(related).toBeInstanceOf(ConfigError);
    expect(newerLine()).toMatchObject({ tenantId: 't', caseId: 'case-2', formatVersion: 2 });
  });

  it('refuses an outbox entry of a newer format met by listNotifications', async () => {
    // Arrange: an entry a newer build queued beside one of this build's
    const store = await open();
    await writeCase(store);
    await container('cases').items.create({
      ...notification('t', 'case-2', 'soc@contoso.example'),
      payload: undefined,
      id: 'outbox:newer-entry',
      docType: 'outbox',
      ...NEWER_SHAPE,
    });

    // Act
    const ofTenant = await store.listNotifications({ tenantId: 't' }).catch((err: unknown) => err);
    const drain = await store.listNotifications({ status: 'queued', limit: 500 }).catch((err: unknown) => err);

    // Assert
    expect(ofTenant).toBeInstanceOf(ConfigError);
    expect(drain).toBeInstanceOf(ConfigError);
    expect(newerLine()).toMatchObject({ docId: 'outbox:newer-entry', formatVersion: 2 });
  });

  it('refuses a payload document, a lease and a parked item of a newer format too', async () => {
    // Arrange
    const writer = await open();
    await writeCase(writer);
    const payload = (await docs('cases')).find((d) => d.docType === 'payload');
    await container('cases')
      .item(payload?.id ?? '', 't')
      .replace({ ...body(payload ?? { id: '' }), ...NEWER_SHAPE });
    await container('cases').items.create({
      id: 'lease:case-1',
      docType: 'lease',
      tenantId: 't',
      caseId: 'case-1',
      owner: 'w0',
      expiresAt: AT,
      ...NEWER_SHAPE,
    });
    await container('parked').items.create({ ...parked('p-1', AT, 't'), parkedId: 'p-1', ...NEWER_SHAPE });
    const reader = await open();

    // Act
    const got = await reader.getCase('t', 'case-1').catch((err: unknown) => err);
    const lease = await reader
      .acquireLease({ tenantId: 't', caseId: 'case-1', owner: 'w1', expiresAt: '2024-05-01T10:01:00.000Z' }, '2024-05-01T10:00:30.000Z')
      .catch((err: unknown) => err);
    const listed = await reader.listParked().catch((err: unknown) => err);

    // Assert
    expect(got).toBeInstanceOf(ConfigError);
    expect(lease).toBeInstanceOf(ConfigError);
    expect(listed).toBeInstanceOf(ConfigError);
    expect(lines.filter((l) => l.event === 'store.cosmos.format.newer').map((l) => l.docId)).toEqual([payload?.id, 'lease:case-1', 'p-1']);
  });
});
