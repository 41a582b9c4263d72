/**
 * Publishes the sample records to a REAL event hub. Runs only when EVENTHUB_NAMESPACE and
 * EVENTHUB_NAME are set (the identity from DefaultAzureCredential needs "Azure Event Hubs Data
 * Sender" on the hub); otherwise jest reports the suite as skipped. There is no Event Hubs
 * emulator on the build machines.
 *
 *   EVENTHUB_NAMESPACE=contoso-soc EVENTHUB_NAME=am-securityalert-test npx jest tests/integration/eventhubs.test.ts
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { asProducerLike, createEventHubProducer } from '../../shared/eventhubs/client';
import { type ExportRecord, publishRecords } from '../../shared/eventhubs/publish';

const namespace = process.env.EVENTHUB_NAMESPACE;
const hub = process.env.EVENTHUB_NAME;
const enabled = Boolean(namespace && hub);

(enabled ? describe : describe.skip)('Event Hubs producer against a real hub', () => {
  it('publishes the sample records as export envelopes', async () => {
    const sample = JSON.parse(readFileSync(join(__dirname, '../../../shared/samples/eventhub-batch.json'), 'utf8')) as {
      records: ExportRecord[];
    }[];
    const records = sample.flatMap((e) => e.records);
    const client = createEventHubProducer(`${namespace}/${hub}`);
    try {
      const result = await publishRecords(asProducerLike(client), records, { recordsPerEvent: 1 });
      expect(result).toEqual({ events: records.length, batches: 1, records: records.length });
    } finally {
      await client.close();
    }
  });
});
