import { registered, triggerOf } from '../../../cli/host/functionsCore';

describe('Function app registrations (recorded by the @azure/functions-core stand-in)', () => {
  beforeAll(() => {
    require('../../../functions/index');
  });

  const byName = (name: string) => {
    const fn = registered.find((f) => f.name === name);
    if (!fn) throw new Error(`${name} is not registered`);
    return fn;
  };

  it('registers exactly the implemented functions', () => {
    expect(registered.map((f) => f.name).sort()).toEqual([
      'alertStream',
      'alertWebhook',
      'getCase',
      'health',
      'incidentWebhook',
      'outboxDrain',
    ]);
  });

  it.each([
    ['incidentWebhook', 'incidents', ['POST'], 'function'],
    ['alertWebhook', 'alerts', ['POST'], 'function'],
    ['getCase', 'cases/{id}', ['GET', 'HEAD'], 'function'],
    ['health', 'health', ['GET', 'HEAD'], 'anonymous'],
  ])('%s is an HTTP trigger on /api/%s %j with auth level %s', (name, route, methods, authLevel) => {
    const t = triggerOf(byName(name));

    expect(t).toMatchObject({ type: 'httpTrigger', direction: 'in', route, methods, authLevel });
    expect(Object.values(byName(name).bindings).some((b) => b.type === 'http' && b.direction === 'out')).toBe(true);
  });

  it('lists HEAD on every HTTP trigger that allows GET, since neither Azure nor `triage serve` derives it', () => {
    const http = registered.map(triggerOf).filter((t) => t.type === 'httpTrigger');
    const methods = http.map((t) => ((t.methods as string[] | undefined) ?? []).map((m) => m.toUpperCase()));

    expect(methods.filter((m) => m.includes('GET'))).not.toEqual([]);
    for (const m of methods) expect(m.includes('HEAD')).toBe(m.includes('GET'));
  });

  it('alertStream is an Event Hub trigger, cardinality many, settings by name, with infinite exponential retry', () => {
    const fn = byName('alertStream');

    expect(triggerOf(fn)).toMatchObject({
      type: 'eventHubTrigger',
      connection: 'EVENTHUB_CONNECTION',
      eventHubName: '%EVENTHUB_NAME%',
      consumerGroup: '%EVENTHUB_CONSUMER_GROUP%',
      cardinality: 'many',
    });
    expect(fn.retryOptions).toMatchObject({ retryStrategy: 'exponentialBackoff', maxRetryCount: -1 });
    expect(fn.retryOptions?.minimumInterval).toBeDefined();
    expect(fn.retryOptions?.maximumInterval).toBeDefined();
  });
});
