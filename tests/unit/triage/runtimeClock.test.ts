import { setRuntime } from '../../../shared/runtime';
import { testRuntime } from '../../helpers/runtime';

const TENANT = '8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b';
// Contoso: first report within 15 minutes, so a case detected at 05:10 is due at 05:25.
const alert = (id: string) =>
  JSON.stringify({
    source: 'rt',
    tenantId: TENANT,
    id,
    name: 'K2-3 attack tool',
    ruleId: 'K2-3',
    severity: 'medium',
    detectedAt: '2026-11-20T05:10:00Z',
    entities: [{ kind: 'host', hostName: 'ws-fin-023' }],
  });

/** Fakes only `Date` (the runtime's time source); timers and I/O stay real for the store. */
function clockAt(iso: string): void {
  jest.useFakeTimers({
    now: new Date(iso),
    doNotFake: [
      'hrtime',
      'nextTick',
      'performance',
      'queueMicrotask',
      'setImmediate',
      'clearImmediate',
      'setInterval',
      'clearInterval',
      'setTimeout',
      'clearTimeout',
    ],
  });
}

afterEach(() => {
  jest.useRealTimers();
  setRuntime(undefined);
});

describe('first-report deadline through createRuntime', () => {
  it('adds the late line to a first report built after its notifyBy, using the same clock as the pipeline', async () => {
    const rt = await testRuntime({ OUTBOX_FILE: '' });
    clockAt('2026-11-20T05:40:00.000Z');

    const out = await rt.pipeline.ingestText(alert('late'), { kind: 'auto', source: 'test' });

    const result = out.items[0]?.result;
    expect(result?.sla.notifyBy).toBe('2026-11-20T05:25:00.000Z');
    expect(result?.triagedAt).toBe('2026-11-20T05:40:00.000Z');
    expect(result?.firstReport).toContain('Late: built 15 min after the first-report deadline.');
    await rt.close();
  });

  it('leaves the late line out of a first report built before its notifyBy', async () => {
    const rt = await testRuntime({ OUTBOX_FILE: '' });
    clockAt('2026-11-20T05:20:00.000Z');

    const out = await rt.pipeline.ingestText(alert('on-time'), { kind: 'auto', source: 'test' });

    expect(out.items[0]?.result?.firstReport).toContain('First report due by 2026-11-20T05:25:00.000Z');
    expect(out.items[0]?.result?.firstReport).not.toContain('Late:');
    await rt.close();
  });
});
