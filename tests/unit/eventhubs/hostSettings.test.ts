import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '../../..');
const readJson = (file: string): Record<string, unknown> => JSON.parse(readFileSync(join(root, file), 'utf8')) as Record<string, unknown>;

describe('host.json', () => {
  const host = readJson('host.json') as {
    version: string;
    extensionBundle: { id: string; version: string };
    extensions: { eventHubs: Record<string, unknown>; http: { routePrefix: string } };
    concurrency: { dynamicConcurrencyEnabled: boolean };
  };

  it('targets the v2 host schema with extension bundle 4.x', () => {
    expect(host.version).toBe('2.0');
    expect(host.extensionBundle).toEqual({ id: 'Microsoft.Azure.Functions.ExtensionBundle', version: '[4.*, 5.0.0)' });
    expect(host.extensions.http.routePrefix).toBe('api');
  });

  it('uses the Event Hubs extension 5.x+ batch settings with a minimum below the maximum', () => {
    const eh = host.extensions.eventHubs;
    expect(eh).not.toHaveProperty('eventProcessorOptions'); // the 3.x/4.x layout, ignored by 5.x+
    expect(eh.maxEventBatchSize).toBe(100);
    expect(eh.minEventBatchSize as number).toBeLessThan(eh.maxEventBatchSize as number);
    expect(eh.batchCheckpointFrequency).toBe(1);
  });

  it('keeps retry policies out of host.json (they belong on the function registration)', () => {
    expect(host).not.toHaveProperty('retry');
    expect(host.concurrency.dynamicConcurrencyEnabled).toBe(false);
  });
});

describe('local.settings.sample.json', () => {
  const sample = readJson('local.settings.sample.json') as {
    IsEncrypted: boolean;
    Values: Record<string, unknown>;
    _comments: Record<string, string>;
  };

  it('keeps Values string-only and documents every one of them', () => {
    expect(sample.IsEncrypted).toBe(false);
    for (const [key, value] of Object.entries(sample.Values)) {
      expect([key, typeof value]).toEqual([key, 'string']);
      expect(sample._comments[key]).toEqual(expect.any(String));
    }
  });

  it('lists every setting the auth and Event Hubs modules read', () => {
    const read = ['shared/auth/entra.ts', 'shared/auth/hmac.ts', 'shared/eventhubs/client.ts']
      .map((f) => readFileSync(join(root, f), 'utf8'))
      .join('\n')
      .match(/env\.([A-Z][A-Z0-9_]+)/g);
    expect(read).not.toBeNull();
    for (const name of new Set(read!.map((m) => m.slice(4)))) expect(Object.keys(sample.Values)).toContain(name);
  });
});
