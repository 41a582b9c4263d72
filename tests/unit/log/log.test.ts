import { EventHubProducerClient } from '@azure/event-hubs';
import { ConfigError, StoreUnavailableError } from '../../../shared/errors';
import { createLogger, type LogLevel } from '../../../shared/log';

/** A logger at `level` whose lines are kept, raw, in `lines`. */
function recording(level: LogLevel = 'debug'): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger({ level, sink: (line) => void lines.push(line) }), lines };
}

const EH_KEY = 'c2VjcmV0LWV2ZW50LWh1Yi1rZXk+Lw==';
const COSMOS_KEY = 'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==';
const JWT = 'eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJhdWQiOiJhcGk6Ly90cmlhZ2UiLCJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz';

describe('secrets in log lines', () => {
  it('leaves out the key of an Event Hubs connection string that the SDK quotes in its error, wherever in the cause chain', () => {
    const { log, lines } = recording();
    let sdkError: unknown;
    try {
      new EventHubProducerClient(`Endpoint=sb://contoso-soc.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=${EH_KEY}`);
    } catch (err) {
      sdkError = err;
    }

    log.error('publish.failed', { step: 'notify', err: sdkError });
    log.error('publish.failed', { step: 'notify', err: new StoreUnavailableError('outer', { cause: sdkError }) });

    expect(String((sdkError as Error).message)).toContain(EH_KEY); // the SDK's own message does quote it
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line).not.toContain(EH_KEY);
      expect(line).toContain('SharedAccessKeyName=send');
    }
  });

  it('redacts a Cosmos account key, a SAS signature, a function key and a bearer token in any field', () => {
    const { log, lines } = recording();

    log.info('store.opening', { store: 'cosmos', endpoint: `https://acct.documents.azure.com:443/;AccountKey=${COSMOS_KEY};` });
    log.warn('http.failed', { err: new Error(`GET https://ns.servicebus.windows.net/hub?sr=x&sig=${EH_KEY}&se=1 failed`) });
    log.warn('http.failed', { url: '/api/alerts?code=function-key-value', headers: { authorization: `Bearer ${JWT}` } });
    log.warn('auth.odd', { token: JWT });
    log.warn('store.cosmos.failed', {
      err: new Error(`authorization: type%3Dmaster%26ver%3D1.0%26sig%3D${encodeURIComponent(COSMOS_KEY)}`),
    });

    const all = lines.join('\n');
    const secrets = [COSMOS_KEY, encodeURIComponent(COSMOS_KEY), EH_KEY, 'function-key-value', JWT, JWT.split('.')[2] as string];
    for (const secret of secrets) expect(all).not.toContain(secret);
    expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([
      expect.objectContaining({ endpoint: 'https://acct.documents.azure.com:443/;AccountKey=[redacted];' }),
      expect.objectContaining({
        err: { name: 'Error', message: 'GET https://ns.servicebus.windows.net/hub?sr=x&sig=[redacted]&se=1 failed' },
      }),
      expect.objectContaining({ url: '/api/alerts?code=[redacted]', headers: { authorization: 'Bearer [redacted]' } }),
      expect.objectContaining({ token: '[redacted-jwt]' }),
      expect.objectContaining({ err: { name: 'Error', message: 'authorization: type%3Dmaster%26ver%3D1.0%26sig%3D[redacted]' } }),
    ]);
  });
});

describe('a log call never throws, whatever it is given', () => {
  it('logs an error whose cause chain loops, up to a bounded depth', () => {
    const { log, lines } = recording();
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    a.cause = b;

    log.error('case.failed', { tenantId: 't1', caseId: 'c1', step: 'persist', err: a });

    expect(lines).toHaveLength(1);
    let depth = 0;
    for (
      let e = (JSON.parse(lines[0] as string) as { err: { cause?: unknown } }).err;
      typeof e === 'object';
      e = e.cause as { cause?: unknown }
    )
      depth++;
    expect(depth).toBeLessThanOrEqual(6);
  });

  it('still writes one JSON line with the event and its case when a field cannot be serialised (a BigInt, a cycle)', () => {
    const { log, lines } = recording();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;

    log.info('case.triaged', { tenantId: 't1', caseId: 'c1', step: 'persist', ru: 10n });
    log.info('case.triaged', { tenantId: 't1', caseId: 'c1', step: 'persist', extra: cyclic });
    log.error('case.failed', { tenantId: 't1', caseId: 'c1', step: 'persist', err: Object.create(null) });

    expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([
      expect.objectContaining({ level: 'info', event: 'case.triaged', tenantId: 't1', caseId: 'c1', step: 'persist' }),
      expect.objectContaining({ level: 'info', event: 'case.triaged', tenantId: 't1', caseId: 'c1', step: 'persist' }),
      expect.objectContaining({ level: 'error', event: 'case.failed', tenantId: 't1', caseId: 'c1', step: 'persist' }),
    ]);
  });
});

describe('size and shape of a line', () => {
  it('clips a long error message (SDK diagnostics, a message quoting input) to a bounded length', () => {
    const { log, lines } = recording();

    log.error('case.failed', { err: new ConfigError('X', 'y'.repeat(100_000)) });

    expect((lines[0] as string).length).toBeLessThan(2_000);
  });

  it('keeps one event on one line even for readers that also split at U+2028, U+2029 or NEL, and escapes C1 controls', () => {
    const { log, lines } = recording();

    log.warn('item.parked', { tenantId: 'evil\u2028{"level":"info"}\u2029\u0085', reason: 'x\u009b31mred' });

    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(/[\n\r\u0080-\u009f\u2028\u2029]/);
    expect(JSON.parse(lines[0] as string)).toMatchObject({ tenantId: 'evil\u2028{"level":"info"}\u2029\u0085', reason: 'x\u009b31mred' });
  });

  it('serialises nothing for a line below the level (debug on the hot path)', () => {
    const { log, lines } = recording('info');
    let serialised = false;
    const field = {
      toJSON: (): string => {
        serialised = true;
        return 'x';
      },
    };

    log.debug('case.duplicate', { tenantId: 't1', caseId: 'c1', step: 'dedupe', field, err: new Error('e') });

    expect(lines).toEqual([]);
    expect(serialised).toBe(false);
  });
});
