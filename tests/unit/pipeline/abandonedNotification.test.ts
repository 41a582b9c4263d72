import type { NotificationRecord } from '../../../shared/store/port';
import { openSqliteStore } from '../../../shared/store/sqlite';
import { countingStore } from '../../helpers/countingStore';
import { pipelineWithFlakyChannel, uncodedIncident } from '../../helpers/incidents';

const TENANT = '8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b';
const NAME = '11111111-2222-4333-8444-555555555555';
const http = { kind: 'incident' as const, source: 'test' };

const incident = (event: 'Create' | 'Update', lastModifiedTimeUtc: string, severity: string, status = 'Active'): unknown =>
  uncodedIncident(NAME, event, lastModifiedTimeUtc, severity, status);

/** A pipeline whose channel fails while `down(n)` says so (pipelineWithFlakyChannel), on a store counting its outbox reads. */
function setup(down: (n: NotificationRecord) => boolean) {
  const { store, calls: outboxReads } = countingStore(openSqliteStore({ file: ':memory:' }), 'listNotifications');
  return { store, outboxReads, ...pipelineWithFlakyChannel(store, down) };
}

describe('a revision after an abandoned notification', () => {
  it('sends the first report again when the first one was abandoned, keyed by the new revision, once', async () => {
    // Arrange: the first report of r1 fails and is abandoned
    let channelDown = true;
    const { store, pipeline, sent } = setup(() => channelDown);
    await pipeline.ingest(incident('Create', '2026-11-20T01:00:00.000Z', 'Medium'), http);
    const abandoned = await store.listNotifications({ tenantId: TENANT, caseId: NAME });
    channelDown = false;

    // Act: the same alert updated at the same severity, then that revision redelivered
    const update = incident('Update', '2026-11-20T01:05:00.000Z', 'Medium');
    const revised = await pipeline.ingest(update, http);
    const again = await pipeline.ingest(update, http);

    // Assert
    expect(abandoned.length).toBeGreaterThan(0);
    expect(abandoned.every((n) => n.status === 'failed')).toBe(true);
    expect(revised.items[0]?.status).toBe('revised');
    expect(again.items[0]?.status).toBe('duplicate');
    expect(sent.map((n) => n.kind)).toEqual(abandoned.map(() => 'first-report'));
    expect(sent.every((n) => n.revision === 2 && n.key.endsWith('|r2'))).toBe(true);
    expect(new Set(sent.map((n) => n.key)).size).toBe(sent.length);
    expect(sent.map((n) => n.key).filter((k) => abandoned.some((a) => a.key === k))).toEqual([]);
    const notify = revised.items[0]?.result?.steps.find((s) => s.step === 'notify');
    expect(notify?.detail).toMatch(/again: the medium notification of r1 was abandoned/);
    expect(revised.items[0]?.result?.sla.firstNotifiedAt).toBeDefined();
    expect(revised.items[0]?.result?.notifiedSeverity).toBe('medium');
  });

  it('does not notify a same-severity revision when the first report was sent', async () => {
    // Arrange: the first report of r1 goes through
    const { store, pipeline, sent } = setup(() => false);
    await pipeline.ingest(incident('Create', '2026-11-20T01:00:00.000Z', 'Medium'), http);
    const first = sent.length;

    // Act
    const revised = await pipeline.ingest(incident('Update', '2026-11-20T01:05:00.000Z', 'Medium'), http);

    // Assert
    expect(first).toBeGreaterThan(0);
    expect(revised.items[0]?.status).toBe('revised');
    expect(sent).toHaveLength(first);
    expect(await store.listNotifications({ tenantId: TENANT, caseId: NAME })).toHaveLength(first);
    expect(revised.items[0]?.result?.steps.find((s) => s.step === 'notify')?.detail).toBe('0 notification(s) queued');
  });

  it('escalates again to a level whose escalation was abandoned, and stays quiet at the level still announced', async () => {
    // Arrange: r1 medium is sent; r2 high's escalation fails and is abandoned
    const { pipeline, sent } = setup((n) => n.kind === 'escalation' && n.revision === 2);
    await pipeline.ingest(incident('Create', '2026-11-20T01:00:00.000Z', 'Medium'), http);
    await pipeline.ingest(incident('Update', '2026-11-20T01:05:00.000Z', 'High'), http);
    const before = sent.length;

    // Act: back to medium (announced: nothing to say), then high again (its announcement never arrived)
    const down = await pipeline.ingest(incident('Update', '2026-11-20T01:06:00.000Z', 'Medium'), http);
    const afterDown = sent.length;
    const up = await pipeline.ingest(incident('Update', '2026-11-20T01:07:00.000Z', 'High'), http);

    // Assert
    expect(afterDown).toBe(before);
    expect(down.items[0]?.result?.notifiedSeverity).toBe('medium');
    const escalated = sent.slice(afterDown);
    expect(escalated.length).toBeGreaterThan(0);
    expect(escalated.every((n) => n.kind === 'escalation' && n.key.endsWith('|r4'))).toBe(true);
    expect(up.items[0]?.result?.steps.find((s) => s.step === 'notify')?.detail).toMatch(/again: the high notification of r2 was abandoned/);
    expect(up.items[0]?.result?.notifiedRevisions).toEqual([
      { revision: 1, severity: 'medium', entries: 3 },
      { revision: 2, severity: 'high', entries: escalated.length },
      { revision: 4, severity: 'high', entries: escalated.length },
    ]);
  });

  it('escalates again after an abandoned escalation on a case whose earlier notifications predate the history', async () => {
    // Arrange: r1 low and r2 medium are announced; their result is rewritten as written before notifiedRevisions existed;
    // then r3's high escalation fails and is abandoned
    const { store, pipeline, sent } = setup((n) => n.kind === 'escalation' && n.revision === 3);
    await pipeline.ingest(incident('Create', '2026-11-20T01:00:00.000Z', 'Low'), http);
    await pipeline.ingest(incident('Update', '2026-11-20T01:05:00.000Z', 'Medium'), http);
    const stored = await store.getCase(TENANT, NAME);
    if (!stored) throw new Error('r2 not stored');
    // The history this test strips must have been there to strip.
    expect(stored.result.notifiedRevisions).toBeDefined();
    const { notifiedRevisions: _kept, ...legacy } = stored.result;
    await store.putCase({ ...stored, result: legacy }, [], stored.etag);
    await pipeline.ingest(incident('Update', '2026-11-20T01:06:00.000Z', 'High'), http);
    const before = sent.length;

    // Act: high again
    const up = await pipeline.ingest(incident('Update', '2026-11-20T01:07:00.000Z', 'High'), http);

    // Assert: the high escalation nobody received is made again, by r4
    expect(up.items[0]?.status).toBe('revised');
    const escalated = sent.slice(before);
    expect(escalated.length).toBeGreaterThan(0);
    expect(escalated.every((n) => n.kind === 'escalation' && n.revision === 4)).toBe(true);
    expect(up.items[0]?.result?.notifiedSeverity).toBe('high');
  });

  it('reads no outbox entry to plan a new case, and the outbox of the case once to plan a revision', async () => {
    // Arrange
    const { pipeline, outboxReads } = setup(() => false);

    // Act
    const created = await pipeline.ingest(incident('Create', '2026-11-20T01:00:00.000Z', 'Medium'), http);
    const readsForNew = outboxReads();
    const revised = await pipeline.ingest(incident('Update', '2026-11-20T01:05:00.000Z', 'Medium'), http);

    // Assert
    expect(created.items[0]?.status).toBe('triaged');
    expect(revised.items[0]?.status).toBe('revised');
    expect(readsForNew).toBe(0);
    expect(outboxReads()).toBe(1);
  });
});
