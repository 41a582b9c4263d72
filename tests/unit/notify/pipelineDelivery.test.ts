import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PolicyRegistry } from '../../../shared/config/policy';
import { silentLogger } from '../../../shared/log';
import { OutboxDispatcher } from '../../../shared/notify/outbox';
import { Pipeline } from '../../../shared/pipeline/pipeline';
import type { NotificationRecord } from '../../../shared/store/port';
import { openSqliteStore } from '../../../shared/store/sqlite';
import { createBrain } from '../../../shared/triage/brain';
import { ROOT, SAMPLES } from '../../helpers/cli';
import { countingStore } from '../../helpers/countingStore';

/** A pipeline on in-memory SQLite whose channel counts sends per key, yielding once per send so deliveries interleave. */
function setup() {
  const real = openSqliteStore({ file: ':memory:' });
  const { store, calls: outboxReads } = countingStore(real, 'listNotifications');
  const sends = new Map<string, number>();
  const sender = {
    send: async (n: NotificationRecord) => {
      await new Promise<void>((r) => setImmediate(r));
      sends.set(n.key, (sends.get(n.key) ?? 0) + 1);
    },
  };
  const pipeline = new Pipeline({
    store,
    policies: PolicyRegistry.fromDirectory(join(ROOT, 'policies')),
    brain: createBrain(),
    log: silentLogger,
    dispatcher: new OutboxDispatcher(store, sender, silentLogger),
    backoffMs: 1,
  });
  return { store, pipeline, sends, outboxReads };
}

describe('delivery through the pipeline sends each outbox entry once', () => {
  it('one batch carrying the same alert twice: each key sent once', async () => {
    // Arrange
    const { store, pipeline, sends } = setup();
    const rows = JSON.parse(readFileSync(join(SAMPLES, 'securityalert-records.json'), 'utf8')) as unknown[];
    const row = rows[0];

    // Act
    const out = await pipeline.ingestText(JSON.stringify([row, row]), { kind: 'alerts', source: 'test' });

    // Assert
    expect(out.items.map((i) => i.status)).toEqual(['triaged', 'duplicate']);
    const outbox = await store.listNotifications({ tenantId: out.items[0]?.tenantId });
    expect(outbox.length).toBeGreaterThan(0);
    expect([...sends.keys()].sort()).toEqual(outbox.map((n) => n.key).sort());
    expect([...sends.values()].every((count) => count === 1)).toBe(true);
    expect(outbox.every((n) => n.status === 'sent')).toBe(true);
    await store.close();
  });

  it('two concurrent deliveries of the same incident in one process: each key sent once', async () => {
    // Arrange
    const { store, pipeline, sends } = setup();
    const incident = readFileSync(join(SAMPLES, 'incident-create-bruteforce.json'), 'utf8');
    const http = { kind: 'incident' as const, source: 'test' };

    // Act
    const out = await Promise.all([pipeline.ingestText(incident, http), pipeline.ingestText(incident, http)]);

    // Assert
    expect(out.map((o) => o.items[0]?.status).sort()).toEqual(['duplicate', 'triaged']);
    const outbox = await store.listNotifications({ tenantId: out[0]?.items[0]?.tenantId });
    expect(outbox.length).toBeGreaterThan(0);
    expect([...sends.keys()].sort()).toEqual(outbox.map((n) => n.key).sort());
    expect([...sends.values()].every((count) => count === 1)).toBe(true);
    await store.close();
  });

  it('reads no outbox entry back on the hot path: the entries it has just committed are sent as they are', async () => {
    // Arrange
    const { store, pipeline, sends, outboxReads } = setup();
    const incident = readFileSync(join(SAMPLES, 'incident-create-bruteforce.json'), 'utf8');

    // Act
    const out = await pipeline.ingestText(incident, { kind: 'incident', source: 'test' });

    // Assert
    expect(out.items[0]?.status).toBe('triaged');
    expect(sends.size).toBeGreaterThan(0);
    expect(outboxReads()).toBe(0);
    await store.close();
  });
});
