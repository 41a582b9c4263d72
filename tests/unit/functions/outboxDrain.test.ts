import { existsSync, readFileSync } from 'node:fs';
import { InvocationContext } from '@azure/functions';
import { registered, triggerOf } from '../../../cli/host/functionsCore';
import { outboxDrain } from '../../../functions/outboxDrain';
import { setRuntime } from '../../../shared/runtime';
import type { NotificationRecord } from '../../../shared/store/port';
import { testRuntime } from '../../helpers/runtime';

const TENANT = '8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b';
const ctx = () => new InvocationContext({ functionName: 'outboxDrain', invocationId: 'tick-1' });
const timer = { isPastDue: false };

/** A first report whose first attempt failed a minute ago (due again after 30 s). */
function failedOnce(): NotificationRecord {
  return {
    key: `${TENANT}|case-1|first-report|SOC on-call|email`,
    tenantId: TENANT,
    caseId: 'case-1',
    revision: 1,
    kind: 'first-report',
    channel: 'email',
    recipient: 'SOC on-call <soc@contoso.example>',
    payload: 'First report: brute force against vpn01',
    createdAt: new Date(Date.now() - 60_000).toISOString(),
    status: 'queued',
    attempts: 1,
    lastError: 'Error: smtp 451',
  };
}

afterEach(() => setRuntime(undefined));

describe('the outboxDrain timer function', () => {
  it('is registered as a timer trigger every minute that does not run on startup', () => {
    const fn = registered.find((f) => f.name === 'outboxDrain');

    expect(fn && triggerOf(fn)).toMatchObject({ type: 'timerTrigger', schedule: '0 */1 * * * *', runOnStartup: false });
  });

  it('sends a due entry to the outbox file once, however often it runs', async () => {
    // Arrange
    const rt = await testRuntime();
    const n = failedOnce();
    await rt.store.enqueueNotification(n);

    // Act
    await outboxDrain(timer, ctx());
    await outboxDrain(timer, ctx());

    // Assert
    const lines = readFileSync(rt.outboxFile, 'utf8').trim().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { key: string }).key)).toEqual([n.key]);
    expect(await rt.store.listNotifications({ tenantId: TENANT })).toEqual([expect.objectContaining({ status: 'sent', attempts: 2 })]);
  });

  it('leaves entries queued when delivery is disabled (OUTBOX_FILE empty)', async () => {
    // Arrange
    const rt = await testRuntime({ OUTBOX_FILE: '' });
    await rt.store.enqueueNotification(failedOnce());

    // Act
    await outboxDrain(timer, ctx());

    // Assert
    expect(await rt.store.listNotifications({ tenantId: TENANT })).toEqual([expect.objectContaining({ status: 'queued', attempts: 1 })]);
    expect(existsSync(rt.outboxFile)).toBe(false);
  });
});
