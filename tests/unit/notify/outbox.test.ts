import { silentLogger } from '../../../shared/log';
import { OutboxDispatcher } from '../../../shared/notify/outbox';
import type { NotificationRecord } from '../../../shared/store/port';
import { openSqliteStore } from '../../../shared/store/sqlite';

const TENANT = '8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b';

function entry(key: string, payload: string): NotificationRecord {
  return {
    key: `${TENANT}|case-1|first-report|${key}|email`,
    tenantId: TENANT,
    caseId: 'case-1',
    revision: 1,
    kind: 'first-report',
    channel: 'email',
    recipient: `${key} <${key}@contoso.example>`,
    payload,
    createdAt: '2026-11-27T00:00:00.000Z',
    status: 'queued',
    attempts: 0,
  };
}

describe('outbox delivery', () => {
  it('never sends an entry whose text is gone: it is marked failed, kept visible, and left out of later drains', async () => {
    // Arrange: one entry with its text, one whose text is no longer stored
    const store = openSqliteStore({ file: ':memory:' });
    await store.enqueueNotification(entry('soc', 'First report: brute force against vpn01'));
    await store.enqueueNotification(entry('lead', ''));
    const sent: NotificationRecord[] = [];
    const dispatcher = new OutboxDispatcher(store, { send: async (n) => void sent.push(n) }, silentLogger);

    // Act: two drains
    const first = await dispatcher.drain({ tenantId: TENANT });
    const second = await dispatcher.drain({ tenantId: TENANT });

    // Assert
    expect(first).toBe(1);
    expect(second).toBe(0);
    expect(sent.map((n) => n.payload)).toEqual(['First report: brute force against vpn01']);
    const stored = await store.listNotifications({ tenantId: TENANT, caseId: 'case-1' });
    const gone = stored.find((n) => n.recipient.startsWith('lead'));
    expect(gone?.status).toBe('failed');
    expect(gone?.lastError).toMatch(/payload missing/);
    expect(stored.find((n) => n.recipient.startsWith('soc'))?.status).toBe('sent');
    await store.close();
  });
});
